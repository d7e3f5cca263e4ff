//! One `-o` value in buildx's syntax becomes an [`Export`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Destination, Export, FLAG, image_export};
use crate::spec::{self, SpecError};

pub(super) const IMAGE_KEYS: &[&str] = &[
    "name",
    "push",
    "push-by-digest",
    "registry.insecure",
    "insecure",
    "oci-mediatypes",
    "compression",
    "compression-level",
    "force-compression",
    "store",
    "unpack",
    "rewrite-timestamp",
    "dangling-name-prefix",
    "name-canonical",
    "buildinfo",
    "oci-artifact",
];

/// One `-o` value: `type=KIND,...`, or a bare path (local) or `-` (tar to
/// stdout), as buildx reads them.
pub fn parse_output(input: &str) -> Result<Export, SpecError> {
    let (mut s, bare) = spec::parse(FLAG, input)?;
    let kind = match (s.kind.take(), bare.as_slice()) {
        (Some(kind), []) => kind,
        (None, [b]) if b == "-" => {
            s.attrs.insert("dest".to_string(), "-".to_string());
            "tar".to_string()
        }
        (None, [path]) => {
            s.attrs.insert("dest".to_string(), path.clone());
            "local".to_string()
        }
        (None, []) => {
            return Err(SpecError::new(
                FLAG,
                input,
                "missing type= (e.g. type=tar,dest=out.tar)",
            ));
        }
        (_, extra) => {
            return Err(SpecError::new(
                FLAG,
                input,
                format!("unexpected value {:?} (use key=value)", extra[0]),
            ));
        }
    };
    let dest = s.attrs.remove("dest");
    let check = |known: &[&str]| check_keys(input, &kind, &s.attrs, known);
    let export = match kind.as_str() {
        "image" | "registry" => {
            check(IMAGE_KEYS)?;
            if dest.is_some() {
                return Err(SpecError::new(
                    FLAG,
                    input,
                    format!("type={kind} takes no dest (it goes to the image store or registry)"),
                ));
            }
            let mut attrs = s.attrs;
            if kind == "registry" {
                attrs.insert("push".to_string(), "true".to_string());
            }
            normalise_bools(input, &mut attrs)?;
            image_export(attrs)
        }
        "tar" => {
            check(&[])?;
            file_export("tar", s.attrs, dest, input)?
        }
        "oci" | "docker" => {
            check(IMAGE_KEYS)?;
            let mut attrs = s.attrs;
            normalise_bools(input, &mut attrs)?;
            match dest {
                // buildx: type=docker without dest loads into the engine.
                None if kind == "docker" => Export {
                    kind,
                    attrs,
                    dest: Destination::Load,
                },
                _ => file_export(&kind, attrs, dest, input)?,
            }
        }
        "local" => {
            check(&["platform-split"])?;
            let Some(dir) = dest.filter(|d| !d.is_empty() && d != "-") else {
                return Err(SpecError::new(FLAG, input, "type=local needs dest=DIR"));
            };
            Export {
                kind,
                attrs: s.attrs,
                dest: Destination::Dir(PathBuf::from(dir)),
            }
        }
        other => {
            return Err(SpecError::new(
                FLAG,
                input,
                format!(
                    "unknown output type {other:?} (use image, registry, tar, oci, docker or local)"
                ),
            ));
        }
    };
    Ok(export)
}

fn file_export(
    kind: &str,
    attrs: BTreeMap<String, String>,
    dest: Option<String>,
    input: &str,
) -> Result<Export, SpecError> {
    let dest = match dest.as_deref() {
        None | Some("") => {
            return Err(SpecError::new(
                FLAG,
                input,
                format!("type={kind} needs dest=FILE (or dest=- for stdout)"),
            ));
        }
        Some("-") => Destination::Stdout,
        Some(path) => Destination::File(PathBuf::from(path)),
    };
    Ok(Export {
        kind: kind.to_string(),
        attrs,
        dest,
    })
}

fn check_keys(
    input: &str,
    kind: &str,
    attrs: &BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), SpecError> {
    for key in attrs.keys() {
        if !known.contains(&key.as_str()) && !key.starts_with("annotation") {
            let hint = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(SpecError::new(
                FLAG,
                input,
                format!("unknown attribute {key:?} for type={kind} (known: dest, {hint})"),
            ));
        }
    }
    Ok(())
}

fn normalise_bools(input: &str, attrs: &mut BTreeMap<String, String>) -> Result<(), SpecError> {
    for key in [
        "push",
        "push-by-digest",
        "oci-mediatypes",
        "force-compression",
        "store",
        "unpack",
        "rewrite-timestamp",
        "registry.insecure",
        "insecure",
    ] {
        if let Some(v) = attrs.get(key) {
            let b = spec::parse_bool(FLAG, input, key, v)?;
            attrs.insert(key.to_string(), b.to_string());
        }
    }
    Ok(())
}
