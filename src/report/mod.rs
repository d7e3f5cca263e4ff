//! The end-of-build report as data: one schema, written by `rbuild build
//! --report` and `rbuild check --report`, and read back by `rbuild check
//! --last-report`, so a writer and its reader cannot drift apart. Dashboards
//! read the same JSON.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::buildspec::Build;
use crate::cache::CacheEntry;
use crate::dockerfile::{Refresh, RefreshedStep, UpstreamState};
use crate::outcome::{BuildResult, CacheReport};
use crate::progress::Summary;
use crate::progress::placement::{KeySource, Placement, Skipped};

/// What one build did: `--report FILE`, written for failed builds too.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BuildReport {
    /// Whether the build succeeded.
    pub status: Status,
    /// Wall time of the whole build, seconds.
    pub duration_seconds: f64,
    /// The steps as progress counted them.
    pub steps: StepCounts,
    /// The context upload; unknown (null) when the build failed.
    pub context: ContextUpload,
    /// Cache imports, credentials redacted.
    pub cache_from: Vec<CacheRef>,
    /// Cache exports, credentials redacted.
    pub cache_to: Vec<CacheRef>,
    /// What happened to them; unknown (null) when the build failed.
    pub cache: Option<CacheReport>,
    /// The image id, as `--iidfile` writes it.
    pub image_id: Option<String>,
    /// The image manifest: stable across rebuilds of the same image, unlike
    /// an index id that carries each build's own provenance.
    pub image_manifest: Option<String>,
    /// The first step that failed.
    pub failed_step: Option<FailedStep>,
    /// Each step whose cache key the freshness policy set; null when the
    /// build failed.
    pub freshness: Option<Vec<FreshnessStep>>,
    /// Which node of a pool built, by what key, and the nodes skipped.
    pub node: Option<NodeReport>,
    /// A multi-platform build split over nodes: each node and the
    /// platforms it built (one entry when one node built it all).
    pub nodes: Vec<NodeReport>,
}

/// How a build ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every output was produced.
    Succeeded,
    /// The build failed.
    Failed,
}

/// Step counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepCounts {
    /// Steps that started.
    pub total: usize,
    /// From the cache.
    pub cached: usize,
    /// Run.
    pub executed: usize,
    /// Failed.
    pub failed: usize,
    /// Time the executed steps ran, seconds.
    pub executed_seconds: f64,
}

/// The context upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContextUpload {
    /// Files whose contents were sent.
    pub files_sent: Option<u64>,
    /// Bytes of file contents sent.
    pub bytes_sent: Option<u64>,
    /// Entries the daemon was told about.
    pub entries_listed: Option<u64>,
}

/// A cache entry as the report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CacheRef {
    /// The backend (`registry`, `local`, `gha`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// The registry ref, for a registry cache.
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// Its attributes, credentials redacted.
    pub attrs: std::collections::BTreeMap<String, String>,
}

/// The failed step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedStep {
    /// Its name as progress shows it.
    pub name: String,
    /// The daemon's error.
    pub error: String,
}

/// A step keyed by the freshness policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FreshnessStep {
    /// Its Dockerfile line.
    pub line: usize,
    /// The instruction, URL credentials redacted.
    pub step: String,
    /// `upstream, else every 24h`, `every 6h`, or `forced`.
    pub policy: String,
    /// The cache key it got: what `rbuild check --last-report` compares.
    pub key: String,
    /// The window it fell in, for a windowed step.
    pub window: Option<String>,
    /// Each upstream as looked up, for an upstream-keyed step.
    pub upstreams: Vec<UpstreamReport>,
    /// Why it fell back to a window, if it did.
    pub warning: Option<String>,
}

/// One upstream of a step, as looked up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UpstreamReport {
    /// The git ref or URL, credentials redacted.
    pub upstream: String,
    /// What it is now (a commit, an ETag), when it could be looked up.
    pub identity: Option<String>,
    /// Why it could not be.
    pub problem: Option<String>,
}

/// A pool node that built.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeReport {
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// The route key.
    pub route_key: String,
    /// Where the key came from.
    pub route_key_source: KeySource,
    /// Nodes passed over before it.
    pub skipped: Vec<Skipped>,
    /// The platforms it built, for a split build.
    pub platforms: Vec<String>,
}

impl BuildReport {
    /// The report of `build`, which took `took`: `result` is `None` for a
    /// failed build; `placements` are the pool's, empty for a lone daemon.
    pub fn new(
        summary: &Summary,
        result: Option<&BuildResult>,
        build: &Build,
        took: Duration,
        placements: &[&Placement],
    ) -> BuildReport {
        let upload = result.map(|r| &r.upload);
        let (from, to) = build.cache_entries();
        BuildReport {
            status: if result.is_some() {
                Status::Succeeded
            } else {
                Status::Failed
            },
            duration_seconds: took.as_secs_f64(),
            steps: StepCounts {
                total: summary.total,
                cached: summary.cached,
                executed: summary.executed,
                failed: summary.failed,
                executed_seconds: summary.executed_time.as_secs_f64(),
            },
            context: ContextUpload {
                files_sent: upload.map(|t| t.files_sent),
                bytes_sent: upload.map(|t| t.bytes_sent),
                entries_listed: upload.map(|t| t.entries_listed),
            },
            cache_from: from.iter().map(CacheRef::of).collect(),
            cache_to: to.iter().map(CacheRef::of).collect(),
            cache: result.map(BuildResult::cache_report),
            image_id: result
                .and_then(BuildResult::image_id)
                .map(|d| d.to_string()),
            image_manifest: result
                .and_then(|r| r.outputs.iter().find_map(|o| o.image_manifest()))
                .map(|d| d.to_string()),
            failed_step: summary.failed_vertex.as_ref().map(|f| FailedStep {
                name: f.name.clone(),
                error: f.error.clone(),
            }),
            freshness: result.map(|r| r.freshness.iter().map(FreshnessStep::of).collect()),
            node: placements.first().map(|p| NodeReport::of(p)),
            nodes: placements.iter().map(|p| NodeReport::of(p)).collect(),
        }
    }
}

