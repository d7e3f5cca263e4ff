//! Frontend subrequests: instead of building, the Dockerfile frontend
//! answers a question about the Dockerfile — its build checks
//! ([`Call::Check`], `frontend.lint`), the parameters of a target
//! ([`Call::Outline`]), its stages ([`Call::Targets`]). buildx asks them
//! with `--call` (`--check`); upstream: frontend/subrequests/ and
//! frontend/dockerui/requests.go.
//!
//! A build asks one with [`Build::call`](crate::Build::call); its
//! [`BuildResult::call`](crate::BuildResult::call) is the typed answer,
//! which renders as buildx prints it ([`CallResult::write_text`]).

use std::collections::BTreeMap;
use std::io::{self, Write};

use bytes::Bytes;

use crate::spec::SpecError;

mod lint;
mod outline;
mod tabwriter;
mod targets;

pub use lint::{Lint, LintError, LintSource, LintWarning, Location};
pub use outline::{Outline, OutlineArg, OutlineRequirement};
pub use targets::{Stage, Targets};

/// The frontend image buildx retries a call with when the daemon's own
/// Dockerfile frontend does not know it (buildx build/build.go
/// `printLintFallbackImage`; the daemon pulls it from Docker Hub).
pub const FALLBACK_FRONTEND: &str = "docker/dockerfile:1.8.1@sha256:e87caa74dcb7d46cd820352bfea12591f3dba3ddc4285e19c7dcd13359f7cefd";

/// The result format version this module knows how to print; a newer one
/// is printed with the frontend's own text (buildx does the same).
const KNOWN_VERSION: (u64, u64, u64) = (1, 0, 0);

/// A question for the frontend instead of a build.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Call {
    /// The build checks (buildx's `check`, the frontend's `lint`).
    Check,
    /// The build arguments, secrets and SSH agents of the target.
    Outline,
    /// The Dockerfile's stages.
    Targets,
    /// The subrequests the frontend answers.
    Describe,
    /// Another subrequest, by the frontend's name without `frontend.`.
    Other(String),
}

impl Call {
    /// The frontend's name for it (`lint`, `outline`, `targets`, ...).
    pub fn name(&self) -> &str {
        match self {
            Call::Check => "lint",
            Call::Outline => "outline",
            Call::Targets => "targets",
            Call::Describe => "subrequests.describe",
            Call::Other(name) => name,
        }
    }

    /// The `requestid` the frontend is sent: `frontend.NAME`.
    pub fn request_id(&self) -> String {
        format!("frontend.{}", self.name())
    }

    fn from_name(name: &str) -> Call {
        match name {
            "check" | "lint" => Call::Check,
            "outline" => Call::Outline,
            "targets" => Call::Targets,
            "subrequests.describe" => Call::Describe,
            other => Call::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Call {
    /// buildx's word: `check` for the lint.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Check => f.write_str("check"),
            other => f.write_str(other.name()),
        }
    }
}

/// How a call's answer is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallFormat {
    /// buildx's text.
    #[default]
    Text,
    /// The frontend's JSON, as it sent it.
    Json,
}

/// buildx's `--call` value: `NAME[,format=json][,ignorestatus=true]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallSpec {
    /// `None` for `build`: an ordinary build.
    pub call: Option<Call>,
    /// How the answer is printed.
    pub format: CallFormat,
    /// Exit 0 even when the answer asks for another status (a check with
    /// warnings).
    pub ignore_status: bool,
}

impl std::str::FromStr for CallSpec {
    type Err = SpecError;

    /// Parses buildx's syntax (util/buildflags/callfunc.go): `check` is the
    /// frontend's `lint`; an unknown `key=value` field is refused.
    fn from_str(input: &str) -> Result<CallSpec, SpecError> {
        let (spec, bare) = crate::spec::parse("call", input)?;
        if spec.kind.is_some() {
            return Err(SpecError::new("call", input, "invalid field \"type\""));
        }
        let mut out = CallSpec::default();
        for (key, value) in &spec.attrs {
            match key.as_str() {
                "format" => {
                    out.format = match value.as_str() {
                        "json" => CallFormat::Json,
                        "" | "text" => CallFormat::Text,
                        other => {
                            return Err(SpecError::new(
                                "call",
                                input,
                                format!("unknown format {other:?}: use json"),
                            ));
                        }
                    }
                }
                "ignorestatus" => {
                    out.ignore_status = parse_bool(value).ok_or_else(|| {
                        SpecError::new("call", input, "ignorestatus takes true or false")
                    })?;
                }
                other => {
                    return Err(SpecError::new(
                        "call",
                        input,
                        format!("invalid field {other:?}: use format=json or ignorestatus=true"),
                    ));
                }
            }
        }
        match bare.as_slice() {
            [] => {
                return Err(SpecError::new(
                    "call",
                    input,
                    "no call named: use check, outline, targets or build",
                ));
            }
            [name] => {
                out.call = (name != "build").then(|| Call::from_name(name));
            }
            _ => {
                return Err(SpecError::new(
                    "call",
                    input,
                    "one call at a time: check, outline, targets or build",
                ));
            }
        }
        Ok(out)
    }
}

/// Go's strconv.ParseBool, as buildx reads flag values.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The frontend's answer to a [`Call`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallResult {
    /// What was asked.
    pub call: Call,
    /// The answer as typed data; [`CallValue::Other`] when this module does
    /// not know the call or cannot read the answer.
    pub value: CallValue,
    /// The answer's JSON as the frontend sent it (`result.json`).
    pub json: Option<String>,
    /// The frontend's own text rendering (`result.txt`).
    pub text: Option<String>,
    /// The answer format's version (`version`), e.g. `1.0.0`.
    pub version: Option<String>,
    /// The exit status the frontend asks for (`result.statuscode`): the
    /// check says 1 when it found a warning or an error.
    pub status_code: Option<i32>,
    /// Every key the frontend returned, as it sent it.
    pub metadata: BTreeMap<String, Bytes>,
}

