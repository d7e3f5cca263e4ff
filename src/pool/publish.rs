//! Publishing a split multi-platform build: the names its index goes
//! under ([`Targets`]), the index assembled from each platform's pushed
//! image as the registry stores it (descriptors copied, never rebuilt, so
//! attestation manifests keep pointing at their images), and the one
//! [`BuildResult`] that stands for the whole build.

use std::collections::BTreeMap;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;

use super::across::Part;
use crate::buildspec::{Build, InvalidBuild, SplitRefusal};
use crate::outcome::{BuildError, BuildResult};
use crate::output::Output;
use crate::output::OutputResult;
use crate::registry::{self, Registry, RegistryOptions, Repository};

/// Where the assembled index goes: every repository and tag the build names.
pub(super) struct Targets {
    pub(super) names: Vec<(Repository, String)>,
}

impl Targets {
    /// The names the index is published under; refuses what only one node
    /// could produce.
    pub(super) fn of(build: &Build) -> Result<Targets, InvalidBuild> {
        let across = |reason: SplitRefusal| InvalidBuild::AcrossNodes { reason };
        let mut names: Vec<String> = Vec::new();
        let mut pushed = false;
        for output in &build.outputs {
            match output {
                Output::Image(image) if image.push => {
                    pushed = true;
                    let own = if image.names.is_empty() {
                        &build.tags
                    } else {
                        &image.names
                    };
                    names.extend(own.iter().cloned());
                }
                Output::CacheOnly => {}
                Output::Image(_) => {
                    return Err(across(SplitRefusal::ImageNotPushed));
                }
                _ => {
                    return Err(across(SplitRefusal::LocalOutput));
                }
            }
        }
        if !pushed && !build.outputs.iter().any(|o| matches!(o, Output::CacheOnly)) {
            return Err(across(SplitRefusal::NothingPushed));
        }
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            let (repo, tag) = registry::image_name(&name).map_err(|source| {
                across(SplitRefusal::Unpublishable {
                    name: name.clone(),
                    source,
                })
            })?;
            if !registry::is_valid_tag(&format!("{tag}-linux-amd64-v8")) {
                return Err(across(SplitRefusal::TagTooLong { name }));
            }
            if !out.iter().any(|(r, t)| *r == repo && *t == tag) {
                out.push((repo, tag));
            }
        }
        Ok(Targets { names: out })
    }

    /// Reads each platform's pushed image back and publishes the index
    /// under every target; the index's digest and size.
    pub(super) async fn publish(
        &self,
        build: &Build,
        built: &[(&Part, BuildResult)],
    ) -> Result<Option<Index>, BuildError> {
        let Some((first_repo, _)) = self.names.first() else {
            return Ok(None);
        };
        let options = RegistryOptions {
            docker_config: build.registry_auth.clone(),
            ..RegistryOptions::default()
        };
        let reader = Registry::new(first_repo.clone(), options.clone());
        let fail = |e: registry::RegistryError| BuildError::Publish {
            detail: e.to_string(),
        };
        let mut entries: Vec<serde_json::Value> = Vec::new();
        let mut manifests = BTreeMap::new();
        let mut oci = false;
        for (part, result) in built {
            let digest = pushed_digest(result).ok_or_else(|| BuildError::Publish {
                detail: format!("the {} build reported no pushed image", part.platform),
            })?;
            let digest = registry::Digest::try_from(digest.to_string()).map_err(|e| {
                BuildError::Publish {
                    detail: format!(
                        "the {} build reported digest {digest:?}: {e}",
                        part.platform
                    ),
                }
            })?;
            let raw = reader.manifest_bytes(&digest).await.map_err(fail)?;
            oci |= raw.media_type.contains("oci");
            let doc: serde_json::Value =
                serde_json::from_slice(&raw.body).map_err(|e| BuildError::Publish {
                    detail: format!("{first_repo}@{digest} is not JSON: {e}"),
                })?;
            match doc.get("manifests").and_then(|m| m.as_array()) {
                Some(children) => {
                    for child in children {
                        if let (Some(d), Some(p)) = (child["digest"].as_str(), platform_of(child))
                            && !is_attestation(child)
                        {
                            manifests.insert(p, d.to_string());
                        }
                        entries.push(child.clone());
                    }
                }
                None => {
                    manifests.insert(part.platform.clone(), digest.to_string());
                    entries.push(serde_json::json!({
                        "mediaType": raw.media_type,
                        "digest": digest.as_str(),
                        "size": raw.body.len(),
                        "platform": platform_json(&part.platform),
                    }));
                }
            }
        }
        let media_type = if oci {
            registry::manifest::OCI_INDEX
        } else {
            registry::manifest::DOCKER_LIST
        };
        let body = Bytes::from(
            serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media_type,
                "manifests": entries,
            }))
            .map_err(|e| BuildError::Publish {
                detail: format!("cannot write the index: {e}"),
            })?,
        );
        let mut digest = None;
        for (repo, tag) in &self.names {
            let writer = Registry::new(repo.clone(), options.clone());
            let d = writer
                .put_manifest(tag, media_type, body.clone())
                .await
                .map_err(fail)?;
            tracing::debug!(%repo, %tag, digest = %d, "published the index");
            digest = Some(d);
        }
        Ok(digest.map(|digest| Index {
            digest: digest.to_string(),
            media_type,
            size: body.len(),
            manifests,
        }))
    }
}

