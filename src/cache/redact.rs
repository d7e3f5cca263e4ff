//! Credentials travel to the daemon as plain cache attributes, so every way
//! an entry can be shown hides them: `Debug`, [`CacheEntry::redacted`] for
//! reports, spec errors that quote what the user typed, and the
//! [`Scrubber`] that takes the values out of whatever the daemon sends back
//! (progress, errors, warnings) in case it ever quotes one.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::CacheEntry;
use crate::progress::status::StatusUpdate;
use crate::spec::SpecError;

/// Attributes that hold a credential, in any backend (BuildKit's gha, s3
/// and azblob; buildx hides the same set in its traces).
const SECRET_ATTRS: &[&str] = &[
    "token",
    "ghtoken",
    "access_key_id",
    "secret_access_key",
    "session_token",
];

/// What stands in for a hidden value.
const HIDDEN: &str = "<redacted>";

/// Shorter values are not searched for in the daemon's text: they would
/// match ordinary words, and no real credential is that short.
const MIN_SCRUBBED: usize = 4;

fn is_secret(key: &str) -> bool {
    SECRET_ATTRS.contains(&key.trim().to_ascii_lowercase().as_str())
}

impl CacheEntry {
    /// A copy to show or store (a report, a result): credential values
    /// replaced by `<redacted>`.
    pub fn redacted(&self) -> CacheEntry {
        CacheEntry {
            kind: self.kind.clone(),
            attrs: redacted_attrs(&self.attrs),
        }
    }
}

fn redacted_attrs(attrs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    attrs
        .iter()
        .map(|(k, v)| {
            let v = if is_secret(k) { HIDDEN } else { v.as_str() };
            (k.clone(), v.to_string())
        })
        .collect()
}

impl std::fmt::Debug for CacheEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheEntry")
            .field("kind", &self.kind)
            .field("attrs", &redacted_attrs(&self.attrs))
            .finish()
    }
}

/// The error with credential values in the quoted input hidden.
pub(super) fn spec_error(mut e: SpecError) -> SpecError {
    e.input = redact_spec(&e.input);
    e
}

/// `type=s3,secret_access_key=X` -> `type=s3,secret_access_key=<redacted>`;
/// input that is not even CSV is hidden whole when it names a credential.
fn redact_spec(input: &str) -> String {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input.as_bytes());
    let Some(Ok(record)) = reader.records().next() else {
        let lower = input.to_ascii_lowercase();
        return match SECRET_ATTRS.iter().any(|k| lower.contains(k)) {
            true => HIDDEN.to_string(),
            false => input.to_string(),
        };
    };
    let fields: Vec<String> = record
        .iter()
        .map(|field| match field.split_once('=') {
            Some((k, _)) if is_secret(k) => format!("{k}={HIDDEN}"),
            _ if field.contains(',') || field.contains('"') => {
                format!("\"{}\"", field.replace('"', "\"\""))
            }
            _ => field.to_string(),
        })
        .collect();
    fields.join(",")
}

/// The credential values of one build, taken out of text the daemon sends
/// back before anyone sees it.
#[derive(Clone, Default)]
pub(crate) struct Scrubber {
    values: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber(<{} values redacted>)", self.values.len())
    }
}

impl Scrubber {
    /// The credentials in `entries`' attributes.
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a CacheEntry>) -> Scrubber {
        let mut values: Vec<String> = entries
            .into_iter()
            .flat_map(|e| e.attrs.iter())
            .filter(|(k, v)| is_secret(k) && v.len() >= MIN_SCRUBBED)
            .map(|(_, v)| v.clone())
            .collect();
        // Longest first, so a value that contains another goes whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Scrubber { values }
    }

    /// `text` without any of the values.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), HIDDEN));
            }
        }
        out
    }

    /// Scrubs a string in place.
    pub fn string(&self, s: &mut String) {
        if let Cow::Owned(clean) = self.text(s) {
            *s = clean;
        }
    }

    /// Scrubs every text of a status update: names, errors, warnings, logs.
    pub fn update(&self, update: &mut StatusUpdate) {
        if self.values.is_empty() {
            return;
        }
        for v in &mut update.vertices {
            self.string(&mut v.name);
            if let Some(e) = &mut v.error {
                self.string(e);
            }
        }
        for s in &mut update.statuses {
            self.string(&mut s.name);
        }
        for w in &mut update.warnings {
            self.string(&mut w.short);
            w.detail.iter_mut().for_each(|d| self.string(d));
        }
        for log in &mut update.logs {
            // Log chunks are bytes; a value split across two chunks is not
            // found, but the daemon never logs cache attributes.
            let text = String::from_utf8_lossy(&log.data);
            if let Cow::Owned(clean) = self.text(&text) {
                log.data = clean.into_bytes().into();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::CacheBackend;
    use super::*;

    fn s3_with_secret() -> CacheEntry {
        let mut e = CacheEntry::s3("bucket", "eu-west-1");
        e.attrs.insert("access_key_id".into(), "AKIDVALUE".into());
        e.attrs
            .insert("secret_access_key".into(), "SECRETVALUE".into());
        e
    }

    #[test]
    fn debug_and_redacted_hide_credentials() {
        let e = s3_with_secret();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("SECRETVALUE") && !shown.contains("AKIDVALUE"),
            "{shown}"
        );
        assert!(
            shown.contains("bucket") && shown.contains(HIDDEN),
            "{shown}"
        );
        let r = e.redacted();
        assert_eq!(r.kind, CacheBackend::S3);
        assert_eq!(r.attrs["secret_access_key"], HIDDEN);
        assert_eq!(r.attrs["region"], "eu-west-1");
    }

    #[test]
    fn spec_errors_do_not_quote_credentials() {
        let err =
            CacheEntry::export("type=gha,token=JWTVALUE,mode=all,\"scope=a,b\",ghtoken=GHVALUE")
                .unwrap_err();
        let shown = err.to_string();
        assert!(
            !shown.contains("JWTVALUE") && !shown.contains("GHVALUE"),
            "{shown}"
        );
        assert!(shown.contains("token=<redacted>"), "{shown}");
        assert_eq!(
            err.input,
            "type=gha,token=<redacted>,mode=all,\"scope=a,b\",ghtoken=<redacted>"
        );
        let err = CacheEntry::import("type=s3,session_token=SESSIONX,session_token=Y").unwrap_err();
        assert!(!err.to_string().contains("SESSIONX"), "{err}");
        assert_eq!(
            redact_spec("type=registry,ref=r/a"),
            "type=registry,ref=r/a"
        );
    }

    #[test]
    fn the_scrubber_takes_values_out_of_daemon_text() {
        let mut gha = CacheEntry::gha("app");
        gha.attrs.insert("token".into(), "abc".into());
        let scrub = Scrubber::of([&s3_with_secret(), &gha]);
        assert_eq!(
            scrub.text("failed: key SECRETVALUE for AKIDVALUE (abc)"),
            "failed: key <redacted> for <redacted> (abc)"
        );
        let mut update = StatusUpdate::default();
        update.vertices.push(crate::progress::status::VertexUpdate {
            name: "x SECRETVALUE".into(),
            error: Some("bad SECRETVALUE".into()),
            ..Default::default()
        });
        scrub.update(&mut update);
        assert_eq!(update.vertices[0].name, "x <redacted>");
        assert_eq!(update.vertices[0].error.as_deref(), Some("bad <redacted>"));
        assert!(Scrubber::of([&CacheEntry::registry("r")]).values.is_empty());
    }
}
