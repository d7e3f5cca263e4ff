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

/// A build's steps by digest, folded from its `--progress rawjson` stream.
#[derive(Default, Debug)]
pub struct Step {
    pub name: String,
    pub cached: bool,
    /// It printed output, so it ran here.
    pub logged: bool,
}

pub fn steps(rawjson: &str) -> std::collections::BTreeMap<String, Step> {
    let mut steps: std::collections::BTreeMap<String, Step> = Default::default();
    for line in rawjson.lines().filter(|l| l.starts_with('{')) {
        let msg: serde_json::Value = serde_json::from_str(line).expect("rawjson line");
        for v in msg["vertexes"].as_array().into_iter().flatten() {
            let step = steps
                .entry(v["digest"].as_str().unwrap_or_default().into())
                .or_default();
            step.name = v["name"].as_str().unwrap_or_default().to_string();
            step.cached |= v["cached"].as_bool().unwrap_or(false);
        }
        for l in msg["logs"].as_array().into_iter().flatten() {
            let digest = l["vertex"].as_str().unwrap_or_default().to_string();
            steps.entry(digest).or_default().logged = true;
        }
    }
    steps
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
