//! The library driven directly, as a Rust program would: typed builds on the
//! real stack, results checked where the user would check them (the
//! registry, the files written), typed errors, and the examples run.

mod support;

use std::path::PathBuf;
use std::process::Command;

use rbuild::progress::{Event, EventKind};
use rbuild::{Build, BuildError, BuildOptions, Client, ConnectOptions, Output};
use support::{assert_success, context, registry, stack, stdout, unique};
use tokio::sync::mpsc;

async fn client(stack: &support::Stack) -> Client {
    let addr = stack.buildkit_host.parse().expect("stack address");
    Client::connect(addr, &ConnectOptions::default())
        .await
        .expect("connect to the stack")
}

/// `repo:tag` of a ref in the test registry, without the registry host.
fn repo_path(stack: &support::Stack, image: &str) -> String {
    image
        .strip_prefix(&format!("{}/", stack.registry))
        .expect("image in the test registry")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_image_is_the_digest_the_result_names() {
    let stack = stack();
    let ctx = context(&[
        (
            "Dockerfile",
            "ARG BASE\nFROM ${BASE}\nCOPY data.txt /data.txt\n",
        ),
        ("data.txt", "library push\n"),
    ]);
    let image = format!("{}/rbuild/{}:1", stack.registry, unique("library"));
    let build = Build::new(ctx.path())
        .build_arg("BASE", &stack.base)
        .tag(&image)
        .output(Output::registry());
    let result = client(&stack).await.build(&build).await.expect("build");

    let pushed = &result.outputs[0];
    let digest = pushed.digest().expect("the pushed output has a digest");
    assert!(pushed.names().contains(&image.as_str()), "{pushed:?}");
    let (repo, tag) = repo_path(&stack, &image)
        .rsplit_once(':')
        .map(|(r, t)| (r.to_string(), t.to_string()))
        .unwrap();
    let head = registry::request(
        &stack.registry,
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert!(result.steps.total >= 3, "{:?}", result.steps);
}

/// A context with one large file and three targets that each use it.
fn three_target_context(size: usize) -> tempfile::TempDir {
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\n\
         FROM ${BASE} AS app\nCOPY big.bin /big.bin\n\
         FROM scratch AS bundle\nCOPY big.bin /big.bin\n\
         FROM scratch AS docs\nCOPY note.txt /note.txt\n",
    )]);
    // Incompressible and distinct per run, so no earlier upload matches.
    let mut data = vec![0u8; size];
    let mut x: u64 = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(ctx.path().join("big.bin"), &data).unwrap();
    std::fs::write(ctx.path().join("note.txt"), "docs\n").unwrap();
    ctx
}

#[tokio::test(flavor = "multi_thread")]
async fn three_targets_of_one_context_share_one_upload_session() {
    let stack = stack();
    const SIZE: usize = 24 << 20;
    let ctx = three_target_context(SIZE);
    let out = tempfile::tempdir().unwrap();
    let image = format!("{}/rbuild/{}:1", stack.registry, unique("library-multi"));
    let target = |name: &str| {
        Build::new(ctx.path())
            .named(name)
            .target(name)
            .build_arg("BASE", &stack.base)
    };
    let tar = out.path().join("bundle.tar");
    let docs = out.path().join("docs");
    let builds = [
        target("app").tag(&image).output(Output::registry()),
        target("bundle").output(Output::tar(&tar)),
        target("docs").output(Output::local(&docs)),
    ];
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let collect = tokio::spawn(async move {
        let mut started = Vec::new();
        while let Some(e) = rx.recv().await {
            if let EventKind::Started { name, .. } = e.kind {
                started.push((e.build, name));
            }
        }
        started
    });
    let results = client(&stack)
        .await
        .build_all(&builds, BuildOptions::default().events(tx))
        .await;
    let started = collect.await.unwrap();
    assert_eq!(started.len(), 3, "{started:?}");

    let results: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("every target builds"))
        .collect();
    // Each target's output, checked by content.
    assert!(results[0].outputs[0].digest().is_some());
    let listing = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    assert!(stdout(&listing).contains("big.bin"), "{}", stdout(&listing));
    assert_eq!(
        std::fs::read_to_string(docs.join("note.txt")).unwrap(),
        "docs\n"
    );
    // One shared session serves the context to all three (buildx's
    // local-sessionid arrangement); a daemon whose Dockerfile frontend
    // reads it sends the file once, through that session.
    let shared: Vec<_> = results
        .iter()
        .map(|r| r.shared_upload.expect("build_all shares the context"))
        .collect();
    assert!(
        shared.iter().all(|u| u.shared && *u == shared[0]),
        "{shared:?}"
    );
    let own: u64 = results.iter().map(|r| r.upload.bytes_sent).sum();
    let once = shared[0].bytes_sent;
    assert!(own + once >= SIZE as u64, "own {own}, shared {once}");
    if once > 0 {
        assert!(own + once < 2 * SIZE as u64, "own {own}, shared {once}");
    } else {
        // The fallback: each build reads its own session. Only frontends
        // older than BuildKit 0.15 ignore local-sessionid.
        let info = client(&stack).await.info().await.unwrap();
        let version = info.version.map(|v| v.version).unwrap_or_default();
        assert!(
            older_than_0_15(&version),
            "BuildKit {version} ignored local-sessionid"
        );
    }
}

