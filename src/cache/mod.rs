//! Build cache imports and exports: the typed entries, buildx's
//! `--cache-from` / `--cache-to` syntax (validated before the daemon is
//! contacted), the `--cache REF` shorthand, and the backends whose
//! credentials come from the environment (`gha`, `s3`): [`CacheEnv`] holds
//! those values, read where the caller decides, and [`CacheEntry::with_env`]
//! fills them in as buildx does; [`CacheFailure`] says which of them
//! failed without failing the build.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::spec::SpecError;

mod env;
mod local;
mod outcome;
mod parse;
mod redact;
mod resolve;

pub use env::{AwsCredentials, CacheEnv, GhaRuntime};
pub(crate) use local::LocalCache;
pub use outcome::{CacheDirection, CacheFailure, CacheStatus};
pub(crate) use redact::Scrubber;
pub(crate) use resolve::resolve_entries;

/// A cache import or export: a backend and its attributes, as sent in
/// `CacheOptionsEntry`. Build one with the typed constructors
/// ([`CacheEntry::registry`], [`CacheEntry::local_dir`], [`CacheEntry::gha`],
/// [`CacheEntry::s3`], ...) or from buildx's spec strings
/// ([`CacheEntry::import`], [`CacheEntry::export`]). Its `Debug` hides the
/// values of credential attributes (`token`, `secret_access_key`, ...).
#[derive(Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The cache backend.
    pub kind: CacheBackend,
    /// The backend's attributes (`ref`, `mode`, `dest`, ...).
    pub attrs: BTreeMap<String, String>,
}

/// A build cache backend of BuildKit's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheBackend {
    /// An OCI registry (`ref=`).
    Registry,
    /// A local OCI layout directory (`src=` / `dest=`).
    Local,
    /// Cache metadata inside the image itself (export only).
    Inline,
    /// The GitHub Actions cache service (`scope=`, `token=`, `url=`,
    /// `url_v2=`); [`CacheEnv`] says where the token comes from.
    Gha,
    /// An S3 bucket (`bucket=`, `region=`, `access_key_id=`, ...). A
    /// standalone buildkitd has it; Docker Engine's BuildKit does not.
    S3,
    /// An Azure Blob Storage account (`account_url=`, `name=`,
    /// `secret_access_key=`); like S3, only on a standalone buildkitd.
    AzBlob,
    /// Another backend of the daemon's, passed through unchecked.
    Other(String),
}

impl CacheBackend {
    /// BuildKit's name of the backend.
    pub fn as_str(&self) -> &str {
        match self {
            CacheBackend::Registry => "registry",
            CacheBackend::Local => "local",
            CacheBackend::Inline => "inline",
            CacheBackend::Gha => "gha",
            CacheBackend::S3 => "s3",
            CacheBackend::AzBlob => "azblob",
            CacheBackend::Other(name) => name,
        }
    }

    fn from_name(name: &str) -> CacheBackend {
        match name {
            "registry" => CacheBackend::Registry,
            "local" => CacheBackend::Local,
            "inline" => CacheBackend::Inline,
            "gha" => CacheBackend::Gha,
            "s3" => CacheBackend::S3,
            "azblob" => CacheBackend::AzBlob,
            other => CacheBackend::Other(other.to_string()),
        }
    }
}

impl CacheEntry {
    /// Parses one `--cache-from` value. A credential written into it
    /// (`token=`, `secret_access_key=`, ...) is hidden in the error.
    ///
    /// # Errors
    ///
    /// [`SpecError`] when the value is not `type=...,key=value` CSV, names an unknown type
    /// or attribute, or lacks a required one (`ref`, `src`, ...).
    pub fn import(input: &str) -> Result<CacheEntry, SpecError> {
        parse::import(input).map_err(redact::spec_error)
    }

    /// Parses one `--cache-to` value; credentials are hidden in the error.
    ///
    /// # Errors
    ///
    /// [`SpecError`] when the value is not `type=...,key=value` CSV, names an unknown type,
    /// attribute or `mode`, or lacks a required one (`ref`, `dest`, ...).
    pub fn export(input: &str) -> Result<CacheEntry, SpecError> {
        parse::export(input).map_err(redact::spec_error)
    }

