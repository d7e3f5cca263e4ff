//! The stack's runners (`scripts/stack up --runners N`): several engines,
//! each in its own network namespace, all seeing the one registry.

use std::path::PathBuf;

/// One runner: its BuildKit address and its engine's socket.
#[derive(Clone, Debug)]
pub struct Runner {
    /// `docker:///…/docker.sock`.
    pub address: String,
    /// The engine socket path.
    pub engine_socket: PathBuf,
}

/// The first `n` runners of `RBUILD_TEST_RUNNERS`; fails (never skips) with
/// how to start them when fewer run.
pub fn runners(n: usize) -> Vec<Runner> {
    let list = std::env::var("RBUILD_TEST_RUNNERS").unwrap_or_default();
    let runners: Vec<Runner> = list
        .split(',')
        .filter(|a| !a.is_empty())
        .map(|address| Runner {
            address: address.to_string(),
            engine_socket: PathBuf::from(address.strip_prefix("docker://").unwrap_or_else(|| {
                panic!("RBUILD_TEST_RUNNERS entry {address} is not docker://SOCKET")
            })),
        })
        .collect();
    assert!(
        runners.len() >= n,
        "these tests need {n} runners, RBUILD_TEST_RUNNERS lists {} ({list:?}): \
         run them with scripts/test, or first: eval \"$(scripts/stack up --runners {n})\"",
        runners.len()
    );
    runners.into_iter().take(n).collect()
}

/// The seed's project: a slow dependency step (`sleep slow_secs`), then its
/// sources; `id` makes its content new to every engine, so no runner's
/// local cache can serve it.
pub fn seed_project(id: &str, slow_secs: u64) -> tempfile::TempDir {
    super::context(&[
        (
            "Dockerfile",
            &format!(
                "ARG BASE\nFROM ${{BASE}}\nWORKDIR /app\nCOPY deps.txt .\n\
                 RUN echo resolving && sleep {slow_secs} && echo {id} > deps.lock\n\
                 COPY src/ ./src/\nRUN ls src > manifest.txt && echo listed\n"
            ),
        ),
        ("deps.txt", "libfoo==1\n"),
        ("src/main.sh", "echo hi\n"),
    ])
}

/// The linux/amd64 image manifest a `--metadata-file` reports for the
/// build's image output (the index around it differs per build: its
/// provenance records each build's own invocation).
pub fn image_manifest(meta: &std::path::Path) -> String {
    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    md["rbuild.outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|o| o["rbuild.image.manifests"]["linux/amd64"].as_str())
        .unwrap_or_else(|| panic!("no image output with manifests: {md}"))
        .to_string()
}
