//! Which failed steps were the build's cache imports and exports, and so
//! which entry each failure belongs to. BuildKit runs each as a vertex
//! whose digest it derives from a string the client can rebuild
//! (solver/llbsolver: `inBuilderContext` hashes the id it is given): cache
//! export N of the request is `sha256("{session}-cache-{N}")`, N counting
//! the exports that are not `inline`; a registry import is
//! `sha256("importing cache manifest from {ref}")`. Other imports are named
//! after their type and a hash of their attributes that only the daemon
//! computes, so those are matched by name.

use sha2::{Digest, Sha256};

use crate::cache::{CacheBackend, CacheDirection, CacheEntry, CacheFailure};
use crate::progress::FailedVertex;
use crate::progress::state::State;
use crate::request::BuildPlan;

/// The name BuildKit gives every cache import vertex, before the cache id.
const IMPORT_PREFIX: &str = "importing cache manifest from ";

/// The failures among `failed` (vertex index, report) that were cache
/// imports or exports, with the vertex each came from.
pub(super) fn failures(
    plan: &BuildPlan,
    session_id: &str,
    state: &State,
    failed: &[(usize, FailedVertex)],
) -> Vec<(usize, CacheFailure)> {
    let mut found: Vec<(usize, CacheFailure)> = Vec::new();
    let failure_at = |idx: Option<usize>| -> Option<(usize, &FailedVertex)> {
        let idx = idx?;
        failed.iter().find(|(i, _)| *i == idx).map(|(i, f)| (*i, f))
    };
    let mut add = |idx: usize, direction, entry: &CacheEntry, vertex: &FailedVertex| {
        if found.iter().any(|(i, _)| *i == idx) {
            return;
        }
        found.push((
            idx,
            CacheFailure {
                direction,
                entry: entry.redacted(),
                error: plan.scrubber.text(&vertex.error).into_owned(),
            },
        ));
    };
    let exports = plan
        .cache_exports
        .iter()
        .filter(|e| e.kind != CacheBackend::Inline);
    for (n, entry) in exports.enumerate() {
        let digest = sha256_digest(&format!("{session_id}-cache-{n}"));
        if let Some((idx, vertex)) = failure_at(state.index_of(&digest)) {
            add(idx, CacheDirection::Export, entry, vertex);
        }
    }
    for entry in &plan.cache_imports {
        let by_name = match entry.reference() {
            Some(r) if entry.kind == CacheBackend::Registry && !r.is_empty() => {
                let digest = sha256_digest(&format!("{IMPORT_PREFIX}{r}"));
                failure_at(state.index_of(&digest))
            }
            _ => {
                let prefix = format!("{IMPORT_PREFIX}{}:", entry.kind.as_str());
                failed
                    .iter()
                    .find(|(_, f)| f.name.starts_with(&prefix))
                    .map(|(i, f)| (*i, f))
            }
        };
        if let Some((idx, vertex)) = by_name {
            add(idx, CacheDirection::Import, entry, vertex);
        }
    }
    found.sort_by_key(|(i, _)| *i);
    found
}

/// What to tell about the steps that failed without failing the build: a
/// cache that does not exist yet or cannot be reached, a cache export with
/// `ignore-error=true`, a cache backend the daemon lacks.
pub(super) fn warnings(
    plan: &BuildPlan,
    failed: &[(usize, FailedVertex)],
    cache: &[(usize, CacheFailure)],
) -> Vec<String> {
    failed
        .iter()
        .map(|(idx, vertex)| {
            let cache = cache.iter().find(|(i, _)| i == idx).map(|(_, f)| f);
            match (super::failure::missing_cache_backend(&vertex.error), cache) {
                (Some(backend), _) => format!(
                    "cache import type={backend} skipped: {}",
                    crate::outcome::missing_cache_backend(backend)
                ),
                (None, Some(cache)) => cache.warning(),
                (None, None) => format!(
                    "{} failed, the build went on without it: {}",
                    vertex.name,
                    plan.scrubber.text(&vertex.error)
                ),
            }
        })
        .collect()
}

/// The cache export whose failure failed the build, by the daemon's
/// message (BuildKit sends the exporter's error without its vertex).
pub(super) fn failed_export<'a>(
    failures: &'a [(usize, CacheFailure)],
    message: &str,
) -> Option<&'a CacheFailure> {
    failures.iter().map(|(_, f)| f).find(|f| {
        f.direction == CacheDirection::Export
            && !f.entry.ignores_errors()
            && !f.error.is_empty()
            && (message.contains(&f.error) || f.error.contains(message))
    })
}

fn sha256_digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_ones_buildkit_gives_its_cache_vertices() {
        // Measured on the engine's BuildKit 0.13: session
        // dx5o3l3bu4s5aw64s6dsezzpo, a local export then a registry one.
        assert_eq!(
            sha256_digest("dx5o3l3bu4s5aw64s6dsezzpo-cache-1"),
            "sha256:d0bd9d8997b74c2d217f366d3cad8d954c85587ea056b58dc803cd7b327d790d"
        );
        assert_eq!(
            sha256_digest("importing cache manifest from 127.0.0.1:1/cache"),
            "sha256:7121b17bace1a58057082efdd556882b65b568c2a74f7c0d1bb9271475697633"
        );
    }

    #[test]
    fn the_export_that_failed_the_build_is_found_by_its_message() {
        let failure = |ignore: bool| {
            let mut entry = CacheEntry::registry("r:1/c");
            if ignore {
                entry.attrs.insert("ignore-error".into(), "true".into());
            }
            (
                3,
                CacheFailure {
                    direction: CacheDirection::Export,
                    entry,
                    error: "error writing layer blob: connection refused".into(),
                },
            )
        };
        let msg = "error writing layer blob: connection refused";
        assert!(failed_export(&[failure(false)], msg).is_some());
        assert!(failed_export(&[failure(false)], "exit code: 1").is_none());
        // An export that may fail did not fail the build.
        assert!(failed_export(&[failure(true)], msg).is_none());
    }
}
