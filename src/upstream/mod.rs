//! Upstream identities: what a fetching step's source is *now*, looked up
//! on this machine before the solve, so a step's cache key can follow its
//! upstream exactly instead of a time window.
//!
//! - a git repository and ref: the commit (or tag object) the ref points
//!   at, from `git ls-remote` ([`git`]);
//! - an HTTP(S) file: its `ETag`, else `Last-Modified` and
//!   `Content-Length`, from a `HEAD` request ([`http`]).
//!
//! Lookups run concurrently, each bounded by a timeout. A lookup that fails
//! says why in a [`LookupError`]; the caller falls back to a time window.
//! Nothing here prints a URL's credentials: [`Source`]'s `Display` and
//! every error text go through [`shown_url`].

pub mod git;
pub mod http;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures::StreamExt;

/// How long one lookup may take by default: long enough for a slow remote,
/// short enough that an offline runner starts its build promptly.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many lookups run at once (a Dockerfile rarely has more sources).
const PARALLEL: usize = 16;

/// Where a step fetches from, as rbuild can look it up before the build.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A git repository: `git clone [--branch REF] URL`, a `git fetch` or
    /// `git pull` of it, or a `git checkout REF` after the clone.
    Git {
        /// The repository URL as the step uses it (`$VAR`s expanded).
        url: String,
        /// The branch or tag; `None` is the remote's `HEAD`.
        reference: Option<String>,
    },
    /// A file downloaded with `curl`, `wget` or `ADD`.
    Http {
        /// The URL as the step uses it.
        url: String,
    },
}

impl Source {
    /// The URL as written (with any credentials it holds: never print it;
    /// `Display` shows it redacted).
    pub fn url(&self) -> &str {
        match self {
            Source::Git { url, .. } | Source::Http { url } => url,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Git { url, reference } => {
                write!(f, "git {}", shown_url(url))?;
                match reference {
                    Some(r) => write!(f, " {r}"),
                    None => f.write_str(" HEAD"),
                }
            }
            Source::Http { url } => f.write_str(&shown_url(url)),
        }
    }
}

// The URL may hold a token: Debug shows what Display shows.
impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({self})")
    }
}

/// What a source is now: a commit id, or an HTTP validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The object id the git ref points at (40 or 64 hex digits).
    Commit(String),
    /// The `ETag` the server sent (quotes and weak prefix kept).
    ETag(String),
    /// No `ETag`: `Last-Modified`, and `Content-Length` when sent.
    Modified {
        /// The `Last-Modified` header as sent.
        last_modified: String,
        /// The `Content-Length` header, if any.
        length: Option<u64>,
    },
}

impl Identity {
    /// The exact text that goes into the cache key (hashed there).
    pub fn key_text(&self) -> String {
        match self {
            Identity::Commit(id) => format!("commit {id}"),
            Identity::ETag(tag) => format!("etag {tag}"),
            Identity::Modified {
                last_modified,
                length,
            } => match length {
                Some(n) => format!("modified {last_modified}; {n} bytes"),
                None => format!("modified {last_modified}"),
            },
        }
    }

    /// A short form for progress marks: 12 hex digits of a commit, the tag.
    pub fn short(&self) -> String {
        match self {
            Identity::Commit(id) => id.chars().take(12).collect(),
            Identity::ETag(tag) => tag.clone(),
            Identity::Modified { last_modified, .. } => last_modified.clone(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key_text())
    }
}

/// Why a source could not be looked up. Every text is free of the URL's
/// credentials.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// No answer within the timeout.
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
    /// Refused, no route, a name that does not resolve, a TLS failure.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The remote wants credentials this machine does not have.
    #[error("needs credentials: {0}")]
    Credentials(String),
    /// The repository, ref or file does not exist there.
    #[error("not found: {0}")]
    NotFound(String),
    /// The server answers without `ETag` or `Last-Modified`.
    #[error("the server sends neither ETag nor Last-Modified")]
    NoValidator,
    /// `git` is not installed here.
    #[error("git is not installed on this machine (not on PATH)")]
    NoGit,
    /// Anything else, in the tool's or server's words.
    #[error("{0}")]
    Failed(String),
}

/// Each source's lookup, by source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved(BTreeMap<Source, Result<Identity, LookupError>>);

impl Resolved {
    /// The lookup of `source`; `None` when it was not looked up.
    pub fn get(&self, source: &Source) -> Option<&Result<Identity, LookupError>> {
        self.0.get(source)
    }

    /// Records a lookup (tests and programs that resolve on their own).
    pub fn insert(&mut self, source: Source, lookup: Result<Identity, LookupError>) {
        self.0.insert(source, lookup);
    }

    /// Whether nothing was looked up.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every source with its lookup.
    pub fn iter(&self) -> impl Iterator<Item = (&Source, &Result<Identity, LookupError>)> {
        self.0.iter()
    }
}

