//! `FileSend.DiffCopy`: exports the daemon pushes to the client (`--output`, `--load`).
//! The daemon is the gRPC client; we serve. Follows buildkit `session/filesync/filesync.go`
//! (`fsSyncAttachable.DiffCopy`) and `diffcopy.go`, and fsutil's `receive.go` for `local`.
//!
//! One RPC carries two protocols, chosen by the exporter behind the call (metadata
//! `buildkit-attachable-exporter-id`, an index into `SolveRequest.Exporters`, absent = 0):
//! tar/oci/docker send `BytesMessage` chunks of one file; `local` sends fsutil `Packet`s,
//! with us as the fsutil *receiver*. The proto says `BytesMessage` for both, so the service
//! uses a raw codec and decodes per target.
//!
//! Nothing reaches its destination while the build runs: files and trees are staged beside it
//! and moved into place by [`Outputs::commit`] once the solve has succeeded. Stdout and
//! [`StreamSink`]s are the exceptions; they cannot be taken back.
//!
//! - `service`: the hand-written gRPC service and its raw codec;
//! - `file`: tar/oci/docker into a temp file, stdout or a [`StreamSink`];
//! - `receiver`: the fsutil packet protocol of `local`; `validate`: what an entry may be and
//!   where it may go; `disk`: creating it without following symlinks;
//! - `outputs`, `merge`: what arrived, and moving it into place or discarding it.

mod disk;
mod file;
mod merge;
mod outputs;
mod receiver;
mod service;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{KeyAndValueRef, MetadataMap};
use tonic::{Request, Response, Status, Streaming};

pub use outputs::Outputs;
use outputs::Shared;

/// The method names to list in the session header (`/moby.filesync.v1.FileSend/<m>`).
pub const METHODS: &[&str] = &["DiffCopy"];

/// Selects the exporter a call belongs to (upstream `keyExporterID`).
const EXPORTER_ID_KEY: &str = "buildkit-attachable-exporter-id";
/// Prefix of the exporter's response metadata on a call (upstream `keyExporterMetaPrefix`).
const EXPORTER_MD_PREFIX: &str = "exporter-md-";
/// Sent by the `local` exporter only in `mode=delete` (upstream exporter/local/export.go;
/// session/filesync/filesync.go names it `keyExporterMultiPlatformTransfer`). See
/// [`ExportTarget::Dir`].
const MULTI_PLATFORM_KEY: &str = "buildkit-exporter-multi-platform";

/// Where one exporter's output goes.
#[derive(Clone)]
pub enum ExportTarget {
    /// tar/oci/docker: one file; written to a temp file beside `path`, renamed into place
    /// only by [`Outputs::commit`] after the whole build succeeded.
    File(PathBuf),
    /// tar/oci/docker to stdout (`dest=-`): streamed as it arrives. This cannot be made
    /// atomic: a build that fails mid-export leaves a truncated stream behind.
    Stdout,
    /// local exporter: a directory tree received with the fsutil protocol into a temp dir
    /// beside `dest`, merged into `dest` by [`Outputs::commit`] (existing files outside the
    /// export are kept; exported paths replace existing ones). We never ask for upstream's
    /// `mode=delete`, so its `buildkit-exporter-multi-platform` header changes nothing here.
    /// Several concurrent streams (multi-platform with `platform-split`) share one temp dir.
    Dir(PathBuf),
    /// Chunks of a tar/docker stream handed to a consumer (used for `--load` into a Docker
    /// Engine); `md` gets the call's `exporter-md-*` metadata first (e.g.
    /// `containerimage.config.digest`) so the consumer may answer "skip" (AlreadyExists,
    /// which oci/docker exporters treat as success and then send nothing).
    Stream(Arc<dyn StreamSink>),
}

impl ExportTarget {
    /// How messages name this target.
    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Dir(path) => format!("{}/", path.display()),
            Self::Stdout => "stdout".to_owned(),
            Self::Stream(_) => "the image consumer".to_owned(),
        }
    }
}

impl fmt::Debug for ExportTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Stdout => f.write_str("Stdout"),
            Self::Dir(path) => f.debug_tuple("Dir").field(path).finish(),
            Self::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// A consumer of a streamed export, e.g. a Docker Engine image load.
#[tonic::async_trait]
pub trait StreamSink: Send + Sync {
    /// Called once the call arrives, with its `exporter-md-*` metadata (prefix stripped).
    /// `None` = skip: the daemon is told AlreadyExists and sends nothing.
    async fn open(
        &self,
        md: &BTreeMap<String, String>,
    ) -> Result<Option<tokio::sync::mpsc::Sender<Bytes>>, String>;
    /// After the last chunk (the sender has been dropped): waits for the consumer's verdict.
    /// `ok` is false when the daemon's stream broke off.
    async fn close(&self, ok: bool) -> Result<(), String>;
}

/// Serves `FileSend.DiffCopy` for the exporters of one solve.
#[derive(Clone)]
pub struct FileSendService {
    shared: Arc<Shared>,
}

impl FileSendService {
    /// `targets` by exporter index; the [`Outputs`] handle commits or discards what arrives.
    pub fn new(targets: HashMap<u32, ExportTarget>) -> (Self, Outputs) {
        let shared = Arc::new(Shared::new(targets));
        (
            Self {
                shared: Arc::clone(&shared),
            },
            Outputs::new(shared),
        )
    }