/// `v0.13.2` and the engine's `0.13.2+...` are older than 0.15.
fn older_than_0_15(version: &str) -> bool {
    let v = version.trim_start_matches('v');
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) < (0, 15)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_run_names_its_step_and_dockerfile_line() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\n\nRUN echo about-to-fail && exit 3\n",
    )]);
    let build = Build::new(ctx.path())
        .build_arg("BASE", &stack.base)
        .no_cache(true);
    let err = client(&stack).await.build(&build).await.unwrap_err();
    let BuildError::Step(step) = &err else {
        panic!("not a step failure: {err:?}");
    };
    assert!(
        step.step
            .as_deref()
            .unwrap_or_default()
            .contains("RUN echo about-to-fail"),
        "{step:?}"
    );
    let location = step.location.as_ref().expect("a Dockerfile location");
    assert_eq!((location.line, location.end_line), (4, 4), "{location:?}");
    assert!(
        step.logs.iter().any(|l| l.contains("about-to-fail")),
        "{step:?}"
    );
    assert!(step.message.contains("exit code: 3"), "{}", step.message);
}

/// An example's binary, built here so this file passes on its own
/// (`cargo test --test library`), not only after a whole `cargo test`
/// happened to build the examples; up to date, it costs a no-op cargo run.
fn example(name: &str) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new(env!("CARGO"))
        .current_dir(&repo)
        .args(["build", "--offline", "--quiet", "--example", name])
        .output()
        .expect("run cargo build --example");
    assert_success(&built);
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The program the library's first user wrote: three builds, progress
/// rendered from a channel, and the options kept in a variable. It hung
/// when the options held the events sender past `build_all`; the call now
/// owns them, so the renderer ends when the builds do.
#[tokio::test(flavor = "multi_thread")]
async fn progress_ends_with_the_builds_when_the_options_live_in_a_variable() {
    let stack = stack();
    let ctx = context(&[
        ("Dockerfile", "FROM scratch\nCOPY note.txt /note.txt\n"),
        ("note.txt", "held\n"),
    ]);
    let out = tempfile::tempdir().unwrap();
    let builds: Vec<Build> = (0..3)
        .map(|i| {
            Build::new(ctx.path())
                .named(format!("b{i}"))
                .output(Output::local(out.path().join(i.to_string())))
        })
        .collect();
    let (tx, rx) = mpsc::channel(256);
    let render = tokio::spawn(rbuild::progress::render(
        rbuild::progress::Mode::Plain,
        Box::new(std::io::sink()),
        rx,
    ));
    let options = BuildOptions::default().events(tx);
    let results = client(&stack).await.build_all(&builds, options).await;
    let summaries = tokio::time::timeout(std::time::Duration::from_secs(60), render)
        .await
        .expect("the renderer ends when the builds end")
        .expect("renderer task")
        .expect("rendering");
    assert_eq!(summaries.len(), 3, "{summaries:?}");
    for (i, r) in results.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("build {i}: {e}"));
        assert_eq!(
            std::fs::read_to_string(out.path().join(i.to_string()).join("note.txt")).unwrap(),
            "held\n"
        );
    }
}

#[test]
fn the_examples_run_against_the_stack() {
    let stack = stack();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let image = format!("{}/rbuild/{}:1", stack.registry, unique("example"));
    let out = Command::new(example("build"))
        .arg(repo.join("examples/app"))
        .arg(&image)
        .env("BUILDKIT_HOST", &stack.buildkit_host)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("pushed"), "{}", stdout(&out));
    let manifest = registry::manifest(&stack.registry, &image);
    assert!(manifest["layers"].is_array(), "{manifest}");

    let dest = tempfile::tempdir().unwrap();
    let image = format!("{}/rbuild/{}:1", stack.registry, unique("example-multi"));
    let out = Command::new(example("multi_target"))
        .arg(repo.join("examples/multi"))
        .arg(&image)
        .arg(dest.path())
        .env("BUILDKIT_HOST", &stack.buildkit_host)
        .env("RBUILD_EXAMPLE_BASE", &stack.base)
        .output()
        .unwrap();
    assert_success(&out);
    let progress = support::stderr(&out);
    for name in ["app", "bundle", "docs"] {
        assert!(progress.contains(&format!("[{name}] #")), "{progress}");
    }
    assert!(dest.path().join("bundle.tar").is_file());
    assert!(dest.path().join("docs/README.md").is_file());
    registry::manifest(&stack.registry, &image);
}
