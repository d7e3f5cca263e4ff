//! Attestations: the SLSA provenance and SBOM statements BuildKit attaches
//! to the images a build produces, as buildx's `--attest`, `--provenance`
//! and `--sbom` describe them.
//!
//! buildx (since 0.10) adds a minimal provenance attestation to every build
//! whose daemon can store it, unless the build turns provenance off; a
//! [`Build`](super::Build) does the same unless
//! [`Build::default_attestations`](super::Build::default_attestations) says
//! no. The default is marked "inline only", so BuildKit attaches it to image
//! outputs (registry, docker, oci) and leaves local and tar outputs as they
//! were.

use std::collections::BTreeMap;
use std::fmt;

use super::InvalidBuild;

/// What an attestation states about the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttestKind {
    /// How the image was built: SLSA provenance (materials, invocation).
    Provenance,
    /// What the image contains: an SPDX software bill of materials.
    Sbom,
}

impl AttestKind {
    /// buildx's spelling: `provenance`, `sbom`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestKind::Provenance => "provenance",
            AttestKind::Sbom => "sbom",
        }
    }

    fn from_name(name: &str) -> Option<AttestKind> {
        match name {
            "provenance" => Some(AttestKind::Provenance),
            "sbom" => Some(AttestKind::Sbom),
            _ => None,
        }
    }
}

impl fmt::Display for AttestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a provenance attestation records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvenanceMode {
    /// Materials, builder and invocation, without the build's own steps.
    Min,
    /// Also the build's steps, its sources and build arguments.
    Max,
}

impl ProvenanceMode {
    fn as_str(self) -> &'static str {
        match self {
            ProvenanceMode::Min => "min",
            ProvenanceMode::Max => "max",
        }
    }
}

/// One attestation request: its kind, whether it is turned off, and the
/// options BuildKit takes for it (`mode`, `builder-id`, `generator`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    kind: AttestKind,
    disabled: bool,
    params: BTreeMap<String, String>,
}

impl Attestation {
    /// A provenance attestation of `mode`.
    pub fn provenance(mode: ProvenanceMode) -> Attestation {
        Attestation::of(AttestKind::Provenance).param("mode", mode.as_str())
    }

    /// An SBOM made by the daemon's default scanner image.
    pub fn sbom() -> Attestation {
        Attestation::of(AttestKind::Sbom)
    }

    /// An SBOM made by the scanner image `image`, which follows BuildKit's
    /// SBOM protocol (it reads `BUILDKIT_SCAN_SOURCE` and writes SPDX
    /// in-toto statements under `BUILDKIT_SCAN_DESTINATION`).
    pub fn sbom_generator(image: impl Into<String>) -> Attestation {
        Attestation::sbom().param("generator", image)
    }

    /// Turns off an attestation of `kind`, the default provenance included.
    pub fn off(kind: AttestKind) -> Attestation {
        Attestation {
            disabled: true,
            ..Attestation::of(kind)
        }
    }

    fn of(kind: AttestKind) -> Attestation {
        Attestation {
            kind,
            disabled: false,
            params: BTreeMap::new(),
        }
    }

    /// Adds an option BuildKit takes for this kind (`builder-id=URL`,
    /// `version=v1`, `scan-context=true`, ...).
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Attestation {
        self.params.insert(key.into(), value.into());
        self
    }

    /// What it states.
    pub fn kind(&self) -> AttestKind {
        self.kind
    }

    /// Whether this request turns the attestation off.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// buildx's `--attest` value: `type=provenance|sbom[,disabled=true][,key=value...]`.
    ///
    /// # Errors
    ///
    /// [`InvalidBuild::Attest`] when the type is missing or unknown, `disabled` is not a
    /// boolean or an option does not fit the type; [`InvalidBuild::Spec`] when the value is
    /// not `key=value` CSV.
    pub fn parse(input: &str) -> Result<Attestation, InvalidBuild> {
        let bad = |reason: &str| InvalidBuild::Attest {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (spec, bare) = crate::spec::parse("attest", input)?;
        if !bare.is_empty() {
            return Err(bad("expected type=provenance|sbom[,key=value...]"));
        }
        let Some(name) = spec.kind else {
            return Err(bad("the type is missing: type=provenance or type=sbom"));
        };
        let kind =
            AttestKind::from_name(&name).ok_or_else(|| bad("the type is provenance or sbom"))?;
        let mut attestation = Attestation::of(kind);
        for (key, value) in spec.attrs {
            if key == "disabled" {
                attestation.disabled =
                    parse_bool(&value).ok_or_else(|| bad("disabled is true or false"))?;
            } else {
                attestation.params.insert(key, value);
            }
        }
        attestation.check().map_err(|reason| bad(&reason))?;
        Ok(attestation)
    }

    /// The value of buildx's `--provenance` or `--sbom` shorthand: a
    /// boolean (`false` turns it off), or the options (`mode=max`,
    /// `generator=IMAGE`).
    ///
    /// # Errors
    ///
    /// [`InvalidBuild::Attest`] (naming `value`) when `value` is neither a boolean nor
    /// valid options; [`InvalidBuild::Spec`] when it is not `key=value` CSV.
    pub fn shorthand(kind: AttestKind, value: &str) -> Result<Attestation, InvalidBuild> {
        match parse_bool(value) {
            Some(on) if on => Ok(Attestation::of(kind)),
            Some(_) => Ok(Attestation::off(kind)),
            None => Attestation::parse(&format!("type={kind},{value}")).map_err(|e| match e {
                InvalidBuild::Attest { reason, .. } => InvalidBuild::Attest {
                    input: value.to_string(),
                    reason,
                },
                other => other,
            }),
        }
    }

    fn check(&self) -> Result<(), String> {
        if let Some(mode) = self.params.get("mode")
            && self.kind == AttestKind::Provenance
            && !matches!(mode.as_str(), "min" | "max")
        {
            return Err(format!("mode {mode:?}: use mode=min or mode=max"));
        }
        if self.params.get("generator").is_some_and(|g| g.is_empty()) {
            return Err("generator is empty: name the scanner image".into());
        }
        Ok(())
    }

    /// The frontend's `attest:KIND` value, or `None` when turned off (an
    /// off request only suppresses the default).
    pub(crate) fn attr_value(&self) -> Option<String> {
        if self.disabled {
            return None;
        }
        let mut fields = vec![format!("type={}", self.kind)];
        fields.extend(
            self.params
                .iter()
                .map(|(k, v)| csv_field(&format!("{k}={v}"))),
        );
        Some(fields.join(","))
    }
}

/// Whether the daemon can store attestations, with the reason when not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AttestSupport {
    Yes,
    No(String),
}

