//! Manifests and indexes as the distribution API serves them, and how to
//! tell a BuildKit cache from an image.
//!
//! The registry cache exporter (moby/buildkit `cache/remotecache/export.go`)
//! writes, by default, an OCI image index whose `manifests` are the layer
//! blobs plus one `application/vnd.buildkit.cacheconfig.v0` blob; with
//! `image-manifest=true` it writes an image manifest whose config has that
//! media type. Either way the layer descriptors carry a
//! `buildkit/createdat` annotation (`cache/remotecache/v1/spec.go`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::time::Timestamp;
use crate::digest::Digest;

/// OCI image index: a list of manifests (BuildKit's default cache layout).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest: one config and its layers.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's manifest list, the pre-OCI form of an index.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// BuildKit's cache config blob, which marks a manifest as a registry cache.
pub const CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
/// An OCI image config: the manifest is a runnable image.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker's image config: the manifest is a runnable image.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Without the index types in `Accept`, distribution answers 404 for an
/// index rather than converting it.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// BuildKit's per-layer creation time on cache descriptors.
const CREATED_AT_ANNOTATION: &str = "buildkit/createdat";
/// The OCI pre-defined annotation, on images that set it.
const OCI_CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// Whether a descriptor's media type is an index or a manifest (which the
/// registry serves under `/manifests/`) rather than a blob.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_INDEX | OCI_MANIFEST | DOCKER_LIST | DOCKER_MANIFEST
    )
}

/// A reference from a manifest or index to other content, as the OCI
/// descriptor JSON has it.
#[derive(Clone, Debug, Deserialize)]
pub struct Descriptor {
    /// What the target is; empty when the descriptor leaves it out.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The target's content digest.
    pub digest: Digest,
    /// The target's size in bytes, as the descriptor states it.
    pub size: u64,
    /// The descriptor's annotations (BuildKit's `buildkit/createdat` among
    /// them); empty when it has none.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The two shapes that reference other content.
#[derive(Debug)]
pub enum Manifest {
    /// An OCI index or Docker manifest list (a document with `manifests`).
    Index {
        /// What the index lists: platform manifests, or for a cache the
        /// layer blobs and the cache config.
        manifests: Vec<Descriptor>,
        /// The index's own annotations.
        annotations: BTreeMap<String, String>,
    },
    /// An image manifest (a document with a `config`).
    Image {
        /// The config blob: an image config, or BuildKit's cache config.
        config: Descriptor,
        /// The layer blobs; empty when the field is missing.
        layers: Vec<Descriptor>,
        /// The manifest's own annotations.
        annotations: BTreeMap<String, String>,
    },
}

impl Manifest {
    /// Reads a manifest body; the shape decides when the media type (header
    /// or field) is missing or unknown, as OCI makes `mediaType` optional.
    ///
    /// # Errors
    ///
    /// A message when `body` is not JSON of a manifest, or is neither an index nor an image
    /// manifest.
    pub fn parse(body: &[u8]) -> Result<Manifest, String> {
        let raw: Raw = serde_json::from_slice(body).map_err(|e| format!("not a manifest: {e}"))?;
        let media_type = raw.media_type.unwrap_or_default();
        match (raw.manifests, raw.config) {
            (Some(manifests), None) => Ok(Manifest::Index {
                manifests,
                annotations: raw.annotations,
            }),
            (None, Some(config)) => Ok(Manifest::Image {
                config,
                layers: raw.layers,
                annotations: raw.annotations,
            }),
            _ => Err(format!(
                "neither an index nor an image manifest (mediaType {media_type:?})"
            )),
        }
    }

    /// Everything this document points at directly, config first.
    pub fn references(&self) -> Vec<&Descriptor> {
        match self {
            Manifest::Index { manifests, .. } => manifests.iter().collect(),
            Manifest::Image { config, layers, .. } => {
                std::iter::once(config).chain(layers).collect()
            }
        }
    }

    /// A BuildKit registry cache, in either exporter layout.
    pub fn is_cache(&self) -> bool {
        match self {
            Manifest::Index { manifests, .. } => {
                manifests.iter().any(|d| d.media_type == CACHE_CONFIG)
            }
            Manifest::Image { config, .. } => config.media_type == CACHE_CONFIG,
        }
    }

    /// The cache config blob, where the layer records live.
    pub fn cache_config(&self) -> Option<&Descriptor> {
        self.references()
            .into_iter()
            .find(|d| d.media_type == CACHE_CONFIG)
    }

