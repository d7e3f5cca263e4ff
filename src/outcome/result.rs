//! What a finished build gives back: each output's result, the cache
//! report, the context upload and warnings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use crate::cache::{CacheDirection, CacheEntry, CacheFailure, CacheStatus};
use crate::digest::Digest;
use crate::dockerfile::RefreshedStep;
use crate::output::{Destination, OutputResult};
use crate::progress::Summary;
use crate::progress::status::Warning;
use crate::session::filesync::TransferStats;
use crate::subrequests::CallResult;

/// A successful build.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct BuildResult {
    /// The build's name ([`Build::named`](crate::Build::named)), if any.
    pub name: Option<String>,
    /// The build's ref, as the daemon's history shows it.
    pub build_ref: String,
    /// What each output produced, in the order the daemon ran the exporters
    /// (the CLI's flags order; on a Docker Engine the image outputs merge
    /// into one).
    pub outputs: Vec<OutputResult>,
    /// The daemon's merged exporter response (`containerimage.digest`, ...).
    /// BuildKit merges all exporters' keys, the last one winning; the
    /// per-output metadata in [`BuildResult::outputs`] is exact.
    pub exporter_response: BTreeMap<String, String>,
    /// Steps run, cached and executed.
    pub steps: StepReport,
    /// The context upload through this build's own session.
    pub upload: UploadStats,
    /// With `Client::build_all`, the upload through the session that
    /// serves this context to every build of the call that reads it: the
    /// same counters for all of them, to be counted once. Daemons whose
    /// Dockerfile frontend ignores the `local-sessionid` option (before
    /// BuildKit 0.15) read from the build's own session instead, and these
    /// counters stay at zero.
    pub shared_upload: Option<UploadStats>,
    /// Cache sources the build used, as sent (environment values filled
    /// in, inactive entries left out), credentials redacted.
    pub cache_from: Vec<CacheEntry>,
    /// Cache destinations, likewise.
    pub cache_to: Vec<CacheEntry>,
    /// Cache imports and exports that failed without failing the build
    /// (an unreachable cache, an export with `ignore-error=true`); each is
    /// also among the warnings.
    pub cache_failures: Vec<CacheFailure>,
    /// The SLSA provenance predicates BuildKit attached, as its build record
    /// keeps them: keyed by platform for a multi-platform build, by `""`
    /// otherwise. Empty when the build attached none.
    pub provenance: BTreeMap<String, serde_json::Value>,
    /// Things worth knowing that did not fail the build: cache entries left
    /// out, steps that failed without failing it, registries the daemon
    /// asked credentials for that the build does not name (none were sent).
    pub warnings: Vec<String>,
    /// The steps whose cache key the freshness policy set, with their
    /// upstreams as looked up for this build; [`RefreshedStep::warning`]
    /// tells a step that fell back to its window (progress shows those
    /// warnings too, so they are not repeated in `warnings`).
    pub freshness: Vec<RefreshedStep>,
    /// Files and directories written on this machine.
    pub written: Vec<PathBuf>,
    /// The frontend's answer, for a build that asked a
    /// [`Call`](crate::subrequests::Call) instead of building.
    pub call: Option<CallResult>,
    /// The warnings the frontend reported while it ran (the Dockerfile's
    /// build checks, on frontends that run them on every build), each once,
    /// in the order they came; [`BuildResult::warnings_json`] is buildx's
    /// form of them.
    pub frontend_warnings: Vec<Warning>,
    /// The file `Client::read_file` asked for.
    pub(crate) read: Option<bytes::Bytes>,
    /// Wall time from start to the last output written.
    pub duration: Duration,
}

/// How much provenance the metadata file carries (buildx's
/// `BUILDX_METADATA_PROVENANCE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetadataProvenance {
    /// Without the build's steps and timing (buildx's default).
    #[default]
    Min,
    /// All of it.
    Max,
    /// None.
    Off,
}

/// The cache report: how many steps ran and how many came from cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepReport {
    /// Steps that started (or showed output).
    pub total: usize,
    /// Steps taken from the cache.
    pub cached: usize,
    /// Steps that ran and succeeded.
    pub executed: usize,
    /// Steps that failed without failing the build (a missing cache ref).
    pub failed: usize,
    /// Time the executed steps ran, by the daemon's clock.
    pub executed_time: Duration,
    /// Warnings the frontend reported (e.g. Dockerfile lint).
    pub warnings: usize,
}

