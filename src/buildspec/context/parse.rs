//! buildx's `--build-context` value forms, read into a [`NamedContext`].

use std::path::PathBuf;
use std::str::FromStr;

use super::{NamedContext, OciLayoutRef};
use crate::session::content::Digest;
use crate::spec::SpecError;

/// The field name of named-context spec errors.
const FIELD: &str = "build-context";

impl FromStr for NamedContext {
    type Err = SpecError;

    /// buildx's forms: `docker-image://REF`, `oci-layout://DIR[:TAG][@DIGEST]`,
    /// a git URL (`git://...`, `git@HOST:REPO`, `https://HOST/REPO.git#REF`),
    /// an `http(s)://` tarball URL, or else a directory.
    fn from_str(value: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError::new(FIELD, value, reason);
        if value.is_empty() {
            return Err(bad("empty value: give a directory or a URL"));
        }
        if let Some(reference) = value.strip_prefix("docker-image://") {
            if reference.is_empty() || reference.contains(char::is_whitespace) {
                return Err(bad("expected docker-image://NAME[:TAG|@DIGEST]"));
            }
            return Ok(NamedContext::Image(reference.to_string()));
        }
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            return oci_layout(rest).map(NamedContext::OciLayout).map_err(bad);
        }
        if let Some(rest) = ["git://", "http://", "https://", "git@"]
            .iter()
            .find_map(|p| value.strip_prefix(p))
        {
            if rest.is_empty() {
                return Err(bad("the URL has no host"));
            }
            return Ok(NamedContext::Remote(value.to_string()));
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(bad(&format!(
                "unknown scheme {scheme}://: use a directory, docker-image://REF, \
                 oci-layout://DIR[:TAG|@DIGEST], a git URL or an http(s):// URL"
            )));
        }
        Ok(NamedContext::Dir(PathBuf::from(value)))
    }
}

/// `DIR[:TAG][@DIGEST]` (buildx util/ocilayout `Parse`, with the tag and
/// digest patterns anchored so a `:` or `@` inside a path stays in it).
fn oci_layout(rest: &str) -> Result<OciLayoutRef, &'static str> {
    let mut dir = rest;
    let mut digest = None;
    if let Some((before, after)) = rest.rsplit_once('@')
        && looks_like_digest(after)
    {
        let parsed: Digest = after
            .parse()
            .map_err(|_| "the digest must be sha256: and 64 lowercase hex digits")?;
        digest = Some(parsed.to_string());
        dir = before;
    }
    let mut tag = None;
    if let Some((before, after)) = dir.rsplit_once(':')
        && is_tag(after)
    {
        tag = Some(after.to_string());
        dir = before;
    }
    if dir.is_empty() {
        return Err("expected oci-layout://DIR[:TAG|@DIGEST]");
    }
    Ok(OciLayoutRef {
        dir: PathBuf::from(dir),
        tag,
        digest,
    })
}

/// `ALGORITHM:...` after an `@`: meant as a digest (whether it is a usable
/// one is checked after), so a mistyped one is an error rather than part
/// of the directory name.
fn looks_like_digest(s: &str) -> bool {
    let Some((alg, rest)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    });
    alg_ok && !rest.is_empty() && !rest.contains('/')
}

/// A tag: a word character, then up to 127 of word characters, `.`, `-`.
fn is_tag(s: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    s.len() <= 128 && s.starts_with(word) && s.chars().all(|c| word(c) || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NamedContext, SpecError> {
        s.parse()
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn the_forms_buildx_takes() {
        assert_eq!(parse("../lib").unwrap(), NamedContext::Dir("../lib".into()));
        assert_eq!(
            parse("docker-image://alpine:3").unwrap(),
            NamedContext::Image("alpine:3".into())
        );
        for url in [
            "git://h/r.git#main",
            "git@github.com:o/r.git",
            "https://h/r.git#v1:sub",
            "http://h/ctx.tar.gz",
        ] {
            assert_eq!(parse(url).unwrap(), NamedContext::Remote(url.into()));
        }
    }

    #[test]
    fn oci_layout_refs() {
        let layout = |dir: &str, tag: Option<&str>, digest: Option<&str>| {
            NamedContext::OciLayout(OciLayoutRef {
                dir: dir.into(),
                tag: tag.map(Into::into),
                digest: digest.map(Into::into),
            })
        };
        assert_eq!(
            parse("oci-layout://./out").unwrap(),
            layout("./out", None, None)
        );
        assert_eq!(
            parse("oci-layout:///l:v1.2").unwrap(),
            layout("/l", Some("v1.2"), None)
        );
        assert_eq!(
            parse(&format!("oci-layout:///l@{D}")).unwrap(),
            layout("/l", None, Some(D))
        );
        assert_eq!(
            parse(&format!("oci-layout:///l:v1@{D}")).unwrap(),
            layout("/l", Some("v1"), Some(D))
        );
        // A colon inside the path is not a tag.
        assert_eq!(
            parse("oci-layout://a:b/c").unwrap(),
            layout("a:b/c", None, None)
        );
    }

    #[test]
    fn bad_forms_say_what_is_expected() {
        for (bad, says) in [
            ("", "empty"),
            ("docker-image://", "docker-image://NAME"),
            ("oci-layout://", "oci-layout://DIR"),
            ("oci-layout://:v1", "oci-layout://DIR"),
            (
                "oci-layout:///l@sha256:ABCDEF0123456789ABCDEF0123456789",
                "64 lowercase hex",
            ),
            ("oci-layout:///l@sha256:0123", "64 lowercase hex"),
            ("s3://bucket/x", "unknown scheme s3://"),
            ("https://", "no host"),
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.field, "build-context");
            assert!(err.reason.contains(says), "{bad}: {err}");
        }
    }
}
