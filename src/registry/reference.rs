//! Repository references (`127.0.0.1:5000/app-cache`,
//! `https://registry.example.com/team/app-cache`), tags and digests,
//! validated before they go into a request path.
//!
//! The host rule is the docker CLI's (distribution/reference `splitDockerDomain`):
//! the first component names a registry when it has a `.` or a `:` or is
//! `localhost`; otherwise the repository lives on Docker Hub. The scheme
//! follows the docker daemon's defaults: HTTPS, except for loopback hosts,
//! which are plain HTTP unless written `https://`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::digest::Digest;

use super::RegistryError;

/// Docker Hub's name in references and in the Docker config.
const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's distribution API answers.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// How a registry is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP: loopback registries, or `http://HOST/REPO`.
    Http,
    /// HTTPS, verified against the system's roots (and a CA file if given).
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A repository in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    scheme: Scheme,
    /// `host[:port]`, as the user wrote it (`docker.io` for Docker Hub).
    host: String,
    /// `app-cache`, `team/app-cache`.
    path: String,
}

impl Repository {
    /// `host[:port]`, as the user wrote it: the name the Docker config
    /// keys credentials by.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository path without the host, e.g. `team/app-cache`, as
    /// it goes into `/v2/<path>/...`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// HTTP or HTTPS.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `scheme://host[:port]` the API calls go to (Docker Hub's API host
    /// differs from its name).
    pub fn origin(&self) -> String {
        let host = if self.host == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.host
        };
        format!("{}://{host}", self.scheme.as_str())
    }
}

impl fmt::Display for Repository {
    /// `host/path`, with the scheme only where it is not the default for
    /// the host, so the text parses back to the same repository.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme != default_scheme(&self.host) {
            write!(f, "{}://", self.scheme.as_str())?;
        }
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
        let (explicit, rest) = if let Some(rest) = input.strip_prefix("https://") {
            (Some(Scheme::Https), rest)
        } else if let Some(rest) = input.strip_prefix("http://") {
            (Some(Scheme::Http), rest)
        } else {
            (None, input)
        };
        let rest = rest.trim_end_matches('/');
        let (host, mut path) = match rest.split_once('/') {
            Some((first, path)) if explicit.is_some() || names_registry(first) => {
                (first.to_string(), path.to_string())
            }
            _ if explicit.is_some() => return Err(invalid("a URL needs HOST/REPOSITORY")),
            _ => (DOCKER_HUB.to_string(), rest.to_string()),
        };
        if !valid_host(&host) {
            return Err(invalid("the registry must be HOST[:PORT]"));
        }
        if path.contains('@') || path.rsplit('/').next().is_some_and(|c| c.contains(':')) {
            return Err(invalid(
                "give the repository without :TAG or @DIGEST (every tag is inspected)",
            ));
        }
        validate_path(&path).map_err(invalid)?;
        // Docker Hub's official images live under `library/`.
        if host == DOCKER_HUB && !path.contains('/') {
            path = format!("library/{path}");
        }
        let scheme = explicit.unwrap_or_else(|| default_scheme(&host));
        Ok(Repository { scheme, host, path })
    }
}

/// Plain HTTP on loopback, as the docker daemon treats it; HTTPS elsewhere.
fn default_scheme(host: &str) -> Scheme {
    if is_loopback(host) {
        Scheme::Http
    } else {
        Scheme::Https
    }
}

/// Letters, digits, `.`, `-`, a `:port`, or a bracketed IPv6 address: no
/// user info or anything else that would change where a URL points.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

