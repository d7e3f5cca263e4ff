//! The fsutil sender on one `DiffCopy` stream (upstream fsutil `send.go`).
//!
//! Tasks, all ending when the transfer ends:
//! - the walker (blocking) sends one `STAT` per entry, then an empty `STAT`;
//! - the reader reads `REQ`/`FIN`/`ERR` while the listing is still going out, queueing each
//!   requested file for the workers; `FIN` is answered with `FIN` and ends the transfer;
//! - `FILE_WORKERS` blocking workers stream requested files as `DATA` chunks plus an empty
//!   `DATA` (EOF), interleaving by ID like upstream's four senders.
//!
//! Every queue is bounded, so memory does not grow with file size: a worker blocks when the
//! outgoing queue is full. The response stream ends once every task has dropped its sender;
//! if the daemon drops it (cancel), every send fails and each task stops.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::files::walk_files;
use super::walk::{FileRef, Sink, walk_dir};
use super::{DiffCopyRequest, FileSyncError, LocalSource, TransferStats};
use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::fsutil::types::{Packet, Stat};

/// Bytes per `DATA` packet. Upstream sends 32 KiB; larger chunks mean 4x fewer messages.
/// The receiver only writes each chunk out, and the limit that matters is the daemon's gRPC
/// receive limit (4 MiB on older daemons, 16 MiB on newer).
pub const DATA_CHUNK: usize = 128 * 1024;
/// Files streamed at once, as upstream.
const FILE_WORKERS: usize = 4;
/// Outgoing packets buffered ahead of the HTTP/2 stream: at most ~4 MiB of file data.
const OUT_QUEUE: usize = 32;
/// Requested files waiting for a worker (upstream's `sendpipeline` capacity).
const REQUEST_QUEUE: usize = 128;
/// Read past the listed size in pieces this big, to notice files that grew.
const PROBE: usize = 8 * 1024;

type Outgoing = Result<Packet, Status>;

/// Starts the transfer; the returned stream is the `DiffCopy` response.
pub fn start<S>(
    source: Arc<LocalSource>,
    req: DiffCopyRequest,
    inbound: S,
    stats: TransferStats,
) -> ReceiverStream<Outgoing>
where
    S: Stream<Item = Result<Packet, Status>> + Send + Unpin + 'static,
{
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let shared = Arc::new(Shared {
        out,
        files: Mutex::new(Vec::new()),
        stats,
        aborted: AtomicBool::new(false),
    });
    tokio::spawn(drive(shared, source, req, inbound));
    ReceiverStream::new(out_rx)
}

struct Shared {
    out: mpsc::Sender<Outgoing>,
    /// By entry ID: what a `REQ` may fetch; taken on request, so a second `REQ` fails.
    files: Mutex<Vec<Option<FileRef>>>,
    stats: TransferStats,
    aborted: AtomicBool,
}

struct Job {
    id: u32,
    file: FileRef,
}

async fn drive<S>(shared: Arc<Shared>, source: Arc<LocalSource>, req: DiffCopyRequest, inbound: S)
where
    S: Stream<Item = Result<Packet, Status>> + Send + Unpin + 'static,
{
    let (job_tx, job_rx) = mpsc::channel(REQUEST_QUEUE);
    let job_rx = Arc::new(Mutex::new(job_rx));
    let mut tasks = JoinSet::new();
    let walker = Arc::clone(&shared);
    tasks.spawn_blocking(move || list(&walker, &source, &req));
    for _ in 0..FILE_WORKERS {
        let (worker, jobs) = (Arc::clone(&shared), Arc::clone(&job_rx));
        tasks.spawn_blocking(move || serve_files(&worker, &jobs));
    }
    drop(job_rx);

    let Err(mut err) = supervise(read_requests(inbound, &shared, job_tx), &mut tasks).await else {
        return;
    };
    shared.aborted.store(true, Ordering::Relaxed);
    // A task that already failed explains a cancellation better than the cancellation.
    while let Some(joined) = tasks.try_join_next() {
        if let (Ok(Err(task_err)), FileSyncError::Cancelled) = (joined, &err) {
            err = task_err;
        }
    }
    report(&shared, err).await;
    // The error ends the response; the tasks then fail their sends or see `aborted`.
    while tasks.join_next().await.is_some() {}
}

/// Runs the reader and the tasks until all are done or one fails.
async fn supervise(
    reader: impl Future<Output = Result<(), FileSyncError>>,
    tasks: &mut JoinSet<Result<(), FileSyncError>>,
) -> Result<(), FileSyncError> {
    let mut reader = std::pin::pin!(reader);
    let mut reading = true;
    loop {
        tokio::select! {
            result = &mut reader, if reading => {
                reading = false;
                result?;
            }
            Some(joined) = tasks.join_next() => {
                joined.map_err(|e| FileSyncError::Internal(e.to_string()))??;
            }
            else => return Ok(()),
        }
    }
}