    /// Import from (or export to, `mode=min`) a registry ref.
    pub fn registry(reference: impl Into<String>) -> CacheEntry {
        CacheEntry::of(CacheBackend::Registry, [("ref", reference.into())])
    }

    /// Export every layer, intermediate stages too (`mode=max`), to a registry ref.
    pub fn registry_max(reference: impl Into<String>) -> CacheEntry {
        CacheEntry::registry(reference).mode_max()
    }

    /// A local cache directory: read with `src=` on import, written with
    /// `dest=` (`mode=max`) on export; pick with [`CacheEntry::as_export`].
    pub fn local_dir(dir: impl Into<PathBuf>) -> CacheEntry {
        let dir = dir.into().display().to_string();
        CacheEntry::of(CacheBackend::Local, [("src", dir)])
    }

    /// The export form of a [`CacheEntry::local_dir`] entry (`dest=`,
    /// `mode=max`); other entries are returned unchanged.
    pub fn as_export(mut self) -> CacheEntry {
        if self.kind == CacheBackend::Local
            && let Some(dir) = self.attrs.remove("src")
        {
            self.attrs.insert("dest".to_string(), dir);
            self.attrs.insert("mode".to_string(), "max".to_string());
        }
        self
    }

    /// Cache metadata inside the image (export only).
    pub fn inline() -> CacheEntry {
        CacheEntry::of(CacheBackend::Inline, [])
    }

    /// The GitHub Actions cache under `scope` (buildx's default scope is
    /// `buildkit`). The token and service URL come from
    /// [`CacheEntry::with_env`] unless `token`/`url` attributes are set; an
    /// entry without them is left out of the build with a warning.
    pub fn gha(scope: impl Into<String>) -> CacheEntry {
        CacheEntry::of(CacheBackend::Gha, [("scope", scope.into())])
    }

    /// An S3 bucket. Credentials come from [`CacheEntry::with_env`] unless
    /// `access_key_id`/`secret_access_key` attributes are set. Docker
    /// Engine's BuildKit has no S3 backend: use a standalone buildkitd.
    pub fn s3(bucket: impl Into<String>, region: impl Into<String>) -> CacheEntry {
        CacheEntry::of(
            CacheBackend::S3,
            [("bucket", bucket.into()), ("region", region.into())],
        )
    }

    /// An Azure Blob Storage account (`https://ACCOUNT.blob.core.windows.net`);
    /// like S3, only a standalone buildkitd has it. The daemon reads its
    /// own Azure credentials unless `secret_access_key` is set.
    pub fn azblob(account_url: impl Into<String>) -> CacheEntry {
        CacheEntry::of(CacheBackend::AzBlob, [("account_url", account_url.into())])
    }

    /// As an export, every layer, intermediate stages too (`mode=max`).
    pub fn mode_max(mut self) -> CacheEntry {
        self.attrs.insert("mode".to_string(), "max".to_string());
        self
    }

    /// `--cache REF`: import from REF and export every layer (mode=max) to
    /// it, best-effort: a shared cache only speeds builds up, so a failed
    /// export (`ignore-error=true`) leaves the outputs standing, as a
    /// failed import always does; the result lists what failed.
    ///
    /// # Errors
    ///
    /// [`SpecError`] when `reference` is empty or holds a `,` or `=` (options need
    /// [`CacheEntry::import`] and [`CacheEntry::export`]), or is no valid registry ref.
    pub fn shorthand(reference: &str) -> Result<(CacheEntry, CacheEntry), SpecError> {
        if reference.is_empty() || reference.contains(',') || reference.contains('=') {
            return Err(SpecError::new(
                "cache",
                reference,
                "expected a registry ref such as registry:5000/app-cache; options need a separate import and export",
            ));
        }
        let import = CacheEntry::import(reference)?;
        let export = CacheEntry::export(&format!(
            "type=registry,ref={reference},mode=max,ignore-error=true"
        ))?;
        Ok((import, export))
    }

    /// The registry ref, for type=registry entries.
    pub fn reference(&self) -> Option<&str> {
        self.attrs.get("ref").map(String::as_str)
    }

