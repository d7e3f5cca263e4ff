//! The end-of-build report: one line for CI logs, and the same facts as
//! JSON for dashboards (`--report FILE`).

use std::time::Duration;

use rbuild::cache::{CacheDirection, CacheStatus};
use rbuild::dockerfile::{Refresh, RefreshedStep};
use rbuild::pool::Placement;
use rbuild::progress::Summary;
use rbuild::{Build, BuildResult, CacheEntry};

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

/// The report line's facts as JSON; `result` is None for a failed build.
pub fn json(
    summary: &Summary,
    result: Option<&BuildResult>,
    build: &Build,
    took: Duration,
    placements: &[&Placement],
) -> serde_json::Value {
    let node = |p: &Placement| {
        serde_json::json!({
            "name": p.node,
            "address": p.address,
            "route_key": p.key.value,
            "route_key_source": p.key.source,
            "skipped": p.skipped,
            "platforms": p.platforms,
        })
    };
    let refs = |entries: &[CacheEntry]| -> Vec<serde_json::Value> {
        entries
            .iter()
            .map(|e| {
                let shown = e.redacted();
                serde_json::json!({"type": e.kind.as_str(), "ref": e.reference(), "attrs": shown.attrs})
            })
            .collect()
    };
    let upload = result.map(|r| &r.upload);
    let (from, to) = build.cache_entries();
    serde_json::json!({
        "status": if result.is_some() { "succeeded" } else { "failed" },
        "duration_seconds": took.as_secs_f64(),
        "steps": {
            "total": summary.total,
            "cached": summary.cached,
            "executed": summary.executed,
            "failed": summary.failed,
            "executed_seconds": summary.executed_time.as_secs_f64(),
        },
        "context": {
            "files_sent": upload.map(|t| t.files_sent),
            "bytes_sent": upload.map(|t| t.bytes_sent),
            "entries_listed": upload.map(|t| t.entries_listed),
        },
        "cache_from": refs(&from),
        "cache_to": refs(&to),
        // What happened to them; unknown (null) when the build failed.
        "cache": result.map(BuildResult::cache_json),
        "image_id": result.and_then(BuildResult::image_id),
        // Stable across rebuilds of the same image, unlike an index id
        // that carries each build's own provenance.
        "image_manifest": result.and_then(|r| r.outputs.iter().find_map(|o| o.image_manifest())),
        "failed_step": summary.failed_vertex.as_ref().map(|f| serde_json::json!({"name": f.name, "error": f.error})),
        "freshness": result.map(|r| freshness(&r.freshness)),
        // Which node of a pool built, by what key, and the nodes skipped.
        "node": placements.first().map(|p| node(p)),
        // A multi-platform build split over nodes: each node and the
        // platforms it built (one entry when one node built it all).
        "nodes": placements.iter().map(|p| node(p)).collect::<Vec<_>>(),
    })
}

/// Each step whose key the freshness policy set: its policy, its key (what
/// `rbuild check --last-report` compares), and for an upstream-keyed step
/// each upstream as looked up. No URL credentials: steps and upstreams are
/// redacted.
pub fn freshness(steps: &[RefreshedStep]) -> serde_json::Value {
    steps
        .iter()
        .map(|s| {
            let upstreams: Vec<serde_json::Value> = s
                .upstreams
                .iter()
                .map(|u| {
                    serde_json::json!({
                        "upstream": u.upstream,
                        "identity": u.identity.as_ref().map(|i| i.key_text()),
                        "problem": u.problem,
                    })
                })
                .collect();
            serde_json::json!({
                "line": s.line,
                "step": rbuild::upstream::redact_urls(&s.instruction),
                "policy": policy(s),
                "key": s.key,
                "window": (!s.window.is_empty()).then_some(&s.window),
                "upstreams": upstreams,
                "warning": s.warning(),
            })
        })
        .collect()
}

/// `upstream, else every 24h`, `every 6h`, or `forced` (`--refresh` alone).
pub fn policy(step: &RefreshedStep) -> String {
    match step.refresh {
        Refresh::Every(d) if d.is_zero() => "forced".to_string(),
        r => r.to_string(),
    }
}