impl From<&Summary> for StepReport {
    fn from(s: &Summary) -> Self {
        StepReport {
            total: s.total,
            cached: s.cached,
            executed: s.executed,
            failed: s.failed,
            executed_time: s.executed_time,
            warnings: s.warnings,
        }
    }
}

/// The upload of the build's context directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadStats {
    /// Files whose content was sent.
    pub files_sent: u64,
    /// Bytes of file content sent.
    pub bytes_sent: u64,
    /// Entries listed (stats sent, with or without content).
    pub entries_listed: u64,
    /// True when other builds read the same upload (only ever set on
    /// [`BuildResult::shared_upload`]).
    pub shared: bool,
}

impl UploadStats {
    pub(crate) fn of(stats: &TransferStats, shared: bool) -> Self {
        UploadStats {
            files_sent: stats.files_sent(),
            bytes_sent: stats.bytes_sent(),
            entries_listed: stats.stats_sent(),
            shared,
        }
    }
}

impl BuildResult {
    /// The image id (config digest) of the image the build produced, if any.
    pub fn image_id(&self) -> Option<Digest> {
        let r = &self.exporter_response;
        r.get("containerimage.config.digest")
            .or_else(|| r.get("containerimage.digest"))
            .and_then(|d| d.parse().ok())
    }

    /// How the cache imports (or exports) went as a whole.
    pub fn cache_status(&self, direction: CacheDirection) -> CacheStatus {
        let entries = match direction {
            CacheDirection::Import => self.cache_from.len(),
            CacheDirection::Export => self.cache_to.len(),
        };
        let failed = self
            .cache_failures
            .iter()
            .filter(|f| f.direction == direction)
            .count();
        CacheStatus::of(entries, failed)
    }

    /// The cache's outcome as reports show it: `import` and `export` are
    /// `none`, `succeeded` or `failed`; `failures` lists each failed entry
    /// (direction, type, target, error).
    pub fn cache_report(&self) -> CacheReport {
        CacheReport {
            import: self
                .cache_status(CacheDirection::Import)
                .as_str()
                .to_string(),
            export: self
                .cache_status(CacheDirection::Export)
                .as_str()
                .to_string(),
            failures: self
                .cache_failures
                .iter()
                .map(|f| CacheFailureReport {
                    direction: f.direction.as_str().to_string(),
                    kind: f.entry.kind.as_str().to_string(),
                    target: f.entry.target(),
                    error: f.error.clone(),
                })
                .collect(),
        }
    }

    /// The result as buildx writes `--metadata-file`: the daemon's keys (the
    /// descriptor decoded into JSON), plus `rbuild.outputs` with each
    /// output's own entry (type, dest, digest, name) and, for a build with
    /// a cache, `rbuild.cache` ([`BuildResult::cache_report`]).
    pub fn metadata_json(&self) -> serde_json::Value {
        self.metadata_json_with(MetadataProvenance::default())
    }

    /// [`BuildResult::metadata_json`] with `provenance` deciding how much of
    /// the build's provenance goes in (`buildx.build.provenance`, or
    /// `buildx.build.provenance/PLATFORM` for a multi-platform build).
    pub fn metadata_json_with(&self, provenance: MetadataProvenance) -> serde_json::Value {
        let mut json = metadata_map(&self.exporter_response);
        for (platform, predicate) in &self.provenance {
            let Some(value) = super::provenance::for_metadata(predicate, provenance) else {
                continue;
            };
            let key = if platform.is_empty() {
                "buildx.build.provenance".to_string()
            } else {
                format!("buildx.build.provenance/{platform}")
            };
            json.insert(key, value);
        }
        json.insert("rbuild.outputs".into(), outputs_json(&self.outputs));
        if !self.cache_from.is_empty() || !self.cache_to.is_empty() {
            json.insert(
                "rbuild.cache".into(),
                serde_json::to_value(self.cache_report()).unwrap_or_default(),
            );
        }
        serde_json::Value::Object(json)
    }
}