    /// This registry entry with `-SUFFIX` on its ref's tag (`latest` when it
    /// has none): where one platform of a build split over several nodes
    /// keeps its cache, so the nodes do not overwrite each other's cache
    /// manifest. `None` for other backends and refs pinned by digest.
    pub fn with_tag_suffix(&self, suffix: &str) -> Option<CacheEntry> {
        let reference = self
            .reference()
            .filter(|_| self.kind == CacheBackend::Registry)?;
        if reference.contains('@') {
            return None;
        }
        let name_start = reference.rfind('/').map_or(0, |i| i + 1);
        let suffixed = if reference[name_start..].contains(':') {
            format!("{reference}-{suffix}")
        } else {
            format!("{reference}:latest-{suffix}")
        };
        let mut entry = self.clone();
        entry.attrs.insert("ref".into(), suffixed);
        Some(entry)
    }

    fn of<const N: usize>(kind: CacheBackend, attrs: [(&str, String); N]) -> CacheEntry {
        CacheEntry {
            kind,
            attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }
}

/// The frontend attribute `cache-imports`: the Dockerfile frontend reads its
/// imports from here (the Go client mirrors `Cache.Imports` into it).
pub(crate) fn imports_attr(imports: &[CacheEntry]) -> String {
    let list: Vec<serde_json::Value> = imports
        .iter()
        .map(|c| serde_json::json!({"Type": c.kind.as_str(), "Attrs": c.attrs}))
        .collect();
    serde_json::Value::Array(list).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_constructors_spell_buildkit_attributes() {
        let e = CacheEntry::s3("bucket-a", "eu-west-1").mode_max();
        assert_eq!(
            (e.kind.as_str(), e.attrs["bucket"].as_str()),
            ("s3", "bucket-a")
        );
        assert_eq!(
            (e.attrs["region"].as_str(), e.attrs["mode"].as_str()),
            ("eu-west-1", "max")
        );
        assert_eq!(CacheEntry::gha("app").attrs["scope"], "app");
        let az = CacheEntry::azblob("https://acct.blob.core.windows.net");
        assert_eq!(az.kind, CacheBackend::AzBlob);
        assert_eq!(
            az.attrs["account_url"],
            "https://acct.blob.core.windows.net"
        );
        assert_eq!(CacheEntry::registry_max("r/a").attrs["mode"], "max");
        for name in ["gha", "s3", "azblob", "registry", "local", "inline", "x"] {
            assert_eq!(CacheBackend::from_name(name).as_str(), name);
        }
    }

    #[test]
    fn platform_suffixes_go_on_the_tag() {
        let e = CacheEntry::registry("127.0.0.1:5000/app-cache");
        let s = e.with_tag_suffix("linux-arm64").unwrap();
        assert_eq!(
            s.reference(),
            Some("127.0.0.1:5000/app-cache:latest-linux-arm64")
        );
        let e = CacheEntry::registry("r:5000/team/app:main");
        let s = e.with_tag_suffix("linux-amd64").unwrap();
        assert_eq!(s.reference(), Some("r:5000/team/app:main-linux-amd64"));
        assert!(
            CacheEntry::registry("r/app@sha256:00")
                .with_tag_suffix("x")
                .is_none()
        );
        assert!(
            CacheEntry::local_dir("/tmp/c")
                .with_tag_suffix("x")
                .is_none()
        );
    }

    #[test]
    fn shorthand_imports_and_exports_max() {
        let (i, e) = CacheEntry::shorthand("127.0.0.1:5000/app-cache").unwrap();
        assert_eq!(i.reference(), Some("127.0.0.1:5000/app-cache"));
        assert_eq!(e.attrs["mode"], "max");
        assert!(e.ignores_errors(), "a shared cache must not fail the build");
        assert!(CacheEntry::shorthand("type=registry").is_err());
    }

    #[test]
    fn imports_attr_is_go_shaped_json() {
        let e = CacheEntry::import("r/a").unwrap();
        let v: serde_json::Value = serde_json::from_str(&imports_attr(&[e])).unwrap();
        assert_eq!(v[0]["Type"], "registry");
        assert_eq!(v[0]["Attrs"]["ref"], "r/a");
    }
}