impl CacheRef {
    fn of(entry: &CacheEntry) -> CacheRef {
        CacheRef {
            kind: entry.kind.as_str().to_string(),
            reference: entry.reference().map(str::to_string),
            attrs: entry.redacted().attrs,
        }
    }
}

impl NodeReport {
    fn of(p: &Placement) -> NodeReport {
        NodeReport {
            name: p.node.clone(),
            address: p.address.clone(),
            route_key: p.key.value.clone(),
            route_key_source: p.key.source,
            skipped: p.skipped.clone(),
            platforms: p.platforms.clone(),
        }
    }
}

impl FreshnessStep {
    /// A step as the report keeps it; no URL credentials (steps and
    /// upstreams are redacted).
    pub fn of(s: &RefreshedStep) -> FreshnessStep {
        FreshnessStep {
            line: s.line,
            step: crate::upstream::redact_urls(&s.instruction),
            policy: policy(s),
            key: s.key.clone(),
            window: (!s.window.is_empty()).then(|| s.window.clone()),
            upstreams: s.upstreams.iter().map(UpstreamReport::of).collect(),
            warning: s.warning(),
        }
    }
}

impl UpstreamReport {
    /// An upstream as the report keeps it.
    pub fn of(u: &UpstreamState) -> UpstreamReport {
        UpstreamReport {
            upstream: u.upstream.clone(),
            identity: u.identity.as_ref().map(|i| i.key_text()),
            problem: u.problem.clone(),
        }
    }
}

/// `upstream, else every 24h`, `every 6h`, or `forced` (a refresh alone).
pub fn policy(step: &RefreshedStep) -> String {
    match step.refresh {
        Refresh::Every(d) if d.is_zero() => "forced".to_string(),
        r => r.to_string(),
    }
}

/// What `rbuild check --report` writes: each fetching step, its policy,
/// its upstreams now and what the next build would do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckReport {
    /// The Dockerfile checked.
    pub dockerfile: String,
    /// Its fetching steps, in file order.
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// The report of a check of `dockerfile`.
    pub fn new(dockerfile: String, steps: Vec<CheckStep>) -> CheckReport {
        CheckReport { dockerfile, steps }
    }
}

/// One fetching step of a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckStep {
    /// Its Dockerfile line.
    pub line: usize,
    /// The instruction, URL credentials redacted.
    pub step: String,
    /// Its freshness policy.
    pub policy: String,
    /// What it fetches (`git clone`, `curl`, ...).
    pub fetches: Vec<String>,
    /// Each upstream as looked up now.
    pub upstreams: Vec<UpstreamReport>,
    /// The key the next build would give it.
    pub key: Option<String>,
    /// What the next build would do with it, in words.
    pub next_build: String,
}

impl CheckStep {
    /// A step of a check.
    pub fn new(
        line: usize,
        step: String,
        policy: String,
        fetches: Vec<String>,
        upstreams: Vec<UpstreamReport>,
        key: Option<String>,
        next_build: String,
    ) -> CheckStep {
        CheckStep {
            line,
            step,
            policy,
            fetches,
            upstreams,
            key,
            next_build,
        }
    }
}

/// Why a previous report cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not a report of a build or of a check.
    #[error("{}: not a JSON report of a build or a check: {source}", path.display())]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's complaint.
        source: serde_json::Error,
    },
}

/// The cache keys a previous build (its `freshness`) or check (its
/// `steps`) gave each step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastKeys {
    /// (line, step as the report shows it, key).
    steps: Vec<(usize, String, String)>,
}

/// Either report, by the list that holds the keys.
#[derive(Deserialize)]
struct AnyReport {
    #[serde(default)]
    freshness: Option<Vec<KeyedStep>>,
    #[serde(default)]
    steps: Option<serde_json::Value>,
}

/// The fields both reports' steps share.
#[derive(Deserialize)]
struct KeyedStep {
    line: usize,
    step: String,
    key: Option<String>,
}

impl LastKeys {
    /// Reads a build's `--report` or a check's.
    ///
    /// # Errors
    ///
    /// [`ReportError`] when the file cannot be read or is not a report.
    pub fn read(path: &Path) -> Result<LastKeys, ReportError> {
        let data = std::fs::read(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse = |source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        };
        let report: AnyReport = serde_json::from_slice(&data).map_err(parse)?;
        let keyed: Vec<KeyedStep> = match (report.freshness, report.steps) {
            (Some(steps), _) => steps,
            // A check's steps, or a build report's step counts (no keys).
            (None, Some(v)) if v.is_array() => serde_json::from_value(v).map_err(parse)?,
            _ => Vec::new(),
        };
        Ok(LastKeys {
            steps: keyed
                .into_iter()
                .filter_map(|s| Some((s.line, s.step, s.key?)))
                .collect(),
        })
    }

    /// The key the step had: same text and line, else same text (lines
    /// above it may have moved).
    pub fn key(&self, line: usize, step: &str) -> Option<&str> {
        let same = |(l, s, _): &&(usize, String, String)| *l == line && s == step;
        self.steps
            .iter()
            .find(same)
            .or_else(|| self.steps.iter().find(|(_, s, _)| s == step))
            .map(|(_, _, k)| k.as_str())
    }
}
