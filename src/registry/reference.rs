//! Repository references (`127.0.0.1:5000/app-cache`), tags and digests,
//! validated before they go into a request path.
//!
//! The host rule is the docker CLI's (distribution/reference `splitDockerDomain`):
//! the first component names a registry when it has a `.` or a `:` or is
//! `localhost`; otherwise the repository lives on Docker Hub.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Serialize;

use super::RegistryError;

/// A repository in a registry rbuild can talk to over plain HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// `host[:port]`, as the user wrote it (the HTTP `Host` header).
    host: String,
    /// `app-cache`, `team/app-cache`.
    path: String,
}

impl Repository {
    /// `host[:port]`, as the user wrote it; also the HTTP `Host` header.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository path without the host, e.g. `team/app-cache`, as
    /// it goes into `/v2/<path>/...`.
    pub fn path(&self) -> &str {
        &self.path
    }
}

/// `host:port` to connect to; plain HTTP defaults to port 80.
pub(super) fn with_default_port(authority: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

impl FromStr for Repository {
    type Err = RegistryError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| RegistryError::InvalidReference {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.starts_with("https://") {
            return Err(https_unsupported(input));
        }
        let (explicit_http, rest) = match input.strip_prefix("http://") {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let rest = rest.trim_end_matches('/');
        let (host, path) = match rest.split_once('/') {
            Some((first, path)) if names_registry(first) => (first.to_string(), path.to_string()),
            _ if explicit_http => return Err(invalid("http:// needs HOST/REPOSITORY")),
            _ => ("docker.io".to_string(), rest.to_string()),
        };
        if path.contains('@') || path.rsplit('/').next().is_some_and(|c| c.contains(':')) {
            return Err(invalid(
                "give the repository without :TAG or @DIGEST (every tag is inspected)",
            ));
        }
        validate_path(&path).map_err(invalid)?;
        if !explicit_http && !is_loopback(&host) {
            return Err(https_unsupported(input));
        }
        Ok(Repository { host, path })
    }
}

fn https_unsupported(input: &str) -> RegistryError {
    RegistryError::Unsupported(format!(
        "{input}: HTTPS registries are not supported yet by `rbuild cache`; \
         for a registry that serves plain HTTP write http://HOST[:PORT]/REPOSITORY"
    ))
}

fn names_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Loopback registries are plain HTTP, as the docker daemon treats them
/// (`127.0.0.0/8` is an insecure registry by default).
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Distribution's path grammar, simplified: lowercase alphanumerics joined by
/// single `.`, `_`, `__` or runs of `-`, components separated by `/`.
fn validate_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > 255 {
        return Err("the repository path must be 1 to 255 characters");
    }
    for component in path.split('/') {
        let bytes = component.as_bytes();
        let edge_ok =
            |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let inner_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(b));
        if !edge_ok(bytes.first()) || !edge_ok(bytes.last()) || !inner_ok {
            return Err("path components are lowercase letters, digits and . _ - between them");
        }
    }
    Ok(())
}

/// A content digest (`sha256:…`) whose characters are safe in a URL path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The whole digest, `algorithm:encoded`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256:0123456789ab`, for tables.
    pub fn short(&self) -> &str {
        let end = self.0.find(':').map_or(0, |i| i + 1) + 12;
        self.0.get(..end).unwrap_or(&self.0)
    }

    pub(super) fn sha256_of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(bytes);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Digest(format!("sha256:{hex}"))
    }
}

impl TryFrom<String> for Digest {
    type Error = String;

    /// OCI image-spec digest grammar: `algorithm:encoded`.
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.len() <= 256
            && s.split_once(':').is_some_and(|(alg, enc)| {
                !alg.is_empty()
                    && !enc.is_empty()
                    && alg.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    })
                    && enc
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
            });
        if ok {
            Ok(Digest(s))
        } else {
            Err(format!("invalid digest {s:?}"))
        }
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Distribution's tag grammar: `[\w][\w.-]{0,127}`.
pub(super) fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(&bytes[0])
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// What a manifest request names: a tag or a digest, both path-safe.
#[derive(Clone, Debug)]
pub(super) enum ManifestRef<'a> {
    Tag(&'a str),
    Digest(&'a Digest),
}

impl fmt::Display for ManifestRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Tag(t) => f.write_str(t),
            ManifestRef::Digest(d) => f.write_str(d.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
        let ok = [
            ("127.0.0.1:5000/app-cache", "127.0.0.1:5000", "app-cache"),
            ("localhost/a/b", "localhost", "a/b"),
            ("localhost:5000/a_b.c-d/", "localhost:5000", "a_b.c-d"),
            ("[::1]:5000/x", "[::1]:5000", "x"),
            ("http://reg.lan:5000/team/app", "reg.lan:5000", "team/app"),
            ("http://reg.lan/app", "reg.lan", "app"),
        ];
        for (input, host, path) in ok {
            let repo: Repository = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((repo.host(), repo.path()), (host, path), "{input}");
        }
        assert_eq!(with_default_port("[::1]:5000"), "[::1]:5000");
        assert_eq!(with_default_port("reg.lan"), "reg.lan:80");
        assert_eq!(with_default_port("[::1]"), "[::1]:80");
    }

    #[test]
    fn bad_or_unsupported_repositories() {
        let unsupported = [
            "ghcr.io/o/app",
            "app",
            "https://127.0.0.1:5000/x",
            "reg.lan:5000/x",
        ];
        for input in unsupported {
            let err = input.parse::<Repository>().unwrap_err();
            assert!(
                matches!(err, RegistryError::Unsupported(_)),
                "{input}: {err}"
            );
            assert!(err.to_string().contains("http://"), "{err}");
        }
        let invalid = [
            "127.0.0.1:5000/App",
            "127.0.0.1:5000/app:tag",
            "127.0.0.1:5000/app@sha256:ab",
            "127.0.0.1:5000/-app",
            "127.0.0.1:5000/a//b",
            "http://reg.lan",
        ];
        for input in invalid {
            let err = input.parse::<Repository>().unwrap_err();
            assert!(
                matches!(err, RegistryError::InvalidReference { .. }),
                "{input}: {err}"
            );
        }
    }

    #[test]
    fn digests_and_tags() {
        let d = Digest::try_from("sha256:0123456789abcdef0123".to_string()).unwrap();
        assert_eq!(d.short(), "sha256:0123456789ab");
        for bad in [
            "sha256",
            ":ab",
            "sha256:",
            "sha256:../x",
            "SHA:ab",
            "sha256:a/b",
        ] {
            assert!(Digest::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for tag in ["latest", "build1", "v1.2-rc_3", "_x"] {
            assert!(valid_tag(tag), "{tag}");
        }
        for tag in ["", ".x", "-x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(!valid_tag(tag), "{tag}");
        }
    }
}
