//! What each exporter of a finished build produced.

use std::collections::BTreeMap;

use super::{Destination, Export};

/// What one exporter of a finished build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputResult {
    /// The daemon's exporter name (`image`, `moby` on a Docker Engine,
    /// `docker`, `oci`, `tar`, `local`).
    pub kind: String,
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
    pub image_manifests: BTreeMap<String, String>,
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
                kind: e.kind.clone(),
                dest: e.dest.clone(),
                pushed: e.attrs.get("push").is_some_and(|p| p == "true"),
                metadata,
                image_manifests: BTreeMap::new(),
            }
        })
        .collect()
}
