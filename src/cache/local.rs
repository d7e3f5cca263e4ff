//! Local cache directories (`type=local`): OCI layouts on this machine
//! that the daemon reads and writes through the session's content store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{CacheBackend, CacheEntry};
use crate::session::content::{self, ContentStores, LayoutError};

/// Local cache directories (`type=local`) are OCI layouts the daemon reads
/// and writes through the session's content store; the client resolves the
/// import digest before the build and records the export in `index.json`
/// after it (upstream: client/solve.go, parseCacheOptions).
#[derive(Default)]
pub(crate) struct LocalCache {
    pub stores: ContentStores,
    exports: Vec<(PathBuf, Option<String>)>,
}

impl LocalCache {
    /// Prepares the local entries of a build: export directories are
    /// created, imports get the `digest` the daemon needs; an import that
    /// cannot be used is dropped with a warning (as buildctl does) returned
    /// for the caller to show.
    pub fn prepare(
        imports: &mut Vec<CacheEntry>,
        exports: &[CacheEntry],
    ) -> Result<(LocalCache, Vec<String>), (PathBuf, std::io::Error)> {
        let mut local = LocalCache::default();
        for e in exports.iter().filter(|e| e.kind == CacheBackend::Local) {
            if let Some(dest) = e.attrs.get("dest") {
                std::fs::create_dir_all(dest).map_err(|err| (PathBuf::from(dest), err))?;
                local.stores.insert_local(dest);
                local
                    .exports
                    .push((PathBuf::from(dest), e.attrs.get("tag").cloned()));
            }
        }
        let mut warnings = Vec::new();
        imports.retain_mut(|e| {
            if e.kind != CacheBackend::Local {
                return true;
            }
            let Some(src) = e.attrs.get("src").cloned() else {
                return false;
            };
            let digest = content::import_digest(
                Path::new(&src),
                e.attrs.get("digest").map(String::as_str),
                e.attrs.get("tag").map(String::as_str),
            );
            match digest {
                Ok(d) => {
                    e.attrs.insert("digest".into(), d);
                    local.stores.insert_local(&src);
                    true
                }
                Err(err) => {
                    warnings.push(format!("local cache import at {src} skipped: {err}"));
                    false
                }
            }
        });
        Ok((local, warnings))
    }

    /// After a successful build: points each export directory's `index.json`
    /// at the cache manifest the daemon reported.
    pub fn finish(&self, exporter_response: &BTreeMap<String, String>) -> Result<(), LayoutError> {
        if self.exports.is_empty() {
            return Ok(());
        }
        if let Some(manifest) = content::cache_manifest(exporter_response)? {
            for (dest, tag) in &self.exports {
                content::update_index(dest, &manifest, tag.as_deref())?;
            }
        }
        Ok(())
    }
}
