//! One build from a Rust program: build a context, push the image, and
//! print what came back.
//!
//! ```sh
//! cargo run --example build -- examples/app 127.0.0.1:5000/app:1
//! ```
//!
//! The daemon is `BUILDKIT_HOST` (default: the local engine or buildkitd);
//! `RBUILD_EXAMPLE_BASE`, when set, is passed as the `BASE` build argument.

use std::process::ExitCode;

use rbuild::{Address, Build, Client, ConnectOptions, Output};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(context), Some(image)) = (args.next(), args.next()) else {
        eprintln!("usage: build CONTEXT IMAGE (e.g. examples/app 127.0.0.1:5000/app:1)");
        return ExitCode::from(2);
    };
    match run(&context, &image).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(context: &str, image: &str) -> Result<(), Box<dyn std::error::Error>> {
    let addr = match std::env::var("BUILDKIT_HOST") {
        Ok(a) if !a.is_empty() => a.parse()?,
        _ => Address::default_local(),
    };
    let client = Client::connect(addr, &ConnectOptions::default()).await?;
    let mut build = Build::new(context).tag(image).output(Output::registry());
    if let Ok(base) = std::env::var("RBUILD_EXAMPLE_BASE") {
        build = build.build_arg("BASE", base);
    }
    let result = client.build(&build).await?;
    let pushed = &result.outputs[0];
    println!(
        "pushed {image} {} ({} steps, {} cached)",
        pushed
            .digest()
            .map_or_else(|| "(no digest)".to_string(), |d| d.to_string()),
        result.steps.total,
        result.steps.cached
    );
    Ok(())
}
