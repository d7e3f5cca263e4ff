//! `FileSync.DiffCopy`: uploading local sources (the build context, the Dockerfile, named
//! contexts) to the daemon. We are the gRPC server and the fsutil *sender*; the daemon is
//! the receiver. Follows buildkit `session/filesync` and tonistiigi/fsutil's sender.
//!
//! - `request`: the call's metadata (`dir-name`, patterns, followpaths);
//! - `patterns` (+ `compile`), `filter`, `followlinks`, `glob`: which paths are
//!   sent, as moby/patternmatcher and fsutil decide it; [`Scope`] and `ignorefile`: what
//!   the client never sends, whatever the daemon asks for;
//! - `walk`, `files`, `stat`: the listing of a directory or of in-memory files, in the
//!   receiver's order, with Go-compatible stats;
//! - `sender`: the packet protocol on the stream.

mod compile;
mod files;
mod filter;
mod followlinks;
#[cfg(test)]
mod fuzz;
mod glob;
pub(crate) mod ignorefile;
mod patterns;
mod request;
mod sender;
pub(crate) mod stat;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::fsutil::types::Packet;
use crate::proto::moby::filesync::v1::file_sync_server::FileSync;

pub use filter::FilterError;
use request::DiffCopyRequest;

/// What a local source name (`context`, `dockerfile`, a named context) serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSource {
    /// A directory on disk (symlinks to it are resolved once per transfer), of which the
    /// daemon sees only what the [`Scope`] allows.
    Dir(PathBuf, Scope),
    /// In-memory top-level regular files, for a Dockerfile from stdin or a rewritten one:
    /// mode 0644, and an mtime derived from the content (stable for the same content).
    Files(BTreeMap<String, Bytes>),
}

/// The part of a directory the daemon may ever see, applied on top of whatever it asks for.
/// The frontend itself asks with the `.dockerignore` patterns and for the Dockerfile alone;
/// a daemon that asks for more (a compromised shared builder) still gets no more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Paths (include patterns) outside which nothing is listed; `None`: the whole tree.
    pub only: Option<Vec<String>>,
    /// Exclude patterns (`.dockerignore` syntax, `!` exceptions included).
    pub exclude: Vec<String>,
}

impl Scope {
    /// Everything in the directory.
    pub fn all() -> Scope {
        Scope::default()
    }

    /// Only these top-level names (a Dockerfile and its ignore file).
    pub fn only(names: impl IntoIterator<Item = String>) -> Scope {
        Scope {
            only: Some(names.into_iter().collect()),
            exclude: Vec::new(),
        }
    }

    /// All but what these exclude patterns match.
    pub fn excluding(patterns: Vec<String>) -> Scope {
        Scope {
            only: None,
            exclude: patterns,
        }
    }

    /// Whether its patterns compile (the transfer would fail on them otherwise).
    pub fn check(&self) -> Result<(), FilterError> {
        let only = self.only.as_deref().unwrap_or_default();
        filter::Filter::new(only, &self.exclude, None).map(|_| ())
    }

    fn is_all(&self) -> bool {
        self.only.is_none() && self.exclude.is_empty()
    }
}

/// Serves the registered local sources to the daemon.
#[derive(Clone)]
pub struct FileSyncService {
    /// Each source with its own counters: the frontend re-sends the small
    /// `dockerfile` source in full on every build, so only per-source numbers
    /// tell whether the context upload was incremental.
    sources: Arc<HashMap<String, (Arc<LocalSource>, TransferStats)>>,
}

impl FileSyncService {
    pub fn new(sources: HashMap<String, LocalSource>) -> Self {
        let sources = sources
            .into_iter()
            .map(|(k, v)| (k, (Arc::new(v), TransferStats::default())))
            .collect();
        Self {
            sources: Arc::new(sources),
        }
    }

