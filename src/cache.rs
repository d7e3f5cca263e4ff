//! Build cache imports and exports: buildx's `--cache-from` / `--cache-to`
//! syntax, validated before the daemon is contacted, and the `--cache REF`
//! shorthand (import from and export to one registry ref, mode=max).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::session::content::{self, ContentStores, LayoutError};

use crate::spec::{self, Spec, SpecError};

/// A cache import or export: a backend and its attributes, as sent in
/// `CacheOptionsEntry`. Build one with the typed constructors
/// ([`CacheEntry::registry`], [`CacheEntry::local_dir`], ...) or from
/// buildx's spec strings ([`CacheEntry::import`], [`CacheEntry::export`]).
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Another backend of the daemon's (`gha`, `s3`, `azblob`), passed
    /// through unchecked.
    Other(String),
}

impl CacheBackend {
    /// BuildKit's name of the backend.
    pub fn as_str(&self) -> &str {
        match self {
            CacheBackend::Registry => "registry",
            CacheBackend::Local => "local",
            CacheBackend::Inline => "inline",
            CacheBackend::Other(name) => name,
        }
    }

    fn from_name(name: &str) -> CacheBackend {
        match name {
            "registry" => CacheBackend::Registry,
            "local" => CacheBackend::Local,
            "inline" => CacheBackend::Inline,
            other => CacheBackend::Other(other.to_string()),
        }
    }
}

const FROM: &str = "cache-from";
const TO: &str = "cache-to";

const REGISTRY_IMPORT_KEYS: &[&str] = &["ref"];
const REGISTRY_EXPORT_KEYS: &[&str] = &[
    "ref",
    "mode",
    "image-manifest",
    "oci-mediatypes",
    "compression",
    "compression-level",
    "force-compression",
    "ignore-error",
];
const INLINE_EXPORT_KEYS: &[&str] = &[];
/// Backends the daemon knows but rbuild passes through unchecked.
const PASS_THROUGH: &[&str] = &["gha", "s3", "azblob"];

impl CacheEntry {
    /// Parses one `--cache-from` value.
    pub fn import(input: &str) -> Result<CacheEntry, SpecError> {
        let (spec, kind) = typed(FROM, input)?;
        match kind.as_str() {
            "registry" => {
                spec::check_keys(FROM, input, &kind, &spec, REGISTRY_IMPORT_KEYS)?;
                require_ref(FROM, input, &spec)?;
            }
            "local" => {
                spec::check_keys(FROM, input, &kind, &spec, &["src", "tag", "digest"])?;
                if !spec.attrs.contains_key("src") {
                    return Err(SpecError::new(FROM, input, "type=local needs src=DIR"));
                }
            }
            "inline" => {
                return Err(SpecError::new(
                    FROM,
                    input,
                    "inline cache is read from an image: use type=registry,ref=IMAGE",
                ));
            }
            k if PASS_THROUGH.contains(&k) => {}
            _ => return Err(unknown_type(FROM, input, &kind)),
        }
        Ok(CacheEntry {
            kind: CacheBackend::from_name(&kind),
            attrs: spec.attrs,
        })
    }

    /// Import from (or export to, `mode=min`) a registry ref.
    pub fn registry(reference: impl Into<String>) -> CacheEntry {
        CacheEntry {
            kind: CacheBackend::Registry,
            attrs: BTreeMap::from([("ref".to_string(), reference.into())]),
        }
    }

    /// Export every layer, intermediate stages too (`mode=max`), to a registry ref.
    pub fn registry_max(reference: impl Into<String>) -> CacheEntry {
        let mut entry = CacheEntry::registry(reference);
        entry.attrs.insert("mode".to_string(), "max".to_string());
        entry
    }

    /// A local cache directory: read with `src=` on import, written with
    /// `dest=` (`mode=max`) on export; pick with [`CacheEntry::as_export`].
    pub fn local_dir(dir: impl Into<PathBuf>) -> CacheEntry {
        let dir = dir.into().display().to_string();
        CacheEntry {
            kind: CacheBackend::Local,
            attrs: BTreeMap::from([("src".to_string(), dir)]),
        }
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
        CacheEntry {
            kind: CacheBackend::Inline,
            attrs: BTreeMap::new(),
        }
    }

    /// Parses one `--cache-to` value.
    pub fn export(input: &str) -> Result<CacheEntry, SpecError> {
        let (mut spec, kind) = typed(TO, input)?;
        match kind.as_str() {
            "registry" => {
                spec::check_keys(TO, input, &kind, &spec, REGISTRY_EXPORT_KEYS)?;
                require_ref(TO, input, &spec)?;
                check_common(TO, input, &spec)?;
            }
            "local" => {
                let mut keys = vec!["dest", "tag"];
                keys.extend_from_slice(&REGISTRY_EXPORT_KEYS[1..]);
                spec::check_keys(TO, input, &kind, &spec, &keys)?;
                if !spec.attrs.contains_key("dest") {
                    return Err(SpecError::new(TO, input, "type=local needs dest=DIR"));
                }
                check_common(TO, input, &spec)?;
            }
            "inline" => spec::check_keys(TO, input, &kind, &spec, INLINE_EXPORT_KEYS)?,
            k if PASS_THROUGH.contains(&k) => {}
            _ => return Err(unknown_type(TO, input, &kind)),
        }
        // Booleans are normalised so the daemon sees what Go would send.
        for key in [
            "image-manifest",
            "oci-mediatypes",
            "force-compression",
            "ignore-error",
        ] {
            if let Some(v) = spec.attrs.get(key) {
                let b = spec::parse_bool(TO, input, key, v)?;
                spec.attrs.insert(key.to_string(), b.to_string());
            }
        }
        Ok(CacheEntry {
            kind: CacheBackend::from_name(&kind),
            attrs: spec.attrs,
        })
    }