    /// An image manifest whose config is a runnable image's.
    pub fn image_config(&self) -> Option<&Descriptor> {
        match self {
            Manifest::Image { config, .. }
                if matches!(config.media_type.as_str(), OCI_CONFIG | DOCKER_CONFIG) =>
            {
                Some(config)
            }
            _ => None,
        }
    }

    /// The newest creation time the document itself states: BuildKit's
    /// per-layer annotation, or the OCI `created` annotation.
    pub fn newest_annotated(&self) -> Option<Timestamp> {
        let own = match self {
            Manifest::Index { annotations, .. } | Manifest::Image { annotations, .. } => {
                annotations.get(OCI_CREATED_ANNOTATION)
            }
        };
        self.references()
            .into_iter()
            .filter_map(|d| d.annotations.get(CREATED_AT_ANNOTATION))
            .chain(own)
            .filter_map(|s| Timestamp::parse_rfc3339(s))
            .max()
    }
}

/// The newest `createdAt` in a BuildKit cache config (layers' annotations,
/// records' results and chains), for caches whose descriptors carry none.
pub fn cache_config_created(body: &[u8]) -> Option<Timestamp> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut stamps = Vec::new();
    for layer in value["layers"].as_array().into_iter().flatten() {
        stamps.push(&layer["annotations"]["createdAt"]);
    }
    for record in value["records"].as_array().into_iter().flatten() {
        for key in ["layers", "chains"] {
            for result in record[key].as_array().into_iter().flatten() {
                stamps.push(&result["createdAt"]);
            }
        }
    }
    stamps
        .into_iter()
        .filter_map(|v| Timestamp::parse_rfc3339(v.as_str()?))
        .max()
}

/// An image config's `created`.
pub fn image_config_created(body: &[u8]) -> Option<Timestamp> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    Timestamp::parse_rfc3339(value["created"].as_str()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CACHE_INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
        {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:aa","size":1069009,
         "annotations":{"buildkit/createdat":"2026-11-27T21:31:39.898934069Z"}},
        {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:bb","size":100,
         "annotations":{"buildkit/createdat":"2026-11-27T22:08:57.029816419Z"}},
        {"mediaType":"application/vnd.buildkit.cacheconfig.v0","digest":"sha256:cc","size":1086}]}"#;

    #[test]
    fn cache_index_is_a_cache_with_the_newest_layer_time() {
        let m = Manifest::parse(CACHE_INDEX.as_bytes()).unwrap();
        assert!(m.is_cache());
        assert_eq!(m.references().len(), 3);
        assert_eq!(m.cache_config().unwrap().digest.as_str(), "sha256:cc");
        assert_eq!(
            m.newest_annotated().unwrap().to_string(),
            "2026-11-27T22:08:57Z"
        );
        assert!(m.image_config().is_none());
    }

    #[test]
    fn image_manifest_forms() {
        let cache = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.buildkit.cacheconfig.v0","digest":"sha256:cc","size":5},"layers":[]}"#;
        let m = Manifest::parse(cache.as_bytes()).unwrap();
        assert!(m.is_cache());
        assert!(m.newest_annotated().is_none());
        let image = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:cf","size":829},
            "layers":[{"mediaType":"x","digest":"sha256:aa","size":1}]}"#;
        let m = Manifest::parse(image.as_bytes()).unwrap();
        assert!(!m.is_cache());
        assert_eq!(m.image_config().unwrap().size, 829);
    }

    #[test]
    fn malformed_manifests_are_errors() {
        for bad in [
            "[]",
            "{}",
            r#"{"manifests":[],"config":{"digest":"sha256:aa","size":1}}"#,
            r#"{"manifests":[{"digest":"sha256:aa","size":-1}]}"#,
            r#"{"manifests":[{"digest":"../../x","size":1}]}"#,
        ] {
            assert!(Manifest::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_timestamps() {
        let cfg = br#"{"layers":[{"blob":"sha256:aa","annotations":{"createdAt":"2026-01-01T00:00:00Z"}}],
            "records":[{"layers":[{"layer":0,"createdAt":"2026-01-03T00:00:00Z"}]},
                       {"chains":[{"layers":[0],"createdAt":"2026-01-02T00:00:00Z"}]},{"digest":"sha256:x"}]}"#;
        assert_eq!(
            cache_config_created(cfg).unwrap().to_string(),
            "2026-01-03T00:00:00Z"
        );
        assert_eq!(cache_config_created(b"{}"), None);
        let img = br#"{"created":"2026-11-27T22:08:57.029816419Z"}"#;
        assert_eq!(
            image_config_created(img).unwrap().to_string(),
            "2026-11-27T22:08:57Z"
        );
        assert_eq!(image_config_created(b"not json"), None);
    }
}
