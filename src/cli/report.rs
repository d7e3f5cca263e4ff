//! The end-of-build report: one line for CI logs, and the same facts as
//! JSON for dashboards (`--report FILE`).

use rbuild::cache::{CacheDirection, CacheStatus};
use rbuild::pool::Placement;
use rbuild::{BuildResult, CacheEntry};

/// One line a CI log reader can grep: what ran, what was cached, what the
/// context upload cost, and which node of a pool built.
pub fn line(result: &BuildResult, placements: &[&Placement]) -> String {
    use rbuild::progress::units::{bytes, secs};
    let (s, t) = (&result.steps, &result.upload);
    let mut line = format!(
        "rbuild: {} steps: {} cached, {} executed in {}s; context: {} files ({}) sent, {} entries listed",
        s.total,
        s.cached,
        s.executed,
        secs(s.executed_time),
        t.files_sent,
        bytes(t.bytes_sent),
        t.entries_listed,
    );
    if !result.cache_from.is_empty() {
        line.push_str(&format!("; cache from {}", describe(&result.cache_from)));
    }
    if !result.cache_to.is_empty() {
        line.push_str(&format!("; cache to {}", describe(&result.cache_to)));
    }
    for (direction, word) in [
        (CacheDirection::Import, "import"),
        (CacheDirection::Export, "export"),
    ] {
        if result.cache_status(direction) == CacheStatus::Failed {
            line.push_str(&format!("; cache {word} FAILED"));
        }
    }
    let skipped: Vec<&str> = placements
        .iter()
        .flat_map(|p| p.skipped.iter().map(|s| s.node.as_str()))
        .collect();
    match placements {
        [] => {}
        [p] => line.push_str(&format!("; built on {}", p.node)),
        many => {
            let parts: Vec<String> = many
                .iter()
                .map(|p| format!("{} on {}", p.platforms.join(", "), p.node))
                .collect();
            line.push_str(&format!("; built {}", parts.join(", ")));
        }
    }
    if !skipped.is_empty() {
        line.push_str(&format!(" (skipped {})", skipped.join(", ")));
    }
    if placements.len() > 1
        && let Some(digest) = result.exporter_response.get("containerimage.digest")
    {
        line.push_str(&format!("; index {digest} pushed"));
    }
    line
}

/// The steps of every part of the build, counted together; the first
/// failed step is the one reported.
pub fn combined(
    parts: impl Iterator<Item = rbuild::progress::Summary>,
) -> rbuild::progress::Summary {
    parts.fold(rbuild::progress::Summary::default(), |mut all, part| {
        all.total += part.total;
        all.cached += part.cached;
        all.executed += part.executed;
        all.failed += part.failed;
        all.executed_time += part.executed_time;
        all.warnings += part.warnings;
        if all.failed_vertex.is_none() {
            all.failed_vertex = part.failed_vertex;
        }
        all
    })
}

fn describe(entries: &[CacheEntry]) -> String {
    use rbuild::cache::CacheBackend;
    let names: Vec<String> = entries
        .iter()
        .map(|e| match &e.kind {
            CacheBackend::Registry => e.reference().unwrap_or_default().to_string(),
            CacheBackend::Local => e
                .attrs
                .get("src")
                .or_else(|| e.attrs.get("dest"))
                .cloned()
                .unwrap_or_default(),
            other => other.as_str().to_string(),
        })
        .collect();
    names.join(", ")
}
