//! A minimal OCI distribution client for registry cache housekeeping: list a
//! repository's tags, read manifests and configs, sum what each tag keeps
//! alive, and delete old BuildKit cache manifests by digest.
//!
//! Scope: plain HTTP to loopback registries (and any registry written as
//! `http://HOST/REPO`), anonymous access, and the anonymous Bearer token
//! flow of the distribution token spec when the realm is plain HTTP too.
//! HTTPS is refused with a clear error rather than half supported.
//!
//! - [`reference`](mod@reference): repository, tag and digest syntax.
//! - [`manifest`]: manifest shapes, cache vs image, creation times.
//! - [`inventory`]: every tag of a repository with the blobs it references.
//! - [`prune`]: which cache manifests to delete, and what that frees.
//! - [`time`]: RFC 3339 timestamps and `--older-than` durations.
//!
//! Deleting a manifest frees no disk by itself: the registry's garbage
//! collection removes blobs no manifest references any more.

mod auth;
mod client;
mod http;
pub mod inventory;
pub mod manifest;
pub mod prune;
pub mod reference;
pub mod time;

#[cfg(test)]
mod fake;

pub use client::{Registry, RegistryOptions};
pub use inventory::{Inventory, TagEntry, TagKind, TagUsage, Usage};
pub use prune::{Deletion, Failure, KeepReason, Kept, PruneOutcome, PrunePlan, PruneRule};
pub use reference::{Digest, Repository};
pub use time::{Timestamp, format_age, parse_duration};

/// Why a registry operation failed, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Fix the argument.
    #[error("invalid repository {input:?}: {reason}")]
    InvalidReference {
        /// The repository string, as the user gave it.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Not something this client does (yet).
    #[error("{0}")]
    Unsupported(String),
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
    /// Credentials would be needed; only anonymous access is supported.
    #[error(
        "{what}: the registry at {host} refused anonymous access (HTTP {status}: {message}); \
         `rbuild cache` does not send credentials yet"
    )]
    Denied {
        /// The repository's registry, `host[:port]`.
        host: String,
        /// The operation, for the message.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The registry's error (`CODE: message` from its error body).
        message: String,
    },
    /// The registry operator must enable deletes.
    #[error(
        "the registry at {host} does not allow deletes (HTTP 405): enable them with \
         `storage: delete: enabled: true` (REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it"
    )]
    DeleteDisabled {
        /// The repository's registry, `host[:port]`.
        host: String,
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