/// The scanner image the daemon runs for the build's SBOM, if it makes one: the
/// `generator` given, else BuildKit's default scanner (on Docker Hub).
pub(crate) fn sbom_scanner(build: &super::Build) -> Option<String> {
    let sbom = build.attestations.get(&AttestKind::Sbom)?;
    if sbom.disabled {
        return None;
    }
    Some(
        sbom.params
            .get("generator")
            .cloned()
            .unwrap_or_else(|| DEFAULT_SBOM_SCANNER.to_string()),
    )
}

/// BuildKit's scanner when an SBOM names none (its `attest:sbom` default).
const DEFAULT_SBOM_SCANNER: &str = "docker/buildkit-syft-scanner";

/// What buildx adds when the build says nothing about provenance.
pub(crate) const DEFAULT_PROVENANCE: &str = "mode=min,inline-only=true";

/// The frontend's `attest:*` attributes for `build` on a daemon whose
/// support is `support`: buildx errors on an explicit attestation the
/// daemon cannot store, and adds its default only where it can.
pub(crate) fn frontend_attrs(
    build: &super::Build,
    support: &AttestSupport,
) -> Result<Vec<(String, String)>, InvalidBuild> {
    let mut attrs = Vec::new();
    for a in build.attestations.values() {
        if let Some(value) = a.attr_value() {
            if let AttestSupport::No(reason) = support {
                return Err(InvalidBuild::AttestUnsupported {
                    kind: a.kind(),
                    reason: reason.clone(),
                });
            }
            attrs.push((format!("attest:{}", a.kind()), value));
        }
    }
    let says_provenance = build.attestations.contains_key(&AttestKind::Provenance);
    if *support == AttestSupport::Yes && !says_provenance && !build.no_default_attestations {
        attrs.push(("attest:provenance".into(), DEFAULT_PROVENANCE.into()));
    }
    Ok(attrs)
}

fn parse_bool(value: &str) -> Option<bool> {
    // Go's strconv.ParseBool, which buildx uses.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The frontend splits the value as CSV: a field holding a comma or a quote
/// is quoted whole.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_shorthands() {
        let off = Attestation::shorthand(AttestKind::Provenance, "false").unwrap();
        assert!(off.is_disabled());
        assert_eq!(off.attr_value(), None);
        let on = Attestation::shorthand(AttestKind::Sbom, "true").unwrap();
        assert_eq!(on.attr_value().as_deref(), Some("type=sbom"));
        let max =
            Attestation::shorthand(AttestKind::Provenance, "mode=max,builder-id=https://ci/1")
                .unwrap();
        assert_eq!(
            max.attr_value().as_deref(),
            Some("type=provenance,builder-id=https://ci/1,mode=max")
        );
        let scanner = Attestation::shorthand(AttestKind::Sbom, "generator=reg/scan:1").unwrap();
        assert_eq!(scanner, Attestation::sbom_generator("reg/scan:1"));
    }

    #[test]
    fn attest_flag_forms() {
        let a = Attestation::parse("type=provenance,mode=min").unwrap();
        assert_eq!(a, Attestation::provenance(ProvenanceMode::Min));
        assert!(
            Attestation::parse("type=sbom,disabled=true")
                .unwrap()
                .is_disabled()
        );
        for (bad, why) in [
            ("mode=max", "type is missing"),
            ("type=slsa", "provenance or sbom"),
            ("type=provenance,mode=full", "mode=min or mode=max"),
            ("type=sbom,generator=", "generator is empty"),
            ("type=sbom,disabled=maybe", "true or false"),
            ("type=sbom,oops", "expected type="),
        ] {
            let e = Attestation::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = Attestation::shorthand(AttestKind::Provenance, "mode=full")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("attestation \"mode=full\""), "{e}");
    }

    #[test]
    fn values_with_commas_stay_one_field() {
        let a = Attestation::sbom().param("note", "a,b");
        assert_eq!(a.attr_value().as_deref(), Some("type=sbom,\"note=a,b\""));
    }
}
