//! Whether one image's export uses a given config, decided entry by entry
//! so the export can be abandoned as soon as the answer is known.

use std::collections::HashMap;

use serde::Deserialize;

use super::lookup::sha256_hex;
use super::tarstream::Entry;

/// Bounds what is kept of small blobs while waiting for an index's manifests.
const KEEP_TOTAL: usize = 32 << 20;

/// How deep an index may nest indexes.
const MAX_DEPTH: usize = 4;

/// Decides, entry by entry of one image's export, whether the image uses the
/// wanted config: `Some` as soon as that is known.
pub(super) struct ExportScan<'a> {
    target: &'a str,
    wanted: &'a str,
    blobs: HashMap<String, Vec<u8>>,
    kept: usize,
}

impl<'a> ExportScan<'a> {
    pub(super) fn new(target: &'a str, wanted: &'a str) -> ExportScan<'a> {
        ExportScan {
            target,
            wanted,
            blobs: HashMap::new(),
            kept: 0,
        }
    }

    pub(super) fn entry(&mut self, entry: Entry) -> Option<bool> {
        if entry.name == "manifest.json" {
            // Written after all blobs: the last word for exports whose
            // index names manifests that were never pulled.
            #[derive(Deserialize)]
            struct Image {
                #[serde(rename = "Config")]
                config: String,
            }
            let images: Vec<Image> = serde_json::from_slice(&entry.contents?).ok()?;
            let wanted = format!("blobs/sha256/{}", self.wanted);
            return Some(images.iter().any(|i| i.config == wanted));
        }
        let hex = entry.name.strip_prefix("blobs/sha256/")?;
        // An export holds only what its image references.
        if hex == self.wanted {
            return Some(true);
        }
        if let Some(contents) = entry.contents
            && self.kept + contents.len() <= KEEP_TOTAL
        {
            self.kept += contents.len();
            self.blobs.insert(hex.to_string(), contents);
        }
        let configs = self.configs(self.target, 0)?;
        Some(configs.iter().any(|c| c == self.wanted))
    }

    /// The config digests under `hex` (a manifest or an index), or `None`
    /// while a blob needed to know them has not arrived.
    fn configs(&self, hex: &str, depth: usize) -> Option<Vec<String>> {
        #[derive(Deserialize)]
        struct Descriptor {
            digest: String,
        }
        #[derive(Deserialize)]
        struct Node {
            config: Option<Descriptor>,
            manifests: Option<Vec<Descriptor>>,
        }
        let node: Node = match serde_json::from_slice(self.blobs.get(hex)?) {
            Ok(node) => node,
            Err(_) => return Some(Vec::new()),
        };
        let mut configs = Vec::new();
        if let Some(config) = node.config {
            configs.extend(sha256_hex(&config.digest).ok().map(str::to_string));
        }
        if depth < MAX_DEPTH {
            for child in node.manifests.unwrap_or_default() {
                if let Ok(child) = sha256_hex(&child.digest) {
                    configs.extend(self.configs(child, depth + 1)?);
                }
            }
        }
        Some(configs)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::docker_api) fn hex(c: char) -> String {
        c.to_string().repeat(64)
    }

    pub(in crate::docker_api) fn manifest(config: &str) -> String {
        format!(r#"{{"schemaVersion":2,"config":{{"digest":"sha256:{config}"}},"layers":[]}}"#)
    }

    fn run(target: &str, wanted: &str, files: &[(String, Vec<u8>)]) -> Option<bool> {
        let mut scan = ExportScan::new(target, wanted);
        for (name, contents) in files {
            let entry = Entry {
                name: name.clone(),
                contents: Some(contents.clone()),
            };
            if let Some(decided) = scan.entry(entry) {
                return Some(decided);
            }
        }
        None
    }

    fn blob(h: &str, contents: &str) -> (String, Vec<u8>) {
        (format!("blobs/sha256/{h}"), contents.as_bytes().to_vec())
    }

    #[test]
    fn a_manifest_target_decides_as_soon_as_it_arrives() {
        let (m, c, other) = (hex('1'), hex('2'), hex('3'));
        let files = [blob(&m, &manifest(&c)), blob(&c, "{}")];
        assert_eq!(run(&m, &c, &files), Some(true));
        assert_eq!(run(&m, &other, &files[..1]), Some(false));
    }

    #[test]
    fn an_index_target_waits_for_its_manifests() {
        let (a, i, m1, c1, m2, c2) = (hex('a'), hex('b'), hex('c'), hex('d'), hex('e'), hex('f'));
        let index =
            format!(r#"{{"manifests":[{{"digest":"sha256:{m1}"}},{{"digest":"sha256:{m2}"}}]}}"#);
        let files = [
            blob(&a, "layer"),
            blob(&i, &index),
            blob(&m1, &manifest(&c1)),
            blob(&m2, &manifest(&c2)),
        ];
        assert_eq!(run(&i, &hex('0'), &files[..3]), None, "m2 still missing");
        assert_eq!(run(&i, &hex('0'), &files), Some(false));
        // m2's config is wanted and its manifest arrives before the blob.
        assert_eq!(run(&i, &c2, &files), Some(true));
    }

    #[test]
    fn manifest_json_settles_an_index_with_missing_platforms() {
        let (i, m1, c1) = (hex('1'), hex('2'), hex('3'));
        let index = format!(
            r#"{{"manifests":[{{"digest":"sha256:{m1}"}},{{"digest":"sha256:{}"}}]}}"#,
            hex('9')
        );
        let mut files = vec![blob(&i, &index), blob(&m1, &manifest(&c1))];
        files.push((
            "manifest.json".into(),
            format!(r#"[{{"Config":"blobs/sha256/{c1}","Layers":[]}}]"#).into_bytes(),
        ));
        assert_eq!(run(&i, &c1, &files[..2]), None);
        assert_eq!(run(&i, &hex('4'), &files), Some(false));
    }
}
