//! What each exporter of a finished build produced.

use std::collections::BTreeMap;

use super::{Destination, Export};
use crate::digest::Digest;

/// What kind of output produced a result, in buildx's `-o type=` words;
/// a Docker Engine's own exporter name never shows here.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutputKind {
    /// An image: kept in the daemon's store, pushed, or loaded into the
    /// engine that built it.
    Image,
    /// A docker-format tarball (a file, or loaded into another engine).
    Docker,
    /// An OCI layout tarball or directory.
    Oci,
    /// The filesystem as a tarball.
    Tar,
    /// The filesystem as a directory.
    Local,
    /// An exporter this library has no name for.
    Other(String),
}

impl OutputKind {
    /// Reads a daemon's exporter name.
    pub(crate) fn of_exporter(name: &str) -> OutputKind {
        match name {
            "image" | "moby" => OutputKind::Image,
            "docker" => OutputKind::Docker,
            "oci" => OutputKind::Oci,
            "tar" => OutputKind::Tar,
            "local" => OutputKind::Local,
            other => OutputKind::Other(other.to_string()),
        }
    }

    /// buildx's name: `image`, `docker`, `oci`, `tar`, `local`.
    pub fn as_str(&self) -> &str {
        match self {
            OutputKind::Image => "image",
            OutputKind::Docker => "docker",
            OutputKind::Oci => "oci",
            OutputKind::Tar => "tar",
            OutputKind::Local => "local",
            OutputKind::Other(name) => name,
        }
    }
}

impl OutputResult {
    /// An image index this client pushed itself (the index joining a
    /// multi-platform build's parts), with its metadata as the daemon's
    /// image exporter would give it.
    #[cfg(feature = "pool")]
    pub(crate) fn pushed_index(
        metadata: BTreeMap<String, String>,
        image_manifests: BTreeMap<String, Digest>,
    ) -> OutputResult {
        OutputResult {
            kind: OutputKind::Image,
            exporter: "image".to_string(),
            dest: Destination::Daemon,
            pushed: true,
            metadata,
            image_manifests,
        }
    }
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one exporter of a finished build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutputResult {
    /// What kind of output it was.
    pub kind: OutputKind,
    /// The daemon's exporter name (`moby` is a Docker Engine's image store).
    pub(crate) exporter: String,
    /// Where the result went on the client side (`Daemon` when it stayed
    /// on the daemon or went to a registry).
    pub dest: Destination,
    /// The image was pushed to the registry its names say.
    pub pushed: bool,
    /// `containerimage.digest`, `image.name`, ... as far as they are known
    /// to belong to this exporter.
    pub metadata: BTreeMap<String, String>,
    /// The image manifests inside the index this output exported, by
    /// platform (`linux/amd64`), attestation manifests left out: what two
    /// builds of the same image agree on even when their provenance (and so
    /// the index digest) differs. Empty when the output is not an index.
    pub image_manifests: BTreeMap<String, Digest>,
}

/// Keys of the exporter response that describe one produced image.
const IMAGE_KEYS_PREFIXES: &[&str] = &["containerimage.", "image.name"];

/// Attributes results to each exporter. BuildKit merges the responses of all
/// exporters into one map where the last one wins (BuildKit issue #4532), so
/// that map is only trusted for the last image-producing exporter; exporters
/// that send files report their own metadata with the transfer.
pub fn attribute(
    exports: &[Export],
    merged: &BTreeMap<String, String>,
    per_exporter: &BTreeMap<u32, BTreeMap<String, String>>,
) -> Vec<OutputResult> {
    let produces_image =
        |e: &Export| matches!(e.kind.as_str(), "image" | "moby" | "oci" | "docker");
    let last_image = exports.iter().rposition(produces_image);
    (0u32..)
        .zip(exports)
        .map(|(id, e)| {
            let metadata = match per_exporter.get(&id) {
                Some(md) => md.clone(),
                None if Some(id as usize) == last_image => merged
                    .iter()
                    .filter(|(k, _)| IMAGE_KEYS_PREFIXES.iter().any(|p| k.starts_with(p)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                None => BTreeMap::new(),
            };
            OutputResult {
                kind: OutputKind::of_exporter(&e.kind),
                exporter: e.kind.clone(),
                dest: e.dest.clone(),
                pushed: e.attrs.get("push").is_some_and(|p| p == "true"),
                metadata,
                image_manifests: BTreeMap::new(),
            }
        })
        .collect()
}
