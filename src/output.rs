//! Build outputs: what the daemon's exporters produce and where it lands.
//!
//! One [`Export`] per exporter in the `SolveRequest`; its index is the
//! exporter id the daemon echoes back when it sends files to the client.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One exporter of a build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The daemon's exporter type (`image`, `moby`, `tar`, `local`, ...).
    pub kind: String,
    pub attrs: BTreeMap<String, String>,
}

/// Who runs the build: a Docker Engine keeps built images in its own store
/// through the `moby` exporter, where a standalone buildkitd uses `image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    Engine,
    Buildkitd,
}

impl Export {
    /// A tagged image, optionally pushed to its registry.
    ///
    /// On an engine the `moby` exporter stores the image in the engine (what
    /// `docker buildx build --load` gives with the docker driver) and can
    /// push in the same step.
    pub fn image(names: &[String], push: bool, daemon: Daemon) -> Export {
        let kind = match daemon {
            Daemon::Engine => "moby",
            Daemon::Buildkitd => "image",
        };
        let mut attrs = BTreeMap::new();
        if !names.is_empty() {
            attrs.insert("name".to_string(), names.join(","));
        }
        if push {
            attrs.insert("push".to_string(), "true".to_string());
        }
        Export {
            kind: kind.to_string(),
            attrs,
        }
    }
}

/// Writes `data` to a temporary file beside `path` and renames it into
/// place, so a failure never leaves a half-written file and a previous file
/// stays intact until the new one is complete.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_push_on_an_engine_uses_moby() {
        let e = Export::image(&["r/a:1".into(), "r/a:latest".into()], true, Daemon::Engine);
        assert_eq!(e.kind, "moby");
        assert_eq!(e.attrs["name"], "r/a:1,r/a:latest");
        assert_eq!(e.attrs["push"], "true");
        let e = Export::image(&["r/a:1".into()], false, Daemon::Buildkitd);
        assert_eq!(e.kind, "image");
        assert!(!e.attrs.contains_key("push"));
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Only the destination is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