    async fn diff_copy(
        &self,
        request: Request<Streaming<Bytes>>,
    ) -> Result<Response<Outbound>, Status> {
        let id = exporter_id(request.metadata())?;
        let (target, guard) = self.shared.begin(id)?;
        tracing::debug!(exporter = id, target = ?target, "FileSend DiffCopy");
        let md = exporter_md(request.metadata());
        self.shared.record_metadata(id, &md);
        let multi_platform = request.metadata().contains_key(MULTI_PLATFORM_KEY);
        let inbound = request.into_inner();
        let outbound = match target {
            ExportTarget::File(dest) => file::receive_file(&dest, inbound, guard).await?,
            ExportTarget::Stdout => file::receive_stdout(inbound, guard).await?,
            ExportTarget::Stream(sink) => file::receive_stream(&*sink, &md, inbound, guard).await?,
            ExportTarget::Dir(dest) => {
                if multi_platform {
                    // Only upstream's delete mode sends it; we never ask for that mode.
                    tracing::debug!(exporter = id, "multi-platform local export: merging");
                }
                match self.shared.staging_dir(id, &dest).await {
                    Ok(root) => receiver::start(inbound, root, dest, guard),
                    Err(err) => {
                        guard.fail(&err);
                        return Err(err.into());
                    }
                }
            }
        };
        Ok(Response::new(outbound))
    }
}

/// The response stream of every call: fsutil `REQ`/`FIN` packets for `local`, nothing else.
type Outbound = ReceiverStream<Result<Bytes, Status>>;

/// A response that ends as soon as the handler returns OK.
fn no_messages() -> Outbound {
    let (_, rx) = tokio::sync::mpsc::channel(1);
    ReceiverStream::new(rx)
}

/// Upstream's `chooser` reads an absent key as 0 (daemons before v0.13 send none).
fn exporter_id(md: &MetadataMap) -> Result<u32, FileSendError> {
    let Some(value) = md.get(EXPORTER_ID_KEY) else {
        return Ok(0);
    };
    let text = value.to_str().unwrap_or_default();
    text.trim()
        .parse()
        .map_err(|_| FileSendError::InvalidExporterId(text.to_owned()))
}

/// `exporter-md-<k>` values by `<k>`; repeated keys are joined with `,` as upstream does.
fn exporter_md(md: &MetadataMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for entry in md.iter() {
        let KeyAndValueRef::Ascii(key, value) = entry else {
            continue;
        };
        let key = key.as_str();
        let Some(name) = key.strip_prefix(EXPORTER_MD_PREFIX) else {
            continue;
        };
        let Ok(value) = value.to_str() else {
            tracing::debug!(key, "skipping non-ASCII exporter metadata");
            continue;
        };
        out.entry(name.to_owned())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    out
}

/// Why an export failed or could not be committed.
#[derive(Debug, thiserror::Error)]
pub enum FileSendError {
    #[error("exporter {0} is not one of this build's outputs")]
    UnknownExporter(u32),
    #[error("invalid exporter id {0:?} from the daemon")]
    InvalidExporterId(String),
    #[error("exporter {0} sent its output a second time")]
    Repeated(u32),
    #[error("the build's outputs were already committed or discarded")]
    Closed,
    #[error("cannot write {}: directory {} does not exist", path.display(), parent.display())]
    MissingParent { path: PathBuf, parent: PathBuf },
    #[error("cannot write {}: it is a directory", .0.display())]
    DestIsDir(PathBuf),
    #[error("cannot export into {}: it exists and is not a directory", .0.display())]
    DestNotDir(PathBuf),
    #[error("failed to write {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("refused entry {path:?} of the export to {}: {reason}", dest.display())]
    InvalidEntry {
        dest: PathBuf,
        path: String,
        reason: String,
    },
    #[error("invalid export stream for {}: {reason}", dest.display())]
    Protocol { dest: PathBuf, reason: String },
    #[error("error from the daemon: {0}")]
    Daemon(String),
    #[error("receiving the export from the daemon failed: {0}")]
    Transport(String),
    /// The consumer skipped the export (the daemon takes it as success).
    #[error("target already exists")]
    AlreadyExists,
    #[error("the export consumer failed: {0}")]
    Consumer(String),
    #[error("the export to {0} never arrived")]
    Missing(String),
    #[error("the export to {target} failed: {reason}")]
    Failed { target: String, reason: String },
    #[error("the export to {0} has not finished")]
    Unfinished(String),
    #[error("failed to move the export into {}: {source}", path.display())]
    Commit { path: PathBuf, source: io::Error },
    #[error("internal error: {0}")]
    Internal(String),
}

impl FileSendError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    /// The failure, when it happened on this machine rather than on the
    /// daemon or the connection.
    fn local(&self) -> Option<LocalFailure> {
        let (path, kind, message) = match self {
            Self::Io { path, source } | Self::Commit { path, source } => {
                (path, source.kind(), source.to_string())
            }
            Self::MissingParent { path, .. }
            | Self::DestIsDir(path)
            | Self::DestNotDir(path)
            | Self::InvalidEntry { dest: path, .. } => {
                (path, io::ErrorKind::Other, self.to_string())
            }
            _ => return None,
        };
        Some(LocalFailure {
            path: path.clone(),
            kind,
            message,
        })
    }
}

/// An export that could not be written here: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFailure {
    /// The file or directory being written.
    pub path: PathBuf,
    /// The I/O error's kind (`Other` for a refused entry).
    pub kind: io::ErrorKind,
    /// What went wrong.
    pub message: String,
}

impl From<FileSendError> for Status {
    fn from(err: FileSendError) -> Self {
        match err {
            FileSendError::UnknownExporter(_) => Status::not_found(err.to_string()),
            FileSendError::InvalidExporterId(_) => Status::invalid_argument(err.to_string()),
            FileSendError::AlreadyExists => Status::already_exists(err.to_string()),
            // Go handlers return plain errors, which gRPC reports as Unknown.
            _ => Status::unknown(err.to_string()),
        }
    }
}
