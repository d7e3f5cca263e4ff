//! The session content store: containerd's `Content` service over local OCI
//! layout directories, which is how the daemon reads and writes a client-side
//! `type=local` build cache (`--cache-from type=local,src=DIR`,
//! `--cache-to type=local,dest=DIR`).
//!
//! Upstream: buildkit session/content (attachable.go serves a map of stores,
//! caller.go is the daemon's side) and containerd's contentserver, whose
//! replies and error codes the daemon's proxy store expects.
//!
//! - The daemon names the store in every call's `buildkit-attachable-store-id`
//!   metadata: `local:<dir>` for a local cache, `<dir>` being the `dest`/`src`
//!   attr exactly as sent in the `SolveRequest`; `oci:<name>` for an OCI
//!   layout named context, `<name>` being the store name in the frontend's
//!   `oci-layout://<name>@<digest>` (client/solve.go adds the prefix to
//!   `OCIStores`, source/containerimage/ocilayout.go asks for it).
//! - `store`: blobs on disk, verified writes; `write`: the `Write` stream;
//!   `layout`: `index.json` before an import and after an export.

mod layout;
mod store;
mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use prost_types::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::containerd::services::content::v1::content_server::Content;
use crate::proto::containerd::services::content::v1::{
    AbortRequest, DeleteContentRequest, Info, InfoRequest, InfoResponse, ListContentRequest,
    ListContentResponse, ListStatusesRequest, ListStatusesResponse, ReadContentRequest,
    ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest, UpdateResponse,
    WriteContentRequest, WriteContentResponse,
};

pub use layout::{LayoutError, cache_manifest, image_digest, import_digest, update_index};
use store::{BlobReader, LocalStore, join_error};
pub use store::{ContentError, Digest};
use write::Ingests;

/// The request metadata naming the store (buildkit session/content
/// `GRPCHeaderID`); the first value counts.
pub const STORE_ID_HEADER: &str = "buildkit-attachable-store-id";
/// Store ids of local cache directories: `local:` + the `dest`/`src` attr
/// (buildkit cache/remotecache/local `contentStoreIDPrefix`).
pub const LOCAL_STORE_PREFIX: &str = "local:";
/// Store ids of OCI layouts read as named contexts: `oci:` + the store name.
pub const OCI_STORE_PREFIX: &str = "oci:";
/// The methods to advertise in the session header, as Go's server does.
pub const METHODS: &[&str] = &[
    "Info",
    "Update",
    "List",
    "Delete",
    "Read",
    "Status",
    "ListStatuses",
    "Write",
    "Abort",
];

/// Read answers carry at most this much (containerd's contentserver uses
/// the same 1 MiB buffer).
const READ_CHUNK: usize = 1 << 20;

/// The directories served, by store id.
#[derive(Clone, Debug, Default)]
pub struct ContentStores {
    stores: HashMap<String, PathBuf>,
}

impl ContentStores {
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `dir` under `id` (e.g. `export` for an oci exporter with
    /// `tar=false`).
    pub fn insert(&mut self, id: impl Into<String>, dir: impl Into<PathBuf>) {
        self.stores.insert(id.into(), dir.into());
    }

    /// Serves a local cache directory under `local:<attr>` and returns that
    /// id. `attr` must be the `dest`/`src` value sent to the daemon,
    /// unchanged: the daemon only echoes it back.
    pub fn insert_local(&mut self, attr: &str) -> String {
        let id = format!("{LOCAL_STORE_PREFIX}{attr}");
        self.insert(id.clone(), attr);
        id
    }

    /// Serves the OCI layout `dir` under `oci:<name>`, `name` being the
    /// store name the frontend is given.
    pub fn insert_oci(&mut self, name: &str, dir: impl Into<PathBuf>) {
        self.insert(format!("{OCI_STORE_PREFIX}{name}"), dir);
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }

    #[cfg(test)]
    pub fn get(&self, id: &str) -> Option<&std::path::Path> {
        self.stores.get(id).map(PathBuf::as_path)
    }
}

/// The `Content` service for the session.
#[derive(Clone, Debug)]
pub struct ContentService {
    stores: Arc<HashMap<String, LocalStore>>,
    ingests: Ingests,
}

impl ContentService {
    pub fn new(stores: ContentStores) -> Self {
        let stores = stores
            .stores
            .into_iter()
            .map(|(id, dir)| (id, LocalStore::new(dir)))
            .collect();
        ContentService {
            stores: Arc::new(stores),
            ingests: Ingests::default(),
        }
    }