/// Looks up every source (duplicates once), concurrently, each within
/// `timeout`.
pub async fn resolve(sources: impl IntoIterator<Item = Source>, timeout: Duration) -> Resolved {
    let mut unique: Vec<Source> = sources.into_iter().collect();
    unique.sort();
    unique.dedup();
    if unique.is_empty() {
        return Resolved::default();
    }
    let client = http::Client::new(timeout);
    let client = &client;
    let looked: Vec<(Source, Result<Identity, LookupError>)> =
        futures::stream::iter(unique.into_iter().map(|source| async move {
            let work = async {
                match &source {
                    Source::Git { url, reference } => git::lookup(url, reference.as_deref()).await,
                    Source::Http { url } => client.lookup(url).await,
                }
            };
            let result = match tokio::time::timeout(timeout, work).await {
                Ok(r) => r,
                Err(_) => Err(LookupError::Timeout(timeout)),
            };
            match &result {
                Ok(id) => tracing::debug!(%source, %id, "upstream looked up"),
                Err(e) => tracing::debug!(%source, error = %e, "upstream lookup failed"),
            }
            (source, result)
        }))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    Resolved(looked.into_iter().collect())
}

/// `url` for display: credentials (`user:token@`) become `***@`, and a
/// query string (signed URLs carry tokens there) becomes `?…`.
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        // scp-like `git@host:path` names a user, not a secret.
        Some((user, host)) if scheme.is_none() && !user.contains(':') => format!("{user}@{host}"),
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((p, _)) => format!("{p}?…"),
        None => path.to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{authority}{path}"),
        None => format!("{authority}{path}"),
    }
}

/// A URL in a step or command line, compiled once: every fetching step
/// that a warning, `check` or a report shows is redacted with it.
static URL_PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    regex::Regex::new(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\x22]+").expect("valid regex")
});

/// `text` (a step, a command line) with every URL in it shown as
/// [`shown_url`] shows one: no `user:token@`, no query string.
pub fn redact_urls(text: &str) -> String {
    URL_PATTERN
        .replace_all(text, |c: &regex::Captures<'_>| shown_url(&c[0]))
        .into_owned()
}

/// Shorter fragments are not searched for in messages (a one-letter user
/// name would blank every such letter); the whole URL still is.
const MIN_SCRUBBED: usize = 3;

/// `text` with every secret part of `url` (its userinfo and query) taken
/// out, for messages a tool wrote about it.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &shown_url(url));
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && url.contains("://")
        && userinfo.len() >= MIN_SCRUBBED
    {
        out = out.replace(userinfo, "***");
        if let Some((_, secret)) = userinfo.split_once(':')
            && secret.len() >= MIN_SCRUBBED
        {
            out = out.replace(secret, "***");
        }
    }
    if let Some((_, query)) = url.split_once('?')
        && query.len() >= MIN_SCRUBBED
    {
        out = out.replace(query, "…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials() {
        for (url, shown) in [
            ("https://github.com/org/lib", "https://github.com/org/lib"),
            (
                "https://x-access-token:ghs_abc@github.com/org/lib.git",
                "https://***@github.com/org/lib.git",
            ),
            ("https://tok@host/x", "https://***@host/x"),
            (
                "https://host/f.tgz?X-Amz-Signature=abc",
                "https://host/f.tgz?…",
            ),
            ("git@github.com:org/lib.git", "git@github.com:org/lib.git"),
            (
                "git://127.0.0.1:9418/repo.git",
                "git://127.0.0.1:9418/repo.git",
            ),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
        let url = "https://user:s3cret@host/r.git?sig=zzz";
        let said = scrub(
            &format!("fatal: unable to access '{url}': 403; s3cret"),
            url,
        );
        assert!(!said.contains("s3cret") && !said.contains("zzz"), "{said}");
        assert!(said.contains("https://***@host/r.git?…"), "{said}");
        let git = Source::Git {
            url: "https://u:tok@h/r".into(),
            reference: Some("main".into()),
        };
        assert_eq!(git.to_string(), "git https://***@h/r main");
        assert_eq!(format!("{git:?}"), "Source(git https://***@h/r main)");
        assert_eq!(
            redact_urls("RUN git clone \"https://x:ghp_1@h/r\" && curl https://f/x?sig=2 -o a"),
            "RUN git clone \"https://***@h/r\" && curl https://f/x?… -o a"
        );
    }

    #[test]
    fn identities_have_a_key_and_a_short_form() {
        let c = Identity::Commit("4ee0f5a0b7d944f14a70a71caf152dbad8c29699".into());
        assert_eq!(c.short(), "4ee0f5a0b7d9");
        assert_eq!(
            c.key_text(),
            "commit 4ee0f5a0b7d944f14a70a71caf152dbad8c29699"
        );
        let m = Identity::Modified {
            last_modified: "Tue, 01 Jul 2025 10:00:00 GMT".into(),
            length: Some(12),
        };
        assert_eq!(
            m.key_text(),
            "modified Tue, 01 Jul 2025 10:00:00 GMT; 12 bytes"
        );
    }
}