async fn report(shared: &Shared, err: FileSyncError) {
    tracing::debug!(error = %err, "filesync transfer failed");
    // Like upstream, our own failures also go out as an ERR packet; none for the receiver's.
    if err.is_local() {
        let packet = Packet {
            r#type: PacketType::PacketErr as i32,
            data: Bytes::from(err.to_string()),
            ..Packet::default()
        };
        let _ = shared.out.send(Ok(packet)).await;
    }
    let _ = shared.out.send(Err(err.into())).await;
}

/// Reads the receiver's packets; `Ok` once `FIN` was answered.
async fn read_requests<S>(
    mut inbound: S,
    shared: &Shared,
    jobs: mpsc::Sender<Job>,
) -> Result<(), FileSyncError>
where
    S: Stream<Item = Result<Packet, Status>> + Unpin,
{
    loop {
        let packet = tokio::select! {
            _ = shared.out.closed() => return Err(FileSyncError::Cancelled),
            next = inbound.next() => match next {
                Some(Ok(packet)) => packet,
                Some(Err(status)) => return Err(FileSyncError::Transport(status.message().to_owned())),
                None => return Err(FileSyncError::ReceiverClosed),
            },
        };
        match PacketType::try_from(packet.r#type) {
            Ok(PacketType::PacketReq) => {
                let job = Job {
                    id: packet.id,
                    file: take_file(shared, packet.id)?,
                };
                tokio::select! {
                    _ = shared.out.closed() => return Err(FileSyncError::Cancelled),
                    sent = jobs.send(job) => sent.map_err(|_| FileSyncError::Cancelled)?,
                }
            }
            Ok(PacketType::PacketFin) => {
                let fin = Packet {
                    r#type: PacketType::PacketFin as i32,
                    ..Packet::default()
                };
                shared
                    .out
                    .send(Ok(fin))
                    .await
                    .map_err(|_| FileSyncError::Cancelled)?;
                return Ok(());
            }
            Ok(PacketType::PacketErr) => {
                let msg = String::from_utf8_lossy(&packet.data).into_owned();
                return Err(FileSyncError::Receiver(msg));
            }
            // Upstream ignores anything else from the receiver.
            _ => {}
        }
    }
}

fn take_file(shared: &Shared, id: u32) -> Result<FileRef, FileSyncError> {
    let mut files = shared.files.lock().unwrap_or_else(PoisonError::into_inner);
    usize::try_from(id)
        .ok()
        .and_then(|i| files.get_mut(i))
        .and_then(Option::take)
        .ok_or(FileSyncError::InvalidFileId(id))
}

/// The walker task: the listing, then the empty `STAT` that ends it.
fn list(shared: &Shared, source: &LocalSource, req: &DiffCopyRequest) -> Result<(), FileSyncError> {
    let mut sink = PacketSink(shared);
    match source {
        LocalSource::Dir(dir, scope) => {
            let root = std::fs::canonicalize(dir).map_err(|source| FileSyncError::Walk {
                path: dir.display().to_string(),
                source,
            })?;
            walk_dir(&root, req, scope, &mut sink)?;
        }
        LocalSource::Files(files) => walk_files(files, req, &mut sink)?,
    }
    send_blocking(shared, Packet::default())
}

struct PacketSink<'a>(&'a Shared);

impl Sink for PacketSink<'_> {
    fn entry(&mut self, stat: Stat, file: Option<FileRef>) -> Result<(), FileSyncError> {
        if self.cancelled() {
            return Err(FileSyncError::Cancelled);
        }
        // Registered before the STAT leaves, so a REQ for it always finds it.
        self.0
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(file);
        self.0.stats.add_stat();
        let packet = Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(stat),
            ..Packet::default()
        };
        send_blocking(self.0, packet)
    }

    fn cancelled(&self) -> bool {
        self.0.aborted.load(Ordering::Relaxed)
    }
}

fn send_blocking(shared: &Shared, packet: Packet) -> Result<(), FileSyncError> {
    shared
        .out
        .blocking_send(Ok(packet))
        .map_err(|_| FileSyncError::Cancelled)
}

fn send_data(shared: &Shared, id: u32, data: Bytes) -> Result<(), FileSyncError> {
    let len = data.len() as u64;
    let packet = Packet {
        r#type: PacketType::PacketData as i32,
        id,
        data,
        ..Packet::default()
    };
    send_blocking(shared, packet)?;
    shared.stats.add_bytes(len);
    Ok(())
}

