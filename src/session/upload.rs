//! The session upload service: byte streams the daemon pulls once, by URL.
//!
//! A build context that arrives as a tar archive on a stream (`rbuild -`
//! with a tarball on stdin) is not a directory the fsutil sender can walk.
//! Instead the frontend is told the context is the URL
//! `http://buildkit-session/<id>`; the daemon's HTTP source turns its GET of
//! that URL into `Upload.Pull` on the build's session, naming the URL's path
//! in the `urlpath` metadata, and we answer with the stream's bytes. The
//! frontend then unpacks it as it would a tarball fetched from a server.
//!
//! Upstream: buildkit session/upload (upload.go is the daemon's side,
//! uploadprovider/provider.go the Go client's) and source/http/transport.go.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::filesync::TransferStats;
use crate::proto::moby::upload::v1::BytesMessage;
use crate::proto::moby::upload::v1::upload_server::{Upload, UploadServer};

/// The method names to list in the session header
/// (`/moby.upload.v1.Upload/<m>`).
pub const METHODS: &[&str] = &["Pull"];

/// What the daemon's HTTP source resolves through the session instead of
/// the network; an upload's id follows.
pub const URL_PREFIX: &str = "http://buildkit-session/";

/// The request metadata holding the URL's path (upload.go `keyPath`).
const URL_PATH_HEADER: &str = "urlpath";

/// Bytes per message, as large as a filesync `DATA` packet: far below the
/// 4 MiB an older daemon accepts in one message.
const CHUNK: usize = 128 * 1024;

/// A tar archive (plain, or compressed with gzip, bzip2 or xz) that is the
/// build context, read from a stream when the daemon asks for it.
///
/// The stream is read once: clones share it, so only the first build that
/// uses the archive gets its bytes, and a second one fails on the daemon.
#[derive(Clone)]
pub struct ContextArchive {
    reader: Arc<Mutex<Option<Box<dyn Read + Send>>>>,
}

impl ContextArchive {
    /// An archive read from `reader` (a file, a pipe, stdin).
    pub fn new(reader: impl Read + Send + 'static) -> ContextArchive {
        ContextArchive {
            reader: Arc::new(Mutex::new(Some(Box::new(reader)))),
        }
    }

    /// The stream, unless it was handed out already.
    pub(crate) fn take(&self) -> Option<Box<dyn Read + Send>> {
        // A panic while holding the lock cannot leave the Option half-made.
        match self.reader.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }
}

impl fmt::Debug for ContextArchive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContextArchive")
    }
}

/// The uploads one session offers, by id.
#[derive(Clone, Debug, Default)]
pub struct UploadService {
    uploads: Arc<HashMap<String, ContextArchive>>,
    stats: TransferStats,
}

impl UploadService {
    /// Serves `archive` under `id`: the daemon reaches it as
    /// [`URL_PREFIX`]`id`.
    pub fn new(uploads: HashMap<String, ContextArchive>) -> UploadService {
        UploadService {
            uploads: Arc::new(uploads),
            stats: TransferStats::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.uploads.is_empty()
    }

    /// Bytes sent so far, over all uploads.
    pub fn stats(&self) -> TransferStats {
        self.stats.clone()
    }

    pub fn into_server(self) -> UploadServer<UploadService> {
        UploadServer::new(self)
    }
}

/// The upload id in a URL path: its last segment (provider.go takes
/// `path.Base`).
fn upload_id(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Upload for UploadService {
    type PullStream = ReceiverStream<Result<BytesMessage, Status>>;

    async fn pull(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let path = request
            .metadata()
            .get(URL_PATH_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let id = upload_id(path);
        let Some(archive) = self.uploads.get(id) else {
            return Err(Status::not_found(format!(
                "no upload {id:?} in this session"
            )));
        };
        let Some(reader) = archive.take() else {
            return Err(Status::failed_precondition(
                "the context archive was sent already: its stream can be read only once",
            ));
        };
        tracing::debug!(id, "sending the context archive");
        let (tx, rx) = mpsc::channel(4);
        let stats = self.stats.clone();
        // Reading a pipe blocks: it runs on the blocking pool, and the
        // bounded channel keeps it from reading ahead of the daemon.
        tokio::task::spawn_blocking(move || send_stream(reader, &tx, &stats));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Copies `reader` into `tx`, one chunk per message; a read error ends the
/// call with that error, which the daemon reports for the context.
fn send_stream(
    mut reader: Box<dyn Read + Send>,
    tx: &mpsc::Sender<Result<BytesMessage, Status>>,
    stats: &TransferStats,
) {
    let mut total = 0u64;
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let status = Status::data_loss(format!("cannot read the context archive: {e}"));
                let _ = tx.blocking_send(Err(status));
                return;
            }
        };
        buf.truncate(n);
        let msg = BytesMessage {
            data: Bytes::from(buf),
        };
        if tx.blocking_send(Ok(msg)).is_err() {
            // The daemon ended the call: it has what it wanted.
            tracing::debug!(total, "the daemon stopped reading the context archive");
            return;
        }
        total += n as u64;
        stats.add_bytes(n as u64);
    }
    tracing::debug!(total, "context archive sent");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_last_path_segment() {
        assert_eq!(upload_id("/abc"), "abc");
        assert_eq!(upload_id("abc"), "abc");
        assert_eq!(upload_id("/x/abc/"), "abc");
        assert_eq!(upload_id(""), "");
    }

    #[tokio::test]
    async fn an_archive_is_streamed_once_in_order() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 7)).map(|i| (i % 251) as u8).collect();
        let archive = ContextArchive::new(std::io::Cursor::new(data.clone()));
        let clone = archive.clone();
        let (tx, mut rx) = mpsc::channel(4);
        let stats = TransferStats::default();
        let reader = archive.take().expect("first take");
        let task = {
            let stats = stats.clone();
            tokio::task::spawn_blocking(move || send_stream(reader, &tx, &stats))
        };
        let mut got = Vec::new();
        while let Some(msg) = rx.recv().await {
            got.extend_from_slice(&msg.expect("chunk").data);
        }
        task.await.expect("sender");
        assert_eq!(got, data);
        assert_eq!(stats.bytes_sent(), data.len() as u64);
        // Clones share the one stream.
        assert!(clone.take().is_none());
    }

    #[tokio::test]
    async fn a_read_error_ends_the_stream_with_it() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("pipe broke"))
            }
        }
        let (tx, mut rx) = mpsc::channel(4);
        let stats = TransferStats::default();
        tokio::task::spawn_blocking(move || send_stream(Box::new(Broken), &tx, &stats))
            .await
            .expect("sender");
        let err = rx.recv().await.expect("a message").expect_err("an error");
        assert!(err.message().contains("pipe broke"), "{err}");
    }
}
