//! A minimal OCI distribution client for registry cache housekeeping: list a
//! repository's tags, read manifests and configs, sum what each tag keeps
//! alive, and delete old BuildKit cache manifests by digest.
//!
//! Transport: HTTPS verified with rustls against the system's roots
//! (`SSL_CERT_FILE`/`SSL_CERT_DIR` replace them) plus an optional CA file,
//! or plain HTTP for loopback registries and `http://HOST/REPO`; pooled
//! HTTP/1.1 connections (hyper-util). Authentication: whatever the
//! registry's 401 asks for, with the Docker config's credentials (inline
//! `auths` or a credential helper, the lookup the build's session uses):
//! Basic auth, or the token flow with the scopes the operation needs
//! (`pull` to list, `pull,push,delete` to prune), anonymous when the config
//! has nothing for the host.
//!
//! - [`reference`](mod@reference): repository, tag and digest syntax; scheme.
//! - [`manifest`]: manifest shapes, cache vs image, creation times.
//! - [`inventory`]: every tag of a repository with the blobs it references.
//! - [`prune`]: which cache manifests to delete, and what that frees.
//! - [`time`]: RFC 3339 timestamps and `--older-than` durations.
//!
//! Deleting a manifest frees no disk by itself: the registry's garbage
//! collection removes blobs no manifest references any more. A registry
//! that does not allow deletes answers 405, reported as
//! [`RegistryError::DeleteDisabled`].

mod auth;
mod client;
mod http;
pub mod inventory;
pub mod manifest;
pub mod prune;
mod publish;
pub mod reference;
pub mod time;
mod token;
pub(crate) mod transport;

#[cfg(test)]
mod wire_tests;

pub use crate::connect::TlsCheck;
pub use crate::credentials::DockerConfig;
pub use crate::digest::Digest;
pub use client::{Registry, RegistryOptions};
pub use inventory::{Inventory, TagEntry, TagKind, TagUsage, Usage};
pub use prune::{Deletion, Failure, KeepReason, Kept, PruneOutcome, PrunePlan, PruneRule};
pub use publish::RawManifest;
pub use reference::{Repository, Scheme, image_name, is_valid_tag};
pub use time::{Timestamp, format_age, parse_duration};

/// Why a registry operation failed, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Fix the argument.
    #[error("invalid repository {input:?}: {reason}")]
    InvalidReference {
        /// The repository string, as the user gave it.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Start the registry, or fix the host:port.
    #[error(
        "cannot reach the registry at {host}: {source} (is it running and listening on that host:port?)"
    )]
    Unreachable {
        /// The registry's (or token service's) `host[:port]`, as written.
        host: String,
        /// The error from opening the TCP connection.
        #[source]
        source: std::io::Error,
    },
    /// Connecting, or one request from sending to the end of its body, took
    /// longer than [`RegistryOptions`] allows.
    #[error("the registry at {host} did not answer within {secs}s while {what}")]
    Timeout {
        /// The registry's (or token service's) `host[:port]`.
        host: String,
        /// The operation (`connecting`, `listing the tags of ...`).
        what: String,
        /// The limit that ran out, in whole seconds.
        secs: u64,
    },
    /// The HTTP/1.1 exchange failed after the connection opened.
    #[error("the connection to the registry at {host} broke while {what}: {detail}")]
    Connection {
        /// The registry's (or token service's) `host[:port]`.
        host: String,
        /// The operation, for the message.
        what: String,
        /// The transport's error.
        detail: String,
    },
    /// The repository, tag or manifest does not exist (any more).
    #[error("{what}: not found in the registry at {host} ({message})")]
    NotFound {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The operation, for the message.
        what: String,
        /// The registry's error (`CODE: message` from its error body).
        message: String,
    },
    /// The registry wants credentials the Docker config does not have, or
    /// refused the ones it has.
    #[error("{what}: {}", denied(host, *status, message, *credentials))]
    Denied {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The operation, for the message.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The registry's error (`CODE: message` from its error body).
        message: String,
        /// Whether credentials from the Docker config were sent.
        credentials: bool,
    },
    /// The Docker config could not be read, or its credential helper failed.
    #[error("cannot get registry credentials: {0}")]
    Credentials(#[source] crate::credentials::CredentialsError),
    /// An HTTPS registry sends clients to a plain-HTTP token service.
    #[error(
        "the registry at {host} hands out tokens at {realm}, over plain HTTP: \
         not sending its credentials there unencrypted (ask its operator for an https realm)"
    )]
    InsecureRealm {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The token service's URL, as the registry named it.
        realm: String,
    },
    /// The TLS handshake failed: an unknown CA, a certificate for another
    /// name, an expired one.
    #[error("cannot connect to the registry at {host}: TLS handshake failed: {detail}")]
    Tls {
        /// The registry's (or token service's) `host[:port]`.
        host: String,
        /// The rustls error, explained when it is a known certificate problem.
        detail: String,
        /// The setting to check, when the failure points at one.
        check: Option<TlsCheck>,
    },
    /// The trust roots could not be loaded: the CA file, `SSL_CERT_FILE`.
    #[error("cannot set up TLS for the registry at {host}: {detail}")]
    TlsSetup {
        /// The registry's (or token service's) `host[:port]`.
        host: String,
        /// What is wrong with the CA certificates.
        detail: String,
    },
    /// The registry operator must enable deletes.
    #[error(
        "the registry at {host} does not allow deletes (HTTP 405: {message}): deletes are \
         disabled in its configuration; whoever runs it can enable them with \
         `storage: delete: enabled: true` (REGISTRY_STORAGE_DELETE_ENABLED=true) and a restart"
    )]
    DeleteDisabled {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The registry's error (`UNSUPPORTED: …`).
        message: String,
    },
    /// Any other status that is not a success.
    #[error("{what}: the registry at {host} answered HTTP {status}: {message}")]
    Status {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The operation, for the message.
        what: String,
        /// The HTTP status code.
        status: u16,
        /// The registry's error (`CODE: message` from its error body), or
        /// the start of the body.
        message: String,
    },
    /// The answer broke the protocol: a body over its limit, JSON that does
    /// not parse, a digest that does not match the content, a bad `Link`.
    #[error("{what}: unexpected answer from the registry at {host}: {detail}")]
    BadResponse {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The operation, for the message.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// Someone pushed or retagged between planning and deleting: plan again.
    #[error(
        "the repository changed after the prune plan was made ({detail}); nothing was deleted: run prune again"
    )]
    Changed {
        /// The first change found: a new tag, or a tag that moved.
        detail: String,
    },
}

/// The advice for a refused request: log in, or check the login.
fn denied(host: &str, status: u16, message: &str, credentials: bool) -> String {
    if credentials {
        format!(
            "the registry at {host} refused the credentials the Docker config has for it \
             (HTTP {status}: {message}): check them with `docker login {host}` and that \
             the account may do this"
        )
    } else {
        format!(
            "the registry at {host} needs credentials (HTTP {status}: {message}) and the \
             Docker config has none for it: log in with `docker login {host}`"
        )
    }
}
