//! The client's side of a `type=local` cache directory: its `index.json`
//! and `oci-layout`, which the daemon never touches.
//!
//! After a cache export the client records the cache manifest that the
//! daemon returns (`ExporterResponse["cache.manifest"]`) in `index.json`
//! under a tag; before an import it looks the tag up to pass the manifest's
//! digest to the daemon. Follows buildkit client/solve.go (`parseCacheOptions`
//! and the end of `solve`) and client/ociindex/ociindex.go.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{Digest, blob_path};

/// The exporter response key holding the cache manifest's descriptor (JSON).
pub const CACHE_MANIFEST_KEY: &str = "cache.manifest";
/// The tag used when `tag=` is not given, on export and import alike.
pub const DEFAULT_TAG: &str = "latest";

const INDEX_FILE: &str = "index.json";
const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_JSON: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's full image name annotation; looked up before `REF_NAME`.
const IMAGE_NAME: &str = "io.containerd.image.name";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("invalid {CACHE_MANIFEST_KEY} in the exporter response: {0}")]
    InvalidManifest(#[source] serde_json::Error),
    #[error("could not read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("could not parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("could not write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("no manifest tagged {tag:?} in {}", path.display())]
    NoTag { path: PathBuf, tag: String },
    #[error("digest {digest} is not in {}", dir.display())]
    MissingBlob { dir: PathBuf, digest: String },
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
}

/// An OCI content descriptor. Fields rbuild does not use (platform, urls,
/// artifactType, ...) are kept as they were.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `index.json`; unknown top-level fields survive an update.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    schema_version: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    media_type: String,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// The cache manifest a Solve with a cache export returned, if any.
pub fn cache_manifest(
    exporter_response: &BTreeMap<String, String>,
) -> Result<Option<Descriptor>, LayoutError> {
    match exporter_response.get(CACHE_MANIFEST_KEY) {
        Some(json) if !json.is_empty() => serde_json::from_str(json)
            .map(Some)
            .map_err(LayoutError::InvalidManifest),
        _ => Ok(None),
    }
}