/// The published index.
pub(super) struct Index {
    digest: String,
    media_type: &'static str,
    size: usize,
    /// Platform → image manifest digest.
    manifests: BTreeMap<String, String>,
}

/// The digest a platform's image output pushed.
fn pushed_digest(result: &BuildResult) -> Option<&str> {
    result
        .outputs
        .iter()
        .find(|o| o.pushed)
        .and_then(|o| o.metadata.get("containerimage.digest"))
        .or_else(|| result.exporter_response.get("containerimage.digest"))
        .map(String::as_str)
}

fn is_attestation(descriptor: &serde_json::Value) -> bool {
    descriptor["annotations"]["vnd.docker.reference.type"].as_str() == Some("attestation-manifest")
}

/// `os/arch[/variant]` of an index entry.
fn platform_of(descriptor: &serde_json::Value) -> Option<String> {
    let p = descriptor.get("platform")?;
    let (os, arch) = (p["os"].as_str()?, p["architecture"].as_str()?);
    Some(match p["variant"].as_str() {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

fn platform_json(platform: &str) -> serde_json::Value {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or_default();
    let arch = parts.next().unwrap_or_default();
    let mut p = serde_json::json!({"architecture": arch, "os": os});
    if let Some(v) = parts.next().filter(|v| !v.is_empty()) {
        p["variant"] = v.into();
    }
    p
}

/// One result for the whole build: the index as its image, the parts'
/// steps, uploads, caches, provenance and warnings together.
pub(super) fn merged(
    build: &Build,
    built: &[(&Part, BuildResult)],
    index: Option<Index>,
    targets: &Targets,
    started: Instant,
) -> BuildResult {
    let mut result = built[0].1.clone();
    result.name = build.name.clone();
    result.build_ref = built
        .iter()
        .map(|(_, r)| r.build_ref.as_str())
        .collect::<Vec<_>>()
        .join(",");
    for (_, r) in &built[1..] {
        let (s, o) = (&mut result.steps, &r.steps);
        s.total += o.total;
        s.cached += o.cached;
        s.executed += o.executed;
        s.failed += o.failed;
        s.executed_time += o.executed_time;
        s.warnings += o.warnings;
        result.upload.files_sent += r.upload.files_sent;
        result.upload.bytes_sent += r.upload.bytes_sent;
        result.upload.entries_listed += r.upload.entries_listed;
        result
            .cache_failures
            .extend(r.cache_failures.iter().cloned());
        result.written.extend(r.written.iter().cloned());
    }
    result.shared_upload = None;
    result.cache_from = built
        .iter()
        .flat_map(|(_, r)| r.cache_from.clone())
        .collect();
    result.cache_to = built.iter().flat_map(|(_, r)| r.cache_to.clone()).collect();
    result.provenance = built
        .iter()
        .flat_map(|(part, r)| {
            r.provenance.iter().map(|(platform, p)| {
                let key = if platform.is_empty() {
                    part.platform.clone()
                } else {
                    platform.clone()
                };
                (key, p.clone())
            })
        })
        .collect();
    let mut warnings: Vec<String> = Vec::new();
    for w in built.iter().flat_map(|(_, r)| &r.warnings) {
        if !warnings.contains(w) {
            warnings.push(w.clone());
        }
    }
    result.warnings = warnings;
    result.duration = started.elapsed();
    result.exporter_response = BTreeMap::new();
    result.outputs = Vec::new();
    if let Some(index) = index {
        let names: Vec<String> = targets
            .names
            .iter()
            .map(|(repo, tag)| format!("{repo}:{tag}"))
            .collect();
        let descriptor = serde_json::json!({
            "mediaType": index.media_type,
            "digest": index.digest,
            "size": index.size,
        });
        let metadata: BTreeMap<String, String> = [
            ("containerimage.digest".to_string(), index.digest.clone()),
            ("image.name".to_string(), names.join(",")),
            (
                "containerimage.descriptor".to_string(),
                base64::engine::general_purpose::STANDARD.encode(descriptor.to_string()),
            ),
        ]
        .into();
        result.exporter_response = metadata.clone();
        result.outputs.push(OutputResult::pushed_index(
            metadata,
            index
                .manifests
                .into_iter()
                .filter_map(|(p, d)| Some((p, d.parse().ok()?)))
                .collect(),
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_one_node_alone_could_do_is_refused() {
        let load = Build::new(".").tag("r:5000/a:1").output(Output::load());
        let refused = |build: &Build| match Targets::of(build) {
            Err(InvalidBuild::AcrossNodes { reason }) => reason,
            other => panic!("not refused: {:?}", other.err()),
        };
        let err = refused(&load);
        assert!(matches!(err, SplitRefusal::LocalOutput), "{err}");
        assert!(!err.to_string().contains("--"), "a CLI flag in {err}");
        let kept = Build::new(".").tag("r:5000/a:1");
        let err = refused(&kept);
        assert!(matches!(err, SplitRefusal::NothingPushed), "{err}");
        let pinned = Build::new(".")
            .tag("r:5000/a@sha256:00")
            .output(Output::registry());
        assert!(Targets::of(&pinned).is_err());
        let warm = Build::new(".").output(Output::CacheOnly);
        assert!(Targets::of(&warm).unwrap().names.is_empty());
    }
}