fn names_registry(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Loopback registries are plain HTTP, as the docker daemon treats them
/// (`127.0.0.0/8` is an insecure registry by default).
pub(super) fn is_loopback(host: &str) -> bool {
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

/// Distribution's tag grammar: `[\w][\w.-]{0,127}`.
pub(super) fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(&bytes[0])
        && bytes.iter().all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// An image name as `-t` takes it (`host/repo[:tag]`, Docker Hub short
/// names included): its repository and tag, `latest` when it has none. A
/// name pinned by `@digest` is refused: nothing can be published there.
///
/// # Errors
///
/// [`RegistryError::InvalidReference`] when `name` has an `@DIGEST`, an invalid tag or an
/// invalid repository.
pub fn image_name(name: &str) -> Result<(Repository, String), RegistryError> {
    let invalid = |reason: &str| RegistryError::InvalidReference {
        input: name.to_string(),
        reason: reason.to_string(),
    };
    if name.contains('@') {
        return Err(invalid("a name with @DIGEST cannot be tagged"));
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], &name[last_slash + i + 1..]),
        None => (name, "latest"),
    };
    if !valid_tag(tag) {
        return Err(invalid("the tag must be 1 to 128 letters, digits, _ . -"));
    }
    Ok((repo.parse()?, tag.to_string()))
}

/// Whether `tag` is a valid tag (distribution's grammar).
pub fn is_valid_tag(tag: &str) -> bool {
    valid_tag(tag)
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
    fn image_names_split_into_repository_and_tag() {
        let (repo, tag) = image_name("127.0.0.1:5000/team/app:1.2").unwrap();
        assert_eq!(
            (repo.to_string().as_str(), tag.as_str()),
            ("127.0.0.1:5000/team/app", "1.2")
        );
        let (repo, tag) = image_name("localhost:5000/app").unwrap();
        assert_eq!((repo.path(), tag.as_str()), ("app", "latest"));
        let (repo, tag) = image_name("busybox:musl").unwrap();
        assert_eq!(
            (repo.host(), repo.path(), tag.as_str()),
            ("docker.io", "library/busybox", "musl")
        );
        for bad in ["r:5000/app@sha256:00", "r:5000/app:", "r:5000/App:1"] {
            assert!(image_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repositories() {
        use Scheme::{Http, Https};
        let ok = [
            (
                "127.0.0.1:5000/app-cache",
                Http,
                "127.0.0.1:5000",
                "app-cache",
            ),
            ("localhost/a/b", Http, "localhost", "a/b"),
            ("localhost:5000/a_b.c-d/", Http, "localhost:5000", "a_b.c-d"),
            ("[::1]:5000/x", Http, "[::1]:5000", "x"),
            (
                "http://reg.lan:5000/team/app",
                Http,
                "reg.lan:5000",
                "team/app",
            ),
            ("http://reg/app", Http, "reg", "app"),
            ("https://127.0.0.1:5000/x", Https, "127.0.0.1:5000", "x"),
            ("ghcr.io/o/app", Https, "ghcr.io", "o/app"),
            ("reg.lan:5000/x", Https, "reg.lan:5000", "x"),
            ("app", Https, "docker.io", "library/app"),
            ("team/app", Https, "docker.io", "team/app"),
        ];
        for (input, scheme, host, path) in ok {
            let repo: Repository = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (repo.scheme(), repo.host(), repo.path()),
                (scheme, host, path),
                "{input}"
            );
        }
        let hub: Repository = "docker.io/team/app".parse().unwrap();
        assert_eq!(hub.origin(), "https://registry-1.docker.io");
        let local: Repository = "127.0.0.1:5000/x".parse().unwrap();
        assert_eq!(local.origin(), "http://127.0.0.1:5000");
        assert_eq!(local.to_string(), "127.0.0.1:5000/x");
        for shown in ["https://127.0.0.1:5000/x", "http://reg.lan/x", "reg.lan/x"] {
            let repo: Repository = shown.parse().unwrap();
            assert_eq!(repo.to_string(), shown);
        }
    }

    #[test]
    fn bad_repositories() {
        let invalid = [
            "127.0.0.1:5000/App",
            "127.0.0.1:5000/app:tag",
            "127.0.0.1:5000/app@sha256:ab",
            "127.0.0.1:5000/-app",
            "127.0.0.1:5000/a//b",
            "http://reg.lan",
            "https://reg.lan/",
            "https://user@reg.lan/x",
            "https:///x",
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
    fn tags() {
        for tag in ["latest", "build1", "v1.2-rc_3", "_x"] {
            assert!(valid_tag(tag), "{tag}");
        }
        for tag in ["", ".x", "-x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(!valid_tag(tag), "{tag}");
        }
    }
}