    /// `--cache REF`: import from REF and export every layer (mode=max) to it.
    pub fn shorthand(reference: &str) -> Result<(CacheEntry, CacheEntry), SpecError> {
        if reference.is_empty() || reference.contains(',') || reference.contains('=') {
            return Err(SpecError::new(
                "cache",
                reference,
                "expected a registry ref such as registry:5000/app-cache (use --cache-from/--cache-to for options)",
            ));
        }
        let import = CacheEntry::import(reference)?;
        let export = CacheEntry::export(&format!("type=registry,ref={reference},mode=max"))?;
        Ok((import, export))
    }

    /// The registry ref, for type=registry entries.
    pub fn reference(&self) -> Option<&str> {
        self.attrs.get("ref").map(String::as_str)
    }
}

/// The spec and its type; a bare value means `type=registry,ref=VALUE`.
fn typed(flag: &'static str, input: &str) -> Result<(Spec, String), SpecError> {
    let (mut spec, bare) = spec::parse(flag, input)?;
    match (spec.kind.take(), bare.as_slice()) {
        (Some(kind), []) => Ok((spec, kind)),
        (None, [reference]) => {
            spec.attrs.insert("ref".to_string(), reference.clone());
            Ok((spec, "registry".to_string()))
        }
        (None, []) => Err(SpecError::new(
            flag,
            input,
            "missing type= (e.g. type=registry,ref=REF)",
        )),
        (_, extra) => Err(SpecError::new(
            flag,
            input,
            format!("unexpected value {:?} (use key=value)", extra[0]),
        )),
    }
}

fn require_ref(flag: &'static str, input: &str, spec: &Spec) -> Result<(), SpecError> {
    match spec.attrs.get("ref") {
        Some(r) if !r.is_empty() => Ok(()),
        _ => Err(SpecError::new(
            flag,
            input,
            "type=registry needs ref=REGISTRY/REPO[:TAG]",
        )),
    }
}

fn check_common(flag: &'static str, input: &str, spec: &Spec) -> Result<(), SpecError> {
    let bad = |reason: String| Err(SpecError::new(flag, input, reason));
    if let Some(mode) = spec.attrs.get("mode")
        && mode != "min"
        && mode != "max"
    {
        return bad(format!("mode={mode:?}: use min or max"));
    }
    if let Some(c) = spec.attrs.get("compression")
        && !["gzip", "zstd", "estargz", "uncompressed"].contains(&c.as_str())
    {
        return bad(format!(
            "compression={c:?}: use gzip, zstd, estargz or uncompressed"
        ));
    }
    if let Some(level) = spec.attrs.get("compression-level")
        && level.parse::<u8>().map_or(true, |l| l > 22)
    {
        return bad(format!(
            "compression-level={level:?}: use a number from 0 to 22"
        ));
    }
    Ok(())
}

fn unknown_type(flag: &'static str, input: &str, kind: &str) -> SpecError {
    SpecError::new(
        flag,
        input,
        format!("unknown cache type {kind:?} (use registry, local, inline, gha, s3 or azblob)"),
    )
}

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
    fn bare_refs_mean_registry() {
        let e = CacheEntry::import("registry:5000/app-cache").unwrap();
        assert_eq!(e.kind, CacheBackend::Registry);
        assert_eq!(e.reference(), Some("registry:5000/app-cache"));
    }

    #[test]
    fn exports_are_validated_and_normalised() {
        let e = CacheEntry::export(
            "type=registry,ref=r/a,mode=max,image-manifest=1,oci-mediatypes=true,compression=zstd,compression-level=3,force-compression=t,ignore-error=true",
        )
        .unwrap();
        assert_eq!(e.attrs["image-manifest"], "true");
        assert_eq!(e.attrs["force-compression"], "true");
        assert_eq!(e.attrs["mode"], "max");
        assert_eq!(
            CacheEntry::export("type=inline").unwrap().kind,
            CacheBackend::Inline
        );
        assert_eq!(
            CacheEntry::export("type=local,dest=/tmp/c").unwrap().attrs["dest"],
            "/tmp/c"
        );
    }

    #[test]
    fn mistakes_get_a_clear_reason() {
        let cases: &[(&str, bool, &str)] = &[
            ("type=nope,ref=x", false, "unknown cache type"),
            ("type=registry", true, "needs ref="),
            ("type=registry,ref=x,mode=all", false, "use min or max"),
            ("type=registry,ref=x,compression=lz4", false, "compression"),
            ("type=registry,ref=x,compression-level=99", false, "0 to 22"),
            (
                "type=registry,ref=x,ignore-error=maybe",
                false,
                "not a boolean",
            ),
            ("type=registry,ref=x,colour=red", false, "unknown attribute"),
            ("type=local", true, "src=DIR"),
            ("type=local", false, "dest=DIR"),
            ("type=inline", true, "type=registry"),
            ("a,b", true, "unexpected value"),
        ];
        for (input, import, want) in cases {
            let err = if *import {
                CacheEntry::import(input).unwrap_err()
            } else {
                CacheEntry::export(input).unwrap_err()
            };
            assert!(err.to_string().contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn shorthand_imports_and_exports_max() {
        let (i, e) = CacheEntry::shorthand("127.0.0.1:5000/app-cache").unwrap();
        assert_eq!(i.reference(), Some("127.0.0.1:5000/app-cache"));
        assert_eq!(e.attrs["mode"], "max");
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
