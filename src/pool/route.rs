//! Which node a build goes to: rendezvous (highest random weight) hashing
//! of the build's routing key over the nodes' names.
//!
//! Rendezvous hashing gives every node a score per key and takes the
//! highest, so one project's builds always land on the same node (where its
//! local cache is warm), projects spread evenly, and a node that leaves
//! moves only its own keys: the next node in a key's order takes them,
//! every other key stays where it was.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::buildspec::Build;
use crate::cache::CacheBackend;
pub use crate::progress::placement::{KeySource, RouteKey};

/// The key `build` is routed by: the one it was given, else its registry
/// cache ref, else the git remote and path of its context, else the
/// context's absolute path.
pub fn route_key(build: &Build) -> RouteKey {
    let key = |value: String, source| RouteKey { value, source };
    if let Some(given) = build.route_key() {
        return key(given.to_string(), KeySource::Given);
    }
    let (from, to) = build.cache_entries();
    if let Some(reference) = from
        .iter()
        .chain(&to)
        .filter(|e| e.kind == CacheBackend::Registry)
        .find_map(|e| e.reference())
    {
        return key(reference.to_string(), KeySource::CacheRef);
    }
    if let Some(url) = build.remote_context() {
        return key(super::git::without_credentials(url), KeySource::Remote);
    }
    let dir = build.context();
    if dir.as_os_str().is_empty() {
        return key(String::new(), KeySource::Unnamed);
    }
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let absolute = std::fs::canonicalize(&absolute).unwrap_or(absolute);
    match super::git::origin(&absolute) {
        Some((remote, path)) => key(format!("{remote} {}", shown(&path)), KeySource::Git),
        None => key(absolute.display().to_string(), KeySource::Path),
    }
}

fn shown(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        ".".to_string()
    } else {
        path.display().to_string()
    }
}

/// Node positions in the order `key` tries them: highest score first. Ties
/// (equal names) keep the given order.
pub(crate) fn order<'a>(key: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let mut scored: Vec<(u64, usize)> = names
        .into_iter()
        .enumerate()
        .map(|(i, name)| (score(key, name), i))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().map(|(_, i)| i).collect()
}

/// A stable score: the first 8 bytes of SHA-256 over the key and the
/// node's name. The same on every machine and release, unlike std's hasher.
fn score(key: &str, node: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0]);
    h.update(node.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_always_picks_the_same_node_whatever_the_list_order() {
        let names = ["r1", "r2", "r3"];
        let first = order("127.0.0.1:5000/app-cache", names)[0];
        let reversed: Vec<&str> = names.iter().rev().copied().collect();
        let again = order("127.0.0.1:5000/app-cache", reversed.iter().copied())[0];
        assert_eq!(names[first], reversed[again]);
    }

    #[test]
    fn keys_spread_evenly_and_a_leaving_node_moves_only_its_own() {
        let names = ["r1", "r2", "r3", "r4"];
        let mut count = [0usize; 4];
        let keys: Vec<String> = (0..4000).map(|i| format!("project-{i}")).collect();
        for k in &keys {
            count[order(k, names)[0]] += 1;
        }
        for c in count {
            assert!((800..1200).contains(&c), "{count:?}");
        }
        // Without r2, keys that were on another node stay there; r2's keys
        // go to their second choice.
        let without = ["r1", "r3", "r4"];
        for k in &keys {
            let before = order(k, names);
            let after = order(k, without)[0];
            let expect = if names[before[0]] == "r2" {
                names[before[1]]
            } else {
                names[before[0]]
            };
            assert_eq!(without[after], expect, "{k}");
        }
    }

    #[test]
    fn the_key_comes_from_what_the_build_has() {
        let dir = tempfile::tempdir().unwrap();
        let b = Build::new(dir.path());
        let k = route_key(&b);
        assert_eq!(k.source, KeySource::Path);
        assert!(
            k.value
                .ends_with(&*dir.path().file_name().unwrap().to_string_lossy())
        );
        let k = route_key(&b.clone().cache("127.0.0.1:5000/app-cache"));
        assert_eq!(
            (k.value.as_str(), k.source),
            ("127.0.0.1:5000/app-cache", KeySource::CacheRef)
        );
        let k = route_key(&b.clone().cache("r/c").routed_by("mine"));
        assert_eq!((k.value.as_str(), k.source), ("mine", KeySource::Given));
        let k = route_key(&Build::remote("https://u:secret@example.com/app.git#main"));
        assert_eq!(k.source, KeySource::Remote);
        assert!(!k.value.contains("secret"), "{k:?}");
    }
}
