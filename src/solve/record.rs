//! What the daemon keeps about a finished build beyond the Solve response:
//! the provenance it attached (from the build's history record, as buildx
//! reads it for `buildx.build.provenance` in the metadata file), and the
//! image manifests inside an index the build exported.
//!
//! Both are read through the daemon's read-only content store. Neither is
//! worth failing a built image for: a daemon without the history API, or a
//! blob already gone, gives the caller a warning instead.

use std::collections::BTreeMap;

use serde_json::Value;
use tonic::transport::Channel;

use crate::daemon::Daemon;
use crate::proto::containerd::services::content::v1::ReadContentRequest;
use crate::proto::containerd::services::content::v1::content_client::ContentClient;
use crate::proto::moby::buildkit::v1::{BuildHistoryRequest, BuildResultInfo};

const IN_TOTO: &str = "application/vnd.in-toto+json";
const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
const SLSA: &str = "https://slsa.dev/provenance/";
const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// No manifest, index or provenance predicate is near this; a bigger blob
/// is not what we asked for.
const MAX_BLOB: usize = 16 << 20;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    #[error("the daemon's build history: {0}")]
    History(String),
    #[error("blob {digest}: {reason}")]
    Blob { digest: String, reason: String },
}

/// The provenance predicates of build `build_ref`, in SLSA v0.2 form as
/// buildx writes them: keyed by platform for a multi-platform build, by ""
/// otherwise. Empty when the build attached none.
pub(crate) async fn provenance(
    client: &Daemon,
    build_ref: &str,
) -> Result<BTreeMap<String, Value>, RecordError> {
    let mut control = client.control();
    let mut events = control
        .listen_build_history(BuildHistoryRequest {
            active_only: false,
            r#ref: build_ref.to_string(),
            early_exit: true,
        })
        .await
        .map_err(|s| RecordError::History(s.message().to_string()))?
        .into_inner();
    let mut found: Vec<(String, String)> = Vec::new();
    while let Some(event) = events
        .message()
        .await
        .map_err(|s| RecordError::History(s.message().to_string()))?
    {
        let Some(record) = event.record else { continue };
        if record.r#ref != build_ref {
            continue;
        }
        if let Some(digest) = record.result.as_ref().and_then(provenance_blob) {
            found.push((String::new(), digest));
        }
        for (platform, result) in &record.results {
            if let Some(digest) = provenance_blob(result) {
                found.push((platform.clone(), digest));
            }
        }
    }
    let mut content = client.content();
    let mut out = BTreeMap::new();
    for (platform, digest) in found {
        let blob = read_blob(&mut content, &digest).await?;
        let predicate: Value = serde_json::from_slice(&blob).map_err(|e| RecordError::Blob {
            digest: digest.clone(),
            reason: format!("not JSON: {e}"),
        })?;
        out.insert(platform, predicate);
    }
    Ok(out)
}

/// The digest of the provenance attestation among `result`'s, and the
/// predicate type it was written in.
fn provenance_blob(result: &BuildResultInfo) -> Option<String> {
    result
        .attestations
        .iter()
        .find(|a| {
            a.media_type == IN_TOTO
                && a.annotations
                    .get(PREDICATE_TYPE)
                    .is_some_and(|t| t.starts_with(SLSA))
        })
        .map(|a| {
            let v1 = a.annotations.get(PREDICATE_TYPE).map(String::as_str) == Some(SLSA_V1);
            // The record keeps the predicate only; its type is told apart
            // by shape once read, so the flag only goes to the log.
            tracing::debug!(digest = %a.digest, v1, "provenance in build record");
            a.digest.clone()
        })
}

/// The image manifests an exported index lists, without its attestation
/// manifests: `(platform, digest)`, platform as `os/arch[/variant]`.
pub(crate) async fn image_manifests(
    client: &Daemon,
    index_digest: &str,
) -> Result<Vec<(String, String)>, RecordError> {
    let blob = read_blob(&mut client.content(), index_digest).await?;
    let index: Value = serde_json::from_slice(&blob).map_err(|e| RecordError::Blob {
        digest: index_digest.to_string(),
        reason: format!("not JSON: {e}"),
    })?;
    Ok(manifests_of(&index))
}

fn manifests_of(index: &Value) -> Vec<(String, String)> {
    let Some(entries) = index["manifests"].as_array() else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|m| m["annotations"]["vnd.docker.reference.type"] != "attestation-manifest")
        .filter_map(|m| {
            let digest = m["digest"].as_str()?;
            let p = &m["platform"];
            let mut platform = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or("unknown"),
                p["architecture"].as_str().unwrap_or("unknown")
            );
            if let Some(variant) = p["variant"].as_str() {
                platform = format!("{platform}/{variant}");
            }
            Some((platform, digest.to_string()))
        })
        .collect()
}

async fn read_blob(
    content: &mut ContentClient<Channel>,
    digest: &str,
) -> Result<Vec<u8>, RecordError> {
    let fail = |reason: String| RecordError::Blob {
        digest: digest.to_string(),
        reason,
    };
    let mut stream = content
        .read(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        })
        .await
        .map_err(|s| fail(s.message().to_string()))?
        .into_inner();
    let mut blob = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| fail(s.message().to_string()))?
    {
        if blob.len() + chunk.data.len() > MAX_BLOB {
            return Err(fail(format!("larger than {MAX_BLOB} bytes")));
        }
        blob.extend_from_slice(&chunk.data);
    }
    Ok(blob)
}

/// The provenance the daemon recorded for the build, and the image
/// manifests of each exported index. Read only when the build attached
/// provenance: a build without it keeps its one-call cost.
pub(crate) async fn read_record(
    client: &Daemon,
    plan: &crate::request::BuildPlan,
    build_ref: &str,
    outputs: &mut [crate::output::OutputResult],
    warnings: &mut Vec<String>,
) -> BTreeMap<String, serde_json::Value> {
    if !plan.frontend_attrs.contains_key("attest:provenance") {
        return BTreeMap::new();
    }
    for output in outputs.iter_mut() {
        if output.image_manifest().is_some() {
            continue;
        }
        let Some(index) = output.digest().map(|d| d.to_string()) else {
            continue;
        };
        match image_manifests(client, &index).await {
            Ok(manifests) => {
                output.image_manifests = manifests
                    .into_iter()
                    .filter_map(|(p, d)| Some((p, d.parse().ok()?)))
                    .collect()
            }
            Err(e) => tracing::debug!(error = %e, "index not readable; no image manifests"),
        }
    }
    match provenance(client, build_ref).await {
        Ok(p) => p,
        Err(e) => {
            warnings.push(format!("the provenance is not in the metadata: {e}"));
            BTreeMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attestation_manifests_are_not_images() {
        let index = json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:b", "platform": {"os": "unknown", "architecture": "unknown"},
             "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        ]});
        assert_eq!(
            manifests_of(&index),
            vec![("linux/arm64/v8".to_string(), "sha256:a".to_string())]
        );
    }
}
