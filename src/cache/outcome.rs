//! How a build's cache imports and exports went. A shared cache is an
//! accelerator: an import that fails leaves the build to run its steps, an
//! export that fails with `ignore-error=true` leaves the outputs complete.
//! Either is worth a warning that names the cache, and a field in the
//! result a dashboard can read, but not a failed build.

use super::{CacheBackend, CacheEntry};

/// Which way the cache went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheDirection {
    /// Read before the build (`--cache-from`).
    Import,
    /// Written after it (`--cache-to`).
    Export,
}

impl CacheDirection {
    /// `import` or `export`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheDirection::Import => "import",
            CacheDirection::Export => "export",
        }
    }
}

/// A cache import or export that failed without failing the build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheFailure {
    /// Import or export.
    pub direction: CacheDirection,
    /// The entry, credentials redacted.
    pub entry: CacheEntry,
    /// The daemon's reason, credentials taken out.
    pub error: String,
}

impl CacheFailure {
    /// What the user is told: which cache, what went wrong, what it cost.
    pub fn warning(&self) -> String {
        let target = self.entry.target();
        match self.direction {
            CacheDirection::Import => format!(
                "cache import from {target} failed, the build ran without it: {}",
                self.error
            ),
            CacheDirection::Export => format!(
                "cache export to {target} failed, the outputs are complete but the cache \
                 was not saved: {}",
                self.error
            ),
        }
    }
}

/// What happened to one direction of the build's cache, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// The build had no entry in this direction.
    None,
    /// Every entry worked.
    Succeeded,
    /// At least one entry failed (see [`CacheFailure`]).
    Failed,
}

impl CacheStatus {
    /// `none`, `succeeded` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::None => "none",
            CacheStatus::Succeeded => "succeeded",
            CacheStatus::Failed => "failed",
        }
    }

    /// The status of a direction with `entries` entries, `failures` of
    /// which failed.
    pub fn of(entries: usize, failures: usize) -> CacheStatus {
        match (entries, failures) {
            (0, _) => CacheStatus::None,
            (_, 0) => CacheStatus::Succeeded,
            _ => CacheStatus::Failed,
        }
    }
}

impl CacheEntry {
    /// A short name of where the cache lives, for messages: the registry
    /// ref, the local directory, or the backend with its scope, bucket or
    /// container.
    pub fn target(&self) -> String {
        let attr = |k: &str| self.attrs.get(k).map(String::as_str);
        let named = |what: &str, key: &str| match attr(key) {
            Some(v) => format!("{} {what} {v}", self.kind.as_str()),
            None => self.kind.as_str().to_string(),
        };
        match &self.kind {
            CacheBackend::Registry => attr("ref").unwrap_or("registry").to_string(),
            CacheBackend::Local => attr("dest")
                .or(attr("src"))
                .map_or_else(|| "local".to_string(), |d| format!("local {d}")),
            CacheBackend::Inline => "the image (inline)".to_string(),
            CacheBackend::Gha => format!("gha (scope {})", attr("scope").unwrap_or("buildkit")),
            CacheBackend::S3 => named("bucket", "bucket"),
            CacheBackend::AzBlob => named("container", "name"),
            CacheBackend::Other(_) => self.kind.as_str().to_string(),
        }
    }

    /// Whether a failed export of this entry leaves the build standing
    /// (`ignore-error=true`, as BuildKit reads it).
    pub fn ignores_errors(&self) -> bool {
        self.attrs
            .get("ignore-error")
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "t"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_where_the_cache_lives() {
        assert_eq!(CacheEntry::registry("r:5000/c").target(), "r:5000/c");
        assert_eq!(
            CacheEntry::local_dir("/tmp/c").as_export().target(),
            "local /tmp/c"
        );
        assert_eq!(CacheEntry::gha("app").target(), "gha (scope app)");
        assert_eq!(CacheEntry::s3("b", "r").target(), "s3 bucket b");
        assert_eq!(CacheEntry::azblob("https://a").target(), "azblob");
    }

    #[test]
    fn warnings_say_which_cache_and_what_it_cost() {
        let failure = CacheFailure {
            direction: CacheDirection::Export,
            entry: CacheEntry::registry("r:1/c"),
            error: "connection refused".into(),
        };
        assert_eq!(
            failure.warning(),
            "cache export to r:1/c failed, the outputs are complete but the cache was not \
             saved: connection refused"
        );
        let import = CacheFailure {
            direction: CacheDirection::Import,
            ..failure
        };
        assert!(
            import
                .warning()
                .starts_with("cache import from r:1/c failed")
        );
        assert_eq!(CacheStatus::of(0, 0), CacheStatus::None);
        assert_eq!(CacheStatus::of(2, 0), CacheStatus::Succeeded);
        assert_eq!(CacheStatus::of(2, 1).as_str(), "failed");
    }

    #[test]
    fn ignore_error_is_read_as_buildkit_reads_it() {
        let mut e = CacheEntry::registry("r/c");
        assert!(!e.ignores_errors());
        for v in ["true", "1", "T"] {
            e.attrs.insert("ignore-error".into(), v.into());
            assert!(e.ignores_errors(), "{v}");
        }
        e.attrs.insert("ignore-error".into(), "false".into());
        assert!(!e.ignores_errors());
    }
}
