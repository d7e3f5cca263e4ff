//! Three targets of one Dockerfile built concurrently over one connection:
//! the `app` image pushed, the `bundle` filesystem written as a tar, the
//! `docs` exported to a local directory — with one merged progress view
//! and one upload of the shared context.
//!
//! ```sh
//! cargo run --example multi_target -- examples/multi 127.0.0.1:5000/multi:1 out/
//! ```
//!
//! The daemon is `BUILDKIT_HOST` (default: the local engine or buildkitd);
//! `RBUILD_EXAMPLE_BASE`, when set, is passed as the `BASE` build argument.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use rbuild::progress::{self, Mode};
use rbuild::{Address, Build, BuildOptions, Client, ConnectOptions, Output};
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [context, image, out] = args.as_slice() else {
        eprintln!("usage: multi_target CONTEXT IMAGE OUT_DIR");
        return ExitCode::from(2);
    };
    match run(context, image, Path::new(out)).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(context: &str, image: &str, out: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let addr = match std::env::var("BUILDKIT_HOST") {
        Ok(a) if !a.is_empty() => a.parse()?,
        _ => Address::default_local(),
    };
    let client = Client::connect(addr, &ConnectOptions::default()).await?;
    let target = |name: &str| {
        let build = Build::new(context).named(name).target(name);
        match std::env::var("RBUILD_EXAMPLE_BASE") {
            Ok(base) => build.build_arg("BASE", base),
            Err(_) => build,
        }
    };
    let builds = [
        target("app").tag(image).output(Output::registry()),
        target("bundle").output(Output::tar(out.join("bundle.tar"))),
        target("docs").output(Output::local(out.join("docs"))),
    ];

    // One progress view for all three: grouped on a terminal, plain lines
    // prefixed `[name]` otherwise.
    let mode = if std::io::stderr().is_terminal() {
        Mode::Tty
    } else {
        Mode::Plain
    };
    let (tx, rx) = mpsc::channel(256);
    let view = tokio::spawn(progress::render(mode, Box::new(std::io::stderr()), rx));
    let results = client
        .build_all(&builds, BuildOptions::default().events(tx))
        .await;
    view.await??;

    let mut ok = true;
    for (build, result) in builds.iter().zip(&results) {
        let name = build.name().unwrap_or("?");
        match result {
            Ok(r) => println!(
                "{name}: {} steps ({} cached); context {} bytes sent{}; outputs: {}",
                r.steps.total,
                r.steps.cached,
                r.upload.bytes_sent,
                if r.upload.shared { " (shared)" } else { "" },
                r.outputs
                    .iter()
                    .map(|o| o
                        .digest()
                        .map_or_else(|| o.kind.to_string(), |d| d.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => {
                ok = false;
                println!("{name}: failed: {e}");
            }
        }
    }
    Ok(ok)
}