/// A [`CallResult`] as typed data.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CallValue {
    /// The build checks' warnings (and error).
    Check(Lint),
    /// The target's parameters.
    Outline(Outline),
    /// The stages.
    Targets(Targets),
    /// Anything else.
    Other,
}

impl CallResult {
    /// Reads the metadata a frontend returned for `call`.
    pub(crate) fn from_metadata(call: Call, metadata: BTreeMap<String, Bytes>) -> CallResult {
        let text_of = |key: &str| {
            metadata
                .get(key)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        let json = text_of("result.json");
        let value = json
            .as_deref()
            .and_then(|json| match call {
                Call::Check => serde_json::from_str(json).ok().map(CallValue::Check),
                Call::Outline => serde_json::from_str(json).ok().map(CallValue::Outline),
                Call::Targets => serde_json::from_str(json).ok().map(CallValue::Targets),
                _ => None,
            })
            .unwrap_or(CallValue::Other);
        CallResult {
            call,
            value,
            text: text_of("result.txt"),
            version: text_of("version"),
            status_code: text_of("result.statuscode").and_then(|s| s.trim().parse().ok()),
            json,
            metadata,
        }
    }

    /// The check's report, for a [`Call::Check`].
    pub fn lint(&self) -> Option<&Lint> {
        match &self.value {
            CallValue::Check(lint) => Some(lint),
            _ => None,
        }
    }

    /// Writes the answer as buildx prints it for `--call NAME`: the check's
    /// `Check complete, ...` report, the outline's and targets' tables.
    /// `dockerfile` replaces the file name in the check's snippets (buildx
    /// shows the path as the user gave it). A check's build error is not
    /// written: see [`Lint::error_text`].
    ///
    /// # Errors
    ///
    /// When `w` fails.
    pub fn write_text(&self, w: &mut dyn Write, dockerfile: Option<&str>) -> io::Result<()> {
        if let Some(text) = self.text.as_deref().filter(|t| !t.is_empty())
            && self.newer_than_known()
        {
            return w.write_all(text.as_bytes());
        }
        match &self.value {
            CallValue::Check(lint) => lint.write_report(w, dockerfile),
            CallValue::Outline(outline) => outline.write_text(w),
            CallValue::Targets(targets) => targets.write_text(w),
            CallValue::Other => match (&self.text, &self.json) {
                (Some(text), _) => w.write_all(text.as_bytes()),
                (None, Some(json)) => writeln!(w, "{json}"),
                (None, None) => writeln!(w, "{}: the frontend returned no result", self.call),
            },
        }
    }

    /// The answer's JSON and a newline, as buildx prints `format=json`.
    ///
    /// # Errors
    ///
    /// When `w` fails.
    pub fn write_json(&self, w: &mut dyn Write) -> io::Result<()> {
        writeln!(w, "{}", self.json.as_deref().unwrap_or(""))
    }

    /// The answer as buildx writes it into the metadata file: `result.json`
    /// as JSON, every other key as the text the frontend sent (buildx reads
    /// the response map back, and these do not decode further).
    pub fn metadata_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (key, value) in &self.metadata {
            let text = String::from_utf8_lossy(value).into_owned();
            let parsed = (key == "result.json")
                .then(|| serde_json::from_str(&text).ok())
                .flatten();
            out.insert(
                key.clone(),
                parsed.unwrap_or(serde_json::Value::String(text)),
            );
        }
        serde_json::Value::Object(out)
    }

    fn newer_than_known(&self) -> bool {
        let Some(version) = &self.version else {
            return false;
        };
        let mut parts = version
            .trim_start_matches('v')
            .split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0));
        let v = (
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        );
        v > KNOWN_VERSION
    }
}

/// Decodes Go's `[]byte` JSON (standard base64); undecodable data is empty.
fn base64_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    use base64::Engine as _;
    let text: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(text
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .map(Bytes::from)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_specs_parse_as_buildx_reads_them() {
        let spec: CallSpec = "check".parse().unwrap();
        assert_eq!(spec.call, Some(Call::Check));
        assert_eq!(spec.call.as_ref().unwrap().request_id(), "frontend.lint");
        let spec: CallSpec = "outline,format=json,ignorestatus=1".parse().unwrap();
        assert_eq!(spec.call, Some(Call::Outline));
        assert_eq!(spec.format, CallFormat::Json);
        assert!(spec.ignore_status);
        assert_eq!("build".parse::<CallSpec>().unwrap().call, None);
        let err = "targets,colour=red".parse::<CallSpec>().unwrap_err();
        assert!(
            err.to_string().contains("invalid field \"colour\""),
            "{err}"
        );
        assert!("check,outline".parse::<CallSpec>().is_err());
        assert_eq!(Call::Check.to_string(), "check");
    }

    #[test]
    fn a_newer_answer_prints_the_frontends_own_text() {
        let metadata = BTreeMap::from([
            ("result.json".to_string(), Bytes::from_static(b"{\"x\":1}")),
            (
                "result.txt".to_string(),
                Bytes::from_static(b"their text\n"),
            ),
            ("version".to_string(), Bytes::from_static(b"1.1.0")),
        ]);
        let r = CallResult::from_metadata(Call::Outline, metadata);
        let mut out = Vec::new();
        r.write_text(&mut out, None).unwrap();
        assert_eq!(out, b"their text\n");
        let mut json = Vec::new();
        r.write_json(&mut json).unwrap();
        assert_eq!(json, b"{\"x\":1}\n");
    }
}
