//! A minimal OCI distribution client for registry cache housekeeping: list a
//! repository's tags, read manifests and configs, sum what each tag keeps
//! alive, and delete old BuildKit cache manifests by digest.
//!
//! Scope: plain HTTP to loopback registries (and any registry written as
//! `http://HOST/REPO`), anonymous access, and the anonymous Bearer token
//! flow of the distribution token spec when the realm is plain HTTP too.
//! HTTPS is refused with a clear error rather than half supported.
//!
//! - [`reference`]: repository, tag and digest syntax.
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
    InvalidReference { input: String, reason: String },
    /// Not something this client does (yet).
    #[error("{0}")]
    Unsupported(String),
    /// Start the registry, or fix the host:port.
    #[error(
        "cannot reach the registry at {host}: {source} (is it running and listening on that host:port?)"
    )]
    Unreachable {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the registry at {host} did not answer within {secs}s while {what}")]
    Timeout {
        host: String,
        what: String,
        secs: u64,
    },
    #[error("the connection to the registry at {host} broke while {what}: {detail}")]
    Connection {
        host: String,
        what: String,
        detail: String,
    },
    /// The repository, tag or manifest does not exist (any more).
    #[error("{what}: not found in the registry at {host} ({message})")]
    NotFound {
        host: String,
        what: String,
        message: String,
    },
    /// Credentials would be needed; only anonymous access is supported.
    #[error(
        "{what}: the registry at {host} refused anonymous access (HTTP {status}: {message}); \
         `rbuild cache` does not send credentials yet"
    )]
    Denied {
        host: String,
        what: String,
        status: u16,
        message: String,
    },
    /// The registry operator must enable deletes.
    #[error(
        "the registry at {host} does not allow deletes (HTTP 405): enable them with \
         `storage: delete: enabled: true` (REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it"
    )]
    DeleteDisabled { host: String },
    #[error("{what}: the registry at {host} answered HTTP {status}: {message}")]
    Status {
        host: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("{what}: unexpected answer from the registry at {host}: {detail}")]
    BadResponse {
        host: String,
        what: String,
        detail: String,
    },
    /// Someone pushed or retagged between planning and deleting: plan again.
    #[error(
        "the repository changed after the prune plan was made ({detail}); nothing was deleted: run prune again"
    )]
    Changed { detail: String },
}