    /// Counters of every transfer of source `name` (shared with clones).
    pub fn stats(&self, name: &str) -> TransferStats {
        self.sources
            .get(name)
            .map(|(_, stats)| stats.clone())
            .unwrap_or_default()
    }
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;
    type TarStreamStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let req = DiffCopyRequest::from_metadata(request.metadata());
        // NotFound lets the daemon try the other sessions of the build.
        let Some((source, stats)) = self.sources.get(&req.dir_name).cloned() else {
            return Err(FileSyncError::UnknownDir(req.dir_name).into());
        };
        tracing::debug!(
            dir = %req.dir_name,
            include = ?req.include,
            exclude = ?req.exclude,
            follow = ?req.follow_paths,
            "filesync DiffCopy"
        );
        let stream = sender::start(source, req, request.into_inner(), stats);
        Ok(Response::new(stream))
    }

    async fn tar_stream(
        &self,
        _request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented(
            "TarStream is not supported; use DiffCopy",
        ))
    }
}

/// Transfer counters, shared between clones.
#[derive(Debug, Clone, Default)]
pub struct TransferStats(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    stats: AtomicU64,
    files: AtomicU64,
    /// The first file that changed while it was sent, which failed the transfer.
    changed: std::sync::Mutex<Option<std::path::PathBuf>>,
}

impl TransferStats {
    /// File content bytes sent in `DATA` packets.
    pub fn bytes_sent(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// Entries listed (`STAT` packets, not counting the terminating empty one).
    pub fn stats_sent(&self) -> u64 {
        self.0.stats.load(Ordering::Relaxed)
    }

    /// Requested files answered (content and EOF sent).
    pub fn files_sent(&self) -> u64 {
        self.0.files.load(Ordering::Relaxed)
    }

    pub(crate) fn add_bytes(&self, n: u64) {
        self.0.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn add_stat(&self) {
        self.0.stats.fetch_add(1, Ordering::Relaxed);
    }

    fn add_file(&self) {
        self.0.files.fetch_add(1, Ordering::Relaxed);
    }

    /// The file that changed while it was sent, if one did: the transfer failed on it.
    pub fn changed(&self) -> Option<std::path::PathBuf> {
        let changed = self.0.changed.lock();
        changed
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_changed(&self, path: &std::path::Path) {
        let mut changed = self
            .0
            .changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        changed.get_or_insert_with(|| path.to_path_buf());
    }
}

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FileSyncError {
    #[error("no access allowed to dir {0:?}")]
    UnknownDir(String),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("failed to resolve followpaths: {0}")]
    FollowPaths(#[source] io::Error),
    #[error("failed to walk {path}: {source}")]
    Walk { path: String, source: io::Error },
    #[error("{0:?}: file name is not valid UTF-8")]
    NonUtf8Path(String),
    #[error("invalid in-memory file name {0:?}")]
    InvalidFileName(String),
    #[error("invalid file id {0}")]
    InvalidFileId(u32),
    #[error("failed to read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error(
        "context file {} changed while it was being sent: build again once nothing writes to \
         it, or leave it out with .dockerignore",
        .0.display()
    )]
    Changed(std::path::PathBuf),
    #[error("error from receiver: {0}")]
    Receiver(String),
    #[error("receiver closed the stream without FIN")]
    ReceiverClosed,
    #[error("receiving from the daemon failed: {0}")]
    Transport(String),
    #[error("transfer cancelled")]
    Cancelled,
    #[error("internal error: {0}")]
    Internal(String),
}

impl FileSyncError {
    /// Failures on our side, which the receiver should hear about in an `ERR` packet.
    fn is_local(&self) -> bool {
        !matches!(
            self,
            Self::Receiver(_) | Self::ReceiverClosed | Self::Transport(_) | Self::Cancelled
        )
    }
}

impl From<FileSyncError> for Status {
    fn from(err: FileSyncError) -> Self {
        match err {
            FileSyncError::UnknownDir(_) => Status::not_found(err.to_string()),
            FileSyncError::Cancelled => Status::cancelled(err.to_string()),
            // Go returns plain errors, which gRPC reports as Unknown.
            _ => Status::unknown(err.to_string()),
        }
    }
}