    /// The store a call names (attachable.go `choose`).
    fn choose<T>(&self, request: &Request<T>) -> Result<(String, LocalStore), Status> {
        let value = request.metadata().get(STORE_ID_HEADER).ok_or_else(|| {
            Status::invalid_argument(format!("request lacks metadata {STORE_ID_HEADER:?}"))
        })?;
        // Paths may be UTF-8 beyond ASCII: take the raw header bytes.
        let id = String::from_utf8_lossy(value.as_encoded_bytes()).into_owned();
        match self.stores.get(&id) {
            Some(store) => Ok((id, store.clone())),
            None => Err(Status::not_found(format!("unknown store {id}"))),
        }
    }
}

/// Maps errors to the codes containerd's errdefs.ToGRPC would give them.
fn to_status(err: ContentError) -> Status {
    let msg = err.to_string();
    match err {
        ContentError::InvalidDigest(_) | ContentError::InvalidArgument(_) => {
            Status::invalid_argument(msg)
        }
        ContentError::NotFound(_) | ContentError::UnknownRef(_) => Status::not_found(msg),
        ContentError::AlreadyExists(_) => Status::already_exists(msg),
        ContentError::SizeMismatch { .. }
        | ContentError::DigestMismatch { .. }
        | ContentError::FailedPrecondition(_) => Status::failed_precondition(msg),
        ContentError::OffsetMismatch { .. } | ContentError::ReadPastEnd(_) => {
            Status::out_of_range(msg)
        }
        ContentError::Locked(_) => Status::unavailable(msg),
        ContentError::Io(_) => Status::unknown(msg),
    }
}

fn parse_digest(s: &str) -> Result<Digest, Status> {
    s.parse().map_err(to_status)
}

#[tonic::async_trait]
impl Content for ContentService {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let (id, store) = self.choose(&request)?;
        let digest = parse_digest(&request.get_ref().digest)?;
        tracing::debug!(store = id, %digest, "content info");
        let blob = store.info(&digest).await.map_err(to_status)?;
        let time = Some(Timestamp::from(blob.modified));
        Ok(Response::new(InfoResponse {
            info: Some(Info {
                digest: digest.to_string(),
                size: i64::try_from(blob.size).unwrap_or(i64::MAX),
                created_at: time,
                updated_at: time,
                labels: HashMap::new(),
            }),
        }))
    }

    /// A store without labels is immutable (containerd local store with no
    /// label store, which is what buildctl and buildx serve).
    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        self.choose(&request)?;
        Err(to_status(ContentError::FailedPrecondition(
            "update not supported on immutable content store".into(),
        )))
    }

    type ListStream = ReceiverStream<Result<ListContentResponse, Status>>;

    async fn list(
        &self,
        _request: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        Err(Status::unimplemented("listing a session content store"))
    }

    async fn delete(
        &self,
        _request: Request<DeleteContentRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented(
            "deleting from a session content store",
        ))
    }

    type ReadStream = ReceiverStream<Result<ReadContentResponse, Status>>;

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let (id, store) = self.choose(&request)?;
        let req = request.into_inner();
        let digest = parse_digest(&req.digest)?;
        let size = store.info(&digest).await.map_err(to_status)?.size;
        let offset = req.offset.max(0).unsigned_abs();
        if offset > size {
            return Err(to_status(ContentError::ReadPastEnd(size)));
        }
        // Zero or too large a size reads to the end (contentserver Read).
        let len = match req.size.max(0).unsigned_abs() {
            0 => size - offset,
            n => n.min(size - offset),
        };
        tracing::debug!(store = id, %digest, offset, len, "content read");
        let path = store.blob_path(&digest);
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            if let Err(e) = send_blob(path, offset, len, &tx).await {
                let _ = tx.send(Err(to_status(e))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (id, _) = self.choose(&request)?;
        let reference = &request.get_ref().r#ref;
        match self.ingests.status(&id, reference) {
            Some(status) => Ok(Response::new(StatusResponse {
                status: Some(status),
            })),
            None => Err(to_status(ContentError::UnknownRef(reference.clone()))),
        }
    }

    async fn list_statuses(
        &self,
        _request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        Err(Status::unimplemented(
            "listing writes of a session content store",
        ))
    }

    type WriteStream = ReceiverStream<Result<WriteContentResponse, Status>>;

    async fn write(
        &self,
        request: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let (id, store) = self.choose(&request)?;
        let stream = write::start(store, id, self.ingests.clone(), request.into_inner());
        Ok(Response::new(stream))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let (id, _) = self.choose(&request)?;
        self.ingests
            .abort(&id, &request.get_ref().r#ref)
            .map_err(to_status)?;
        Ok(Response::new(()))
    }
}

/// Streams `len` bytes of the blob at `path` from `offset`, one chunk per
/// message, reading on the blocking pool.
async fn send_blob(
    path: PathBuf,
    offset: u64,
    len: u64,
    tx: &mpsc::Sender<Result<ReadContentResponse, Status>>,
) -> Result<(), ContentError> {
    let mut reader = tokio::task::spawn_blocking(move || BlobReader::open(&path, offset, len))
        .await
        .map_err(join_error)??;
    // Offsets in the answers count from the requested offset, as
    // contentserver's readResponseWriter sends them.
    let mut at = 0u64;
    loop {
        let (back, chunk) = tokio::task::spawn_blocking(move || {
            let chunk = reader.next_chunk(READ_CHUNK);
            (reader, chunk)
        })
        .await
        .map_err(join_error)?;
        reader = back;
        let Some(data) = chunk? else {
            return Ok(());
        };
        let n = data.len() as u64;
        let msg = ReadContentResponse {
            offset: i64::try_from(at).unwrap_or(i64::MAX),
            data,
        };
        if tx.send(Ok(msg)).await.is_err() {
            // The reader went away: it had what it wanted.
            return Ok(());
        }
        at += n;
    }
}
