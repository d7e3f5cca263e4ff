//! The end-of-build report: one line for CI logs, and the same facts as
//! JSON for dashboards (`--report FILE`).

use std::time::Duration;

use rbuild::cache::CacheEntry;
use rbuild::progress::Summary;
use rbuild::solve::{BuildOutcome, BuildPlan};

use super::build::image_id;

/// One line a CI log reader can grep: what ran, what was cached, what the
/// context upload cost.
pub fn line(summary: &Summary, outcome: &BuildOutcome, plan: &BuildPlan) -> String {
    use rbuild::progress::units::{bytes, secs};
    let t = &outcome.transfer;
    let mut line = format!(
        "rbuild: {} steps: {} cached, {} executed in {}s; context: {} files ({}) sent, {} entries listed",
        summary.total,
        summary.cached,
        summary.executed,
        secs(summary.executed_time),
        t.files_sent(),
        bytes(t.bytes_sent()),
        t.stats_sent(),
    );
    let describe = |entries: &[CacheEntry]| -> String {
        let names: Vec<String> = entries
            .iter()
            .map(|e| match e.kind.as_str() {
                "registry" => e.reference().unwrap_or_default().to_string(),
                "local" => e
                    .attrs
                    .get("src")
                    .or_else(|| e.attrs.get("dest"))
                    .cloned()
                    .unwrap_or_default(),
                other => other.to_string(),
            })
            .collect();
        names.join(", ")
    };
    if !plan.cache_imports.is_empty() {
        line.push_str(&format!("; cache from {}", describe(&plan.cache_imports)));
    }
    if !plan.cache_exports.is_empty() {
        line.push_str(&format!("; cache to {}", describe(&plan.cache_exports)));
    }
    line
}

/// The report line's facts as JSON; `outcome` is None for a failed build.
pub fn json(
    summary: &Summary,
    outcome: Option<&BuildOutcome>,
    plan: &BuildPlan,
    took: Duration,
) -> serde_json::Value {
    let refs = |entries: &[CacheEntry]| -> Vec<serde_json::Value> {
        entries
            .iter()
            .map(|e| serde_json::json!({"type": e.kind, "ref": e.reference(), "attrs": e.attrs}))
            .collect()
    };
    let transfer = outcome.map(|o| &o.transfer);
    serde_json::json!({
        "status": if outcome.is_some() { "succeeded" } else { "failed" },
        "duration_seconds": took.as_secs_f64(),
        "steps": {
            "total": summary.total,
            "cached": summary.cached,
            "executed": summary.executed,
            "failed": summary.failed,
            "executed_seconds": summary.executed_time.as_secs_f64(),
        },
        "context": {
            "files_sent": transfer.map(|t| t.files_sent()),
            "bytes_sent": transfer.map(|t| t.bytes_sent()),
            "entries_listed": transfer.map(|t| t.stats_sent()),
        },
        "cache_from": refs(&plan.cache_imports),
        "cache_to": refs(&plan.cache_exports),
        "image_id": outcome.and_then(image_id),
        "failed_step": summary.failed_vertex.as_ref().map(|f| serde_json::json!({"name": f.name, "error": f.error})),
    })
}
