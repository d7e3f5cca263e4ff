//! Why a build did not produce its result, by what the caller can do about
//! it: fix the input, fix the Dockerfile step, look at the daemon or the
//! network, or free local disk. Messages name no CLI flag; a CLI adds its
//! own hints where it maps a variant to a flag.

use std::path::PathBuf;

use crate::buildspec::InvalidBuild;
use crate::connect::ConnectError;
use crate::progress::placement::Skipped;
use crate::session::SessionError;
use crate::spec::SpecError;

/// A failed build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The build description is wrong; nothing was sent to the daemon.
    #[error(transparent)]
    Invalid(#[from] InvalidBuild),
    /// A step of the build failed (a RUN exited non-zero, a COPY source is
    /// missing, ...): the step, its Dockerfile lines and its last log lines.
    #[error("{}", .0.message)]
    Step(Box<StepFailure>),
    /// The daemon failed the build outside any one step (frontend errors,
    /// exporter or push failures).
    #[error("{message}")]
    Daemon {
        /// The daemon's message.
        message: String,
    },
    /// The daemon has no cache backend of this type: Docker Engine's
    /// built-in BuildKit has no `s3` or `azblob`.
    #[error("{}", missing_cache_backend(backend))]
    MissingCacheBackend {
        /// The backend's name (`s3`).
        backend: String,
    },
    /// A cache export failed, and failed the build because its entry does
    /// not say `ignore-error=true`. The daemon may have exported the
    /// image outputs already; files on this machine are not written.
    #[error("cache export to {target} failed: {message}")]
    CacheExport {
        /// Where the cache was going ([`CacheEntry::target`](crate::cache::CacheEntry::target)).
        target: String,
        /// The daemon's reason.
        message: String,
    },
    /// The daemon could not push an image to its registry.
    #[error("pushing {image} failed: {message} ({})", push_hint(image, message))]
    Push {
        /// The image name being pushed.
        image: String,
        /// The daemon's reason.
        message: String,
    },
    /// The session the daemon calls back on could not be opened.
    #[error("cannot start the build session: {0}")]
    Session(#[from] SessionError),
    /// The connection broke while the build ran.
    #[error("lost the connection to BuildKit at {addr}: {detail} (is the daemon still running?)")]
    ConnectionLost {
        /// The daemon's address.
        addr: String,
        /// What the transport said.
        detail: String,
    },
    /// The daemon stopped answering keepalive pings.
    #[error(
        "BuildKit at {addr} stopped answering: no reply to a keepalive ping within {secs}s \
         (the daemon hung or the network to it is down)"
    )]
    DaemonSilent {
        /// The daemon's address.
        addr: String,
        /// How long the ping went unanswered.
        secs: u64,
    },
    /// Writing a result on this machine failed (an export file, a local
    /// cache directory); the previous file at that place is untouched.
    #[error("{what}: {source}")]
    LocalIo {
        /// What was being written, and where.
        what: String,
        /// The cause.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file of a local context changed while it was being sent to the
    /// daemon; the build stopped rather than use a mix of two versions.
    #[error(
        "context file {} changed while it was being sent: build again once nothing writes to \
         it, or leave it out with .dockerignore",
        path.display()
    )]
    ContextChanged {
        /// The file.
        path: PathBuf,
    },
    /// An output could not be written on this machine (a full disk, a
    /// directory that is not writable, an entry refused for its path); the
    /// build failed, and the previous output at that place is untouched.
    #[error(
        "cannot write the output {}: {message}; the previous output there is untouched{}",
        path.display(),
        output_hint(*kind)
    )]
    Output {
        /// The file or directory being written.
        path: PathBuf,
        /// The I/O error's kind (`Other` for a refused entry).
        kind: std::io::ErrorKind,
        /// What went wrong.
        message: String,
    },
    /// A named context comes from another build that failed, produced no
    /// usable image, or cannot run first.
    #[error("named context {name:?} needs the image of build {index}: {reason}")]
    Dependency {
        /// The context's name.
        name: String,
        /// The other build's index in the `build_all` list.
        index: usize,
        /// Why its image is not available.
        reason: String,
    },
    /// The daemon's Dockerfile frontend does not answer the build's
    /// [`Call`](crate::subrequests::Call): Docker Engine 26's built-in
    /// frontend (BuildKit 0.13) has no build checks.
    #[error("{}", call_unsupported(daemon, request, fallback.as_ref()))]
    CallUnsupported {
        /// The daemon: its address, and its BuildKit version when it says.
        daemon: String,
        /// The subrequest, e.g. `frontend.lint`.
        request: String,
        /// The newer frontend image the call was retried with, and why
        /// that failed (e.g. the daemon could not pull it).
        fallback: Option<(String, String)>,
    },
    /// The caller canceled the build; the daemon was told to stop it.
    #[error("build canceled")]
    Canceled,
    /// Every node of a multi-platform build pushed its platforms, but the
    /// index that joins them could not be read together or published.
    #[error("the platforms were built and pushed, but their index was not published: {detail}")]
    Publish {
        /// What failed, naming the registry and the tag.
        detail: String,
    },
    /// A pool had no node to run the build on (see [`PoolError`]).
    #[error(transparent)]
    NoNode(Box<PoolError>),
}

