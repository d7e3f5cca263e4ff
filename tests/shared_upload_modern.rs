//! Three bake targets of one 200 MB context on the modern engine (whose
//! frontend honours `local-sessionid`): the context crosses the wire once,
//! through the session the three share, counted byte for byte; no target's
//! own session sends it.

mod support;

use rbuild::bake::Definition;
use rbuild::{Address, BuildOptions, Client, ConnectOptions};
use support::buildx::modern_engine;
use support::{context, stack};

const SIZE: u64 = 200 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn three_targets_send_one_200mb_context_once() {
    let stack = stack();
    let dir = context(&[
        (
            "Dockerfile",
            &format!(
                "FROM {} AS base\n\
                 FROM base AS app\nRUN --mount=type=bind,target=/ctx wc -c /ctx/big.bin > /app.txt\n\
                 FROM base AS bundle\nRUN --mount=type=bind,target=/ctx ls -l /ctx > /bundle.txt\n\
                 FROM base AS docs\nRUN --mount=type=bind,target=/ctx head -c 16 /ctx/big.bin | wc -c > /docs.txt\n",
                stack.base
            ),
        ),
        (
            "docker-bake.hcl",
            "group \"default\" {\n  targets = [\"app\", \"bundle\", \"docs\"]\n}\n\
             target \"_ctx\" {\n  output = [\"type=cacheonly\"]\n}\n\
             target \"app\" {\n  inherits = [\"_ctx\"]\n  target = \"app\"\n}\n\
             target \"bundle\" {\n  inherits = [\"_ctx\"]\n  target = \"bundle\"\n}\n\
             target \"docs\" {\n  inherits = [\"_ctx\"]\n  target = \"docs\"\n}\n",
        ),
    ]);
    // Generated for this run (new to the daemon, so it must be sent), and
    // instantly: a sparse file of zeros.
    std::fs::File::create(dir.path().join("big.bin"))
        .unwrap()
        .set_len(SIZE)
        .unwrap();

    let def = Definition::load(&[dir.path().join("docker-bake.hcl")], |_| None).unwrap();
    let chosen = def.resolve(&[], &[]).unwrap();
    let builds = Definition::builds(&chosen, dir.path()).unwrap();
    assert_eq!(builds.len(), 3);
    let addr: Address = modern_engine().parse().unwrap();
    let client = Client::connect(addr, &ConnectOptions::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let results = client.build_all(&builds, BuildOptions::default()).await;
    let took = started.elapsed();
    let results: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("every target builds"))
        .collect();

    let shared: Vec<_> = results
        .iter()
        .map(|r| r.shared_upload.expect("the targets share the context"))
        .collect();
    assert!(
        shared.iter().all(|u| u.shared && *u == shared[0]),
        "{shared:?}"
    );
    let once = shared[0].bytes_sent;
    let own: u64 = results.iter().map(|r| r.upload.bytes_sent).sum();
    // The file and the small Dockerfile and bake file beside it, once.
    assert!(
        (SIZE..SIZE + (1 << 20)).contains(&once),
        "shared session sent {once} bytes"
    );
    assert_eq!(own, 0, "the targets' own sessions sent {own} bytes");
    eprintln!(
        "200 MB context, 3 targets: {once} bytes through the shared session, {own} through the targets' own, in {took:?}"
    );
}