impl OutputResult {
    /// The image manifest (or index) digest this output produced.
    pub fn digest(&self) -> Option<Digest> {
        self.metadata
            .get("containerimage.digest")
            .and_then(|d| d.parse().ok())
    }

    /// The image manifest's digest: the output's own digest when it is a
    /// manifest, the one image manifest of the index it exported otherwise
    /// (provenance makes every build's index unique; this stays the same).
    /// `None` for a multi-platform index: see [`OutputResult::image_manifests`].
    pub fn image_manifest(&self) -> Option<Digest> {
        if !self.image_manifests.is_empty() {
            let mut all = self.image_manifests.values();
            return match (all.next(), all.next()) {
                (Some(one), None) => Some(one.clone()),
                _ => None,
            };
        }
        let descriptor = self.metadata.get("containerimage.descriptor")?;
        let media_type = decode_json_b64(descriptor)?["mediaType"]
            .as_str()?
            .to_string();
        if media_type.contains("index") || media_type.contains("manifest.list") {
            return None;
        }
        self.digest()
    }

    /// The image config digest (Docker's image id).
    pub fn config_digest(&self) -> Option<Digest> {
        self.metadata
            .get("containerimage.config.digest")
            .and_then(|d| d.parse().ok())
    }

    /// The image names this output carried.
    pub fn names(&self) -> Vec<&str> {
        self.metadata
            .get("image.name")
            .map(|n| n.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// Keys as buildx writes them: descriptors decoded, the rest as strings.
fn metadata_map(response: &BTreeMap<String, String>) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    for (k, v) in response {
        let value = if k.ends_with(".descriptor") {
            decode_json_b64(v).unwrap_or_else(|| serde_json::Value::String(v.clone()))
        } else {
            serde_json::Value::String(v.clone())
        };
        map.insert(k.clone(), value);
    }
    map
}

fn outputs_json(outputs: &[OutputResult]) -> serde_json::Value {
    let list = outputs
        .iter()
        .map(|o| {
            let mut entry = metadata_map(&o.metadata);
            entry.insert("type".into(), o.kind.as_str().into());
            let dest = match &o.dest {
                Destination::File(p) | Destination::Dir(p) => Some(p.display().to_string()),
                Destination::Stdout => Some("-".to_string()),
                Destination::Load => Some("docker".to_string()),
                Destination::Stream(_) => Some("stream".to_string()),
                Destination::Daemon => None,
            };
            if let Some(dest) = dest {
                entry.insert("dest".into(), dest.into());
            }
            if !o.image_manifests.is_empty() {
                let manifests = o
                    .image_manifests
                    .iter()
                    .map(|(p, d)| (p.clone(), serde_json::Value::String(d.to_string())))
                    .collect();
                entry.insert(
                    "rbuild.image.manifests".into(),
                    serde_json::Value::Object(manifests),
                );
            }
            serde_json::Value::Object(entry)
        })
        .collect();
    serde_json::Value::Array(list)
}

fn decode_json_b64(v: &str) -> Option<serde_json::Value> {
    let raw = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// What happened to a build's caches, as reports and the metadata file's
/// `rbuild.cache` show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CacheReport {
    /// `none`, `succeeded` or `failed`.
    pub import: String,
    /// `none`, `succeeded` or `failed`.
    pub export: String,
    /// Each entry that failed.
    pub failures: Vec<CacheFailureReport>,
}

/// One cache entry that failed without failing the build.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct CacheFailureReport {
    /// `import` or `export`.
    pub direction: String,
    /// The backend.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it was going or coming from.
    pub target: String,
    /// The daemon's reason.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_decodes_the_descriptor() {
        let desc = base64::engine::general_purpose::STANDARD
            .encode(br#"{"mediaType":"m","digest":"sha256:1","size":3}"#);
        let mut r = BTreeMap::new();
        r.insert("containerimage.descriptor".to_string(), desc);
        r.insert("containerimage.digest".to_string(), "sha256:1".to_string());
        let json = serde_json::Value::Object(metadata_map(&r));
        assert_eq!(json["containerimage.descriptor"]["size"], 3);
        assert_eq!(json["containerimage.digest"], "sha256:1");
    }
}
