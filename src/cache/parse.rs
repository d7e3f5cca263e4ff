//! buildx's `--cache-from` / `--cache-to` spec strings: each backend's
//! attributes checked and booleans normalised before the daemon sees them.

use super::{CacheBackend, CacheEntry};
use crate::spec::{self, Spec, SpecError};

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
/// Backends whose attributes only the daemon checks: their sets grow with
/// BuildKit releases, and several default to the daemon's environment.
const DAEMON_CHECKED: &[&str] = &["gha", "s3", "azblob"];

/// Parses one `--cache-from` value.
pub(super) fn import(input: &str) -> Result<CacheEntry, SpecError> {
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
        k if DAEMON_CHECKED.contains(&k) => {}
        _ => return Err(unknown_type(FROM, input, &kind)),
    }
    Ok(CacheEntry {
        kind: CacheBackend::from_name(&kind),
        attrs: spec.attrs,
    })
}

/// Parses one `--cache-to` value.
pub(super) fn export(input: &str) -> Result<CacheEntry, SpecError> {
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
        // Their mode and compression mean what the registry's do.
        k if DAEMON_CHECKED.contains(&k) => check_common(TO, input, &spec)?,
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
            ("type=s3,bucket=b,mode=all", false, "use min or max"),
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
    fn daemon_backends_keep_their_attributes() {
        let e = CacheEntry::export(
            "type=s3,bucket=b,region=eu-west-1,endpoint_url=http://minio:9000,use_path_style=true,mode=max,ignore-error=1",
        )
        .unwrap();
        assert_eq!(e.kind, CacheBackend::S3);
        assert_eq!(e.attrs["endpoint_url"], "http://minio:9000");
        assert_eq!(e.attrs["ignore-error"], "true");
        let e = CacheEntry::import("type=gha,scope=app,url=http://x/").unwrap();
        assert_eq!(
            (e.kind, e.attrs["scope"].as_str()),
            (CacheBackend::Gha, "app")
        );
        let e = CacheEntry::export("type=azblob,account_url=https://a,name=app").unwrap();
        assert_eq!(e.kind, CacheBackend::AzBlob);
    }
}