/// A worker task: streams requested files until the request queue closes.
fn serve_files(shared: &Shared, jobs: &Mutex<mpsc::Receiver<Job>>) -> Result<(), FileSyncError> {
    loop {
        let job = jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(Job { id, file }) = job else {
            return Ok(());
        };
        if shared.aborted.load(Ordering::Relaxed) {
            return Err(FileSyncError::Cancelled);
        }
        match file {
            FileRef::Disk {
                path,
                size,
                mtime,
                ino,
            } => match open_nonblocking(&path) {
                Ok(f) => {
                    let listed = Listed { size, mtime, ino };
                    stream_file(shared, id, f, listed).map_err(|e| match e {
                        StreamError::Io(source) => FileSyncError::Read {
                            path: path.display().to_string(),
                            source,
                        },
                        StreamError::Changed => {
                            shared.stats.set_changed(&path);
                            FileSyncError::Changed(path.clone())
                        }
                        StreamError::Send(e) => e,
                    })?
                }
                // Listed, then gone: an empty file in its place would be a
                // version that never existed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    shared.stats.set_changed(&path);
                    return Err(FileSyncError::Changed(path));
                }
                // Upstream sends just the EOF for a file that cannot be opened.
                Err(e) => {
                    tracing::debug!(path = %path.display(), error = %e, "cannot open requested file")
                }
            },
            FileRef::Memory(data) => {
                for start in (0..data.len()).step_by(DATA_CHUNK) {
                    let end = (start + DATA_CHUNK).min(data.len());
                    send_data(shared, id, data.slice(start..end))?;
                }
            }
        }
        send_data(shared, id, Bytes::new())?;
        shared.stats.add_file();
    }
}

/// Opens for reading without blocking: a regular file reads as usual, but a path that became
/// a FIFO since it was listed reads as empty instead of hanging the worker. Nor does it
/// follow a symlink that replaced the file since it was listed: that open fails, and the
/// daemon gets an empty file instead of whatever the link points at.
fn open_nonblocking(path: &std::path::Path) -> io::Result<File> {
    let flags = (rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW).bits() as i32;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

enum StreamError {
    Io(io::Error),
    /// The file is not the version that was listed.
    Changed,
    Send(FileSyncError),
}

/// What the listing said about a file.
#[derive(Clone, Copy)]
struct Listed {
    size: u64,
    mtime: i64,
    ino: u64,
}

/// Streams one file's content (not the EOF packet), then checks that it was the listed
/// version: a file rewritten in place while it is read would otherwise reach the daemon as a
/// mix of two versions, under the listed size and time (upstream sends whatever it read).
/// Each write moves the file's mtime, so the same size, mtime and inode after the last read
/// as at the listing mean nothing wrote to it in between. Since Linux 6.13 a write after a
/// stat always gets a newer timestamp (multigrain timestamps on ext4, xfs, btrfs, tmpfs);
/// before, a write within the same clock tick (a few ms) as the listing can go unnoticed.
fn stream_file(shared: &Shared, id: u32, file: File, listed: Listed) -> Result<(), StreamError> {
    let sent = send_content(shared, id, &file, listed.size)?;
    let now = file.metadata().map_err(StreamError::Io)?;
    let mtime = now
        .mtime()
        .saturating_mul(1_000_000_000)
        .saturating_add(now.mtime_nsec());
    if sent != listed.size
        || now.len() != listed.size
        || mtime != listed.mtime
        || now.ino() != listed.ino
    {
        return Err(StreamError::Changed);
    }
    Ok(())
}

/// Sends the content in chunks sized by the listed size, so a small file costs one
/// exact-size buffer, and keeps reading to the real EOF; returns the bytes sent.
fn send_content(shared: &Shared, id: u32, file: &File, size: u64) -> Result<u64, StreamError> {
    let mut left = size;
    let mut sent = 0u64;
    loop {
        let want = match left {
            0 => PROBE,
            n => usize::try_from(n).map_or(DATA_CHUNK, |n| n.min(DATA_CHUNK)),
        };
        let chunk = read_chunk(file, want).map_err(StreamError::Io)?;
        let n = chunk.len();
        if n > 0 {
            send_data(shared, id, chunk).map_err(StreamError::Send)?;
            sent += n as u64;
        }
        if n < want {
            return Ok(sent);
        }
        left = match left {
            // It grew past its stat: read on in full chunks until the real EOF.
            0 => u64::MAX,
            _ => left.saturating_sub(n as u64),
        };
    }
}

/// Reads up to `want` bytes (fewer only at EOF) into a new buffer without zeroing it first:
/// zeroing each chunk and each file's 8 KiB EOF probe was ~20% of the client's instructions
/// in bench/profile's scenario b (callgrind), and the read overwrites it anyway.
fn read_chunk(file: &File, want: usize) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(want);
    while buf.len() < want {
        // Reads into the spare capacity and extends `buf` by what was read.
        match rustix::io::read(file, rustix::buffer::spare_capacity(&mut buf)) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Bytes::from(buf))
}