/// Why a pool cannot be made or cannot place a build.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool needs at least one node.
    #[error("the pool has no nodes")]
    Empty,
    /// Two nodes with one name would hash alike.
    #[error("two nodes are named {0:?}; node names must be unique")]
    DuplicateName(String),
    /// The pool's only node cannot be reached (the error a lone daemon gives).
    #[error(transparent)]
    Unreachable(#[from] ConnectError),
    /// The same failure as another build of the call, which carries the
    /// typed error.
    #[error("{0}")]
    Repeated(String),
    /// Every node was tried and none took the build.
    #[error("no node of the pool can take the build (route key {key}): {}", skipped_list(.skipped))]
    NoNode {
        /// The routing key, as shown.
        key: String,
        /// Every node and why it was skipped.
        skipped: Vec<Skipped>,
    },
}

fn call_unsupported(daemon: &str, request: &str, fallback: Option<&(String, String)>) -> String {
    let lacks = format!(
        "the Dockerfile frontend of BuildKit at {daemon} does not answer {request} \
         (build checks need BuildKit 0.14 or later, e.g. Docker Engine 27)"
    );
    match fallback {
        None => format!(
            "{lacks}: use a newer daemon, start the Dockerfile with \
             `# syntax=docker/dockerfile:1.8`, or let the daemon pull a newer frontend"
        ),
        Some((image, why)) => format!(
            "{lacks}, and the newer frontend {image} failed there: {why} \
             (the daemon pulls it itself: it needs to reach that registry, or use a newer daemon)"
        ),
    }
}

fn skipped_list(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                crate::progress::placement::shown(&s.node, &s.address),
                s.reason
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The failing step, as data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepFailure {
    /// The step's name as progress shows it, e.g. `[2/3] RUN make`.
    pub step: Option<String>,
    /// Where the step is in the user's Dockerfile.
    pub location: Option<SourceLocation>,
    /// The step's last log lines (about ten), oldest first.
    pub logs: Vec<String>,
    /// The daemon's message, with Dockerfile line numbers pointing at the
    /// user's file.
    pub message: String,
}

/// A range of lines in a Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLocation {
    /// The file name the frontend saw (`Dockerfile`).
    pub file: String,
    /// First line, 1-based.
    pub line: u32,
    /// Last line, 1-based (equal to `line` for one-line steps).
    pub end_line: u32,
}

/// What to say when a daemon lacks a cache backend, and which daemons
/// have it.
pub(crate) fn missing_cache_backend(backend: &str) -> String {
    let mut text = format!("this daemon has no {backend} cache backend");
    if matches!(backend, "s3" | "azblob") {
        text.push_str(
            ": Docker Engine's built-in BuildKit lacks s3 and azblob; \
             a standalone buildkitd (v0.11 or later) has both",
        );
    }
    text
}

/// What to do about an output that could not be written.
fn output_hint(kind: std::io::ErrorKind) -> &'static str {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            " (free space on that file system, or write the output elsewhere)"
        }
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
            " (check that its directory is writable)"
        }
        _ => "",
    }
}

/// What to check when a push failed: the credentials when the registry
/// refused them, else whether the daemon can reach the registry at all.
fn push_hint(image: &str, message: &str) -> String {
    // Docker's rule: a first component without a dot, a port or
    // `localhost` is a path on Docker Hub.
    let host = match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    };
    let lower = message.to_ascii_lowercase();
    let denied = ["401", "403", "unauthorized", "denied", "forbidden"]
        .iter()
        .any(|w| lower.contains(w));
    if denied {
        format!("check the credentials for {host} and that they may push there")
    } else {
        format!("check that the registry {host} is up and reachable from the daemon")
    }
}

impl From<SpecError> for BuildError {
    fn from(e: SpecError) -> Self {
        BuildError::Invalid(InvalidBuild::Spec(e))
    }
}

impl BuildError {
    /// The failing step, when a step failed.
    pub fn step(&self) -> Option<&StepFailure> {
        match self {
            BuildError::Step(s) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_cannot_be_written_says_what_to_do() {
        let full = BuildError::Output {
            path: PathBuf::from("/mnt/out/app.tar"),
            kind: std::io::ErrorKind::StorageFull,
            message: "No space left on device (os error 28)".into(),
        };
        assert_eq!(
            full.to_string(),
            "cannot write the output /mnt/out/app.tar: No space left on device (os error 28); \
             the previous output there is untouched (free space on that file system, or write \
             the output elsewhere)"
        );
        let refused = BuildError::Output {
            path: PathBuf::from("/out"),
            kind: std::io::ErrorKind::Other,
            message: "refused entry".into(),
        };
        assert!(refused.to_string().ends_with("untouched"), "{refused}");
    }
}
