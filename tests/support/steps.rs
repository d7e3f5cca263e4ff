//! Which RUN steps a build took from the cache, read from its rawjson
//! progress (`--progress rawjson`, on stdout).

use std::collections::BTreeMap;
use std::process::Output;

use super::{assert_success, stdout};

/// Step name (without the `[n/m] ` prefix) -> cached, from rawjson.
pub fn cached_steps(out: &Output) -> BTreeMap<String, bool> {
    let mut steps = BTreeMap::new();
    for line in stdout(out).lines().filter(|l| l.starts_with('{')) {
        let msg: serde_json::Value = serde_json::from_str(line).expect("rawjson line");
        for v in msg["vertexes"].as_array().into_iter().flatten() {
            let name = v["name"].as_str().unwrap_or_default();
            let Some((_, step)) = name.split_once("] RUN ") else {
                continue;
            };
            let cached = steps.entry(format!("RUN {step}")).or_insert(false);
            *cached |= v["cached"].as_bool().unwrap_or(false);
        }
    }
    steps
}

/// The build succeeded, and each step whose name contains the needle was
/// (or was not) cached.
#[track_caller]
pub fn assert_cached(out: &Output, want: &[(&str, bool)]) {
    assert_success(out);
    let steps = cached_steps(out);
    for (needle, cached) in want {
        let found: Vec<_> = steps.iter().filter(|(n, _)| n.contains(needle)).collect();
        assert_eq!(found.len(), 1, "step {needle:?} in {steps:#?}");
        assert_eq!(
            *found[0].1, *cached,
            "step {needle:?} cached={} expected {cached}; all: {steps:#?}",
            found[0].1
        );
    }
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