/// Records `manifest` in `dir/index.json` under `tag` (default `latest`),
/// replacing the manifest that had the tag, and writes `dir/oci-layout`.
/// Other entries are kept. The index is replaced atomically (write to a
/// temporary file, rename), so a concurrent reader never sees half a file.
pub fn update_index(
    dir: &Path,
    manifest: &Descriptor,
    tag: Option<&str>,
) -> Result<(), LayoutError> {
    let tag = tag.unwrap_or(DEFAULT_TAG);
    let index_path = dir.join(INDEX_FILE);
    let mut index = match std::fs::read(&index_path) {
        Ok(data) if !data.is_empty() => {
            serde_json::from_slice::<Index>(&data).map_err(|source| LayoutError::Parse {
                path: index_path.clone(),
                source,
            })?
        }
        Ok(_) => Index::default(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Index::default(),
        Err(source) => {
            return Err(LayoutError::Read {
                path: index_path,
                source,
            });
        }
    };
    if index.schema_version == 0 {
        index.schema_version = 2;
    }
    if index.media_type.is_empty() {
        index.media_type = INDEX_MEDIA_TYPE.to_string();
    }
    // A tag replaces entries with the same ref name and no image name
    // (ociindex insertDesc with a Tag).
    index.manifests.retain(|m| {
        m.annotations.get(REF_NAME).map(String::as_str) != Some(tag)
            || m.annotations.get(IMAGE_NAME).is_some_and(|n| !n.is_empty())
    });
    let mut entry = manifest.clone();
    entry
        .annotations
        .insert(REF_NAME.to_string(), tag.to_string());
    index.manifests.push(entry);

    let json = serde_json::to_vec(&index).map_err(|source| LayoutError::Parse {
        path: index_path.clone(),
        source,
    })?;
    write_atomic(dir, LAYOUT_FILE, LAYOUT_JSON.as_bytes())?;
    write_atomic(dir, INDEX_FILE, &json)
}

/// The digest to import from a local cache directory, as buildctl picks it:
/// an explicit `digest` attr, else the manifest tagged `tag` (default
/// `latest`) in `dir/index.json`; either way the blob must be present.
///
/// An error means "skip this import with a warning", which is what buildctl
/// does (it drops the entry rather than failing the build).
pub fn import_digest(
    dir: &Path,
    digest: Option<&str>,
    tag: Option<&str>,
) -> Result<String, LayoutError> {
    let digest = match digest.filter(|d| !d.is_empty()) {
        Some(d) => d.to_string(),
        None => tagged(dir, tag.unwrap_or(DEFAULT_TAG))?.digest,
    };
    present(dir, digest)
}

/// `digest`, once it is known to be well formed and its blob is in `dir`.
fn present(dir: &Path, digest: String) -> Result<String, LayoutError> {
    let parsed: Digest = digest
        .parse()
        .map_err(|_| LayoutError::InvalidDigest(digest.clone()))?;
    if blob_path(dir, &parsed).is_file() {
        Ok(digest)
    } else {
        Err(LayoutError::MissingBlob {
            dir: dir.to_path_buf(),
            digest,
        })
    }
}

/// The image to read from an OCI layout as a named context, as buildx
/// resolves `oci-layout://DIR[:TAG][@DIGEST]`: the digest when given, else
/// the manifest tagged `tag`; with neither, the one tagged `latest` or else
/// the layout's only manifest. The blob must be present either way.
pub fn image_digest(
    dir: &Path,
    digest: Option<&str>,
    tag: Option<&str>,
) -> Result<String, LayoutError> {
    let digest = match digest {
        Some(d) => d.to_string(),
        None => {
            let index = read_index(dir)?;
            let wanted = tag.unwrap_or(DEFAULT_TAG);
            match find_tagged(&index, wanted) {
                Some(m) => m.digest,
                // buildx's resolveDigest takes an untagged single image;
                // rbuild only when no tag was asked for, so a wrong tag is
                // an error rather than silently another image.
                None if tag.is_none() && index.manifests.len() == 1 => {
                    index.manifests[0].digest.clone()
                }
                None => {
                    return Err(LayoutError::NoTag {
                        path: dir.join(INDEX_FILE),
                        tag: wanted.to_string(),
                    });
                }
            }
        }
    };
    present(dir, digest)
}

fn read_index(dir: &Path) -> Result<Index, LayoutError> {
    let path = dir.join(INDEX_FILE);
    let data = std::fs::read(&path).map_err(|source| LayoutError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&data).map_err(|source| LayoutError::Parse { path, source })
}

/// The manifest tagged `tag`: a full image name match first, then a ref
/// name match (ociindex `Get`).
fn find_tagged(index: &Index, tag: &str) -> Option<Descriptor> {
    let by = |key: &str| {
        index
            .manifests
            .iter()
            .find(|m| m.annotations.get(key).map(String::as_str) == Some(tag))
            .cloned()
    };
    by(IMAGE_NAME).or_else(|| by(REF_NAME))
}

fn tagged(dir: &Path, tag: &str) -> Result<Descriptor, LayoutError> {
    find_tagged(&read_index(dir)?, tag).ok_or_else(|| LayoutError::NoTag {
        path: dir.join(INDEX_FILE),
        tag: tag.to_string(),
    })
}

fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), LayoutError> {
    let path = dir.join(name);
    let err = |source| LayoutError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(data).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    set_mode_644(tmp.path()).map_err(err)?;
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(unix)]
fn set_mode_644(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_mode_644(_: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::content::tests::{blob, sha256};

    fn descriptor(digest: &str) -> Descriptor {
        serde_json::from_str(&format!(
            r#"{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{digest}","size":895}}"#
        ))
        .expect("descriptor")
    }

    #[test]
    fn update_index_writes_a_layout_like_buildx() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = sha256(b"manifest");
        let response = BTreeMap::from([(
            CACHE_MANIFEST_KEY.to_string(),
            serde_json::to_string(&descriptor(&d)).expect("json"),
        )]);
        let manifest = cache_manifest(&response).expect("parse").expect("present");
        update_index(dir.path(), &manifest, None).expect("update");

        let layout = std::fs::read_to_string(dir.path().join("oci-layout")).expect("oci-layout");
        assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).expect("index"))
                .expect("json");
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));
        let m = &index["manifests"][0];
        assert_eq!(m["digest"], d.as_str());
        assert_eq!(m["size"], 895);
        assert_eq!(m["mediaType"], "application/vnd.oci.image.index.v1+json");
        assert_eq!(
            m["annotations"]["org.opencontainers.image.ref.name"],
            "latest"
        );
    }

    #[test]
    fn a_tag_replaces_only_its_own_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        // What buildx 0.13 wrote (no index mediaType), plus an image entry and
        // a field rbuild does not know.
        let old = sha256(b"old");
        let image = sha256(b"image");
        std::fs::write(
            dir.path().join("index.json"),
            format!(
                r#"{{"schemaVersion":2,"manifests":[
                {{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{old}","size":1,"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}},
                {{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{image}","size":2,"platform":{{"os":"linux"}},"annotations":{{"io.containerd.image.name":"docker.io/library/app:latest","org.opencontainers.image.ref.name":"latest"}}}}],
                "annotations":{{"keep":"me"}}}}"#
            ),
        )
        .expect("seed index");
        let new = sha256(b"new");
        update_index(dir.path(), &descriptor(&new), Some("latest")).expect("update");
        let other = sha256(b"other");
        update_index(dir.path(), &descriptor(&other), Some("v2")).expect("update");

        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).expect("index"))
                .expect("json");
        let digests: Vec<&str> = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| m["digest"].as_str().expect("digest"))
            .collect();
        assert_eq!(digests, [image.as_str(), new.as_str(), other.as_str()]);
        assert_eq!(index["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(index["annotations"]["keep"], "me");
        assert_eq!(
            index["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
    }

    #[test]
    fn image_digest_takes_a_tag_the_only_image_or_a_digest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = sha256(b"manifest");
        let path = blob(dir.path(), &d);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"manifest").expect("blob");
        // What `-o type=oci` writes without a name: one untagged manifest.
        std::fs::write(
            dir.path().join("index.json"),
            format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{d}","size":8}}]}}"#),
        )
        .expect("index");
        assert_eq!(image_digest(dir.path(), None, None).expect("only"), d);
        assert!(matches!(
            image_digest(dir.path(), None, Some("v1")),
            Err(LayoutError::NoTag { .. })
        ));
        assert_eq!(image_digest(dir.path(), Some(&d), None).expect("digest"), d);
        update_index(dir.path(), &descriptor(&d), Some("v1")).expect("tag");
        assert_eq!(image_digest(dir.path(), None, Some("v1")).expect("v1"), d);
        let other = sha256(b"other");
        assert!(matches!(
            image_digest(dir.path(), Some(&other), None),
            Err(LayoutError::MissingBlob { .. })
        ));
    }

    #[test]
    fn import_digest_follows_the_tag_and_needs_the_blob() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = import_digest(dir.path(), None, None).unwrap_err();
        assert!(matches!(missing, LayoutError::Read { .. }), "{missing}");

        let d = sha256(b"manifest");
        update_index(dir.path(), &descriptor(&d), None).expect("update");
        assert!(matches!(
            import_digest(dir.path(), None, None),
            Err(LayoutError::MissingBlob { .. })
        ));
        let path = blob(dir.path(), &d);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"manifest").expect("blob");
        assert_eq!(import_digest(dir.path(), None, None).expect("latest"), d);
        assert_eq!(
            import_digest(dir.path(), None, Some("latest")).expect("tag"),
            d
        );
        assert!(matches!(
            import_digest(dir.path(), None, Some("v9")),
            Err(LayoutError::NoTag { .. })
        ));
        // An explicit digest skips the index.
        assert_eq!(
            import_digest(dir.path(), Some(&d), Some("v9")).expect("explicit"),
            d
        );
        assert!(matches!(
            import_digest(dir.path(), Some("sha256:nope"), None),
            Err(LayoutError::InvalidDigest(_))
        ));
    }
}
