//! The fsutil receiver on one `local` export stream (upstream tonistiigi/fsutil `receive.go`).
//! The daemon is the fsutil sender (fsutil `send.go`):
//! 1. it lists every entry as a `STAT` (the entry's ID is its index) and ends the listing
//!    with an empty `STAT`;
//! 2. we validate each entry ([`super::validate`]), hand it to the disk thread
//!    ([`super::disk`]), and `REQ` every regular non-hardlink file, while still reading;
//! 3. it answers each `REQ` with `DATA` chunks and an empty `DATA` (that file's EOF), up to
//!    four files interleaved;
//! 4. once the listing has ended, every requested file is complete and the disk thread has
//!    finished, we send `FIN`; the daemon answers `FIN`, which ends the call OK. The daemon
//!    never half-closes: after its `FIN` it resets the stream, so an end or reset of its side
//!    after our `FIN` is success too (everything was already on disk).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::disk::{self, Op};
use super::outputs::{StagingDir, StreamGuard};
use super::validate::{Kind, Validator};
use super::{FileSendError, Outbound};
use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::fsutil::types::{Packet, Stat};

/// Packets waiting for the HTTP/2 stream (only small `REQ`s and one `FIN`).
const OUT_QUEUE: usize = 64;
/// Ops waiting for the disk thread: with 32 KiB chunks, ~2 MiB of data in flight.
const DISK_QUEUE: usize = 64;
/// `REQ`s queued for a daemon that does not read them: reading pauses beyond this.
const MAX_OUTBOX: usize = 4096;
/// What one stream's listing may make us remember (paths, link targets and xattrs of every
/// entry, plus [`ENTRY_COST`] each): a daemon listing without end is refused here instead
/// of growing memory. About four million small entries, far beyond any real export.
const MAX_LISTING: u64 = 512 << 20;
/// The fixed memory one listed entry costs across the validator, queues and disk thread.
const ENTRY_COST: u64 = 128;

/// Starts receiving into `root`; the returned stream is the call's response.
pub(super) fn start(
    inbound: Streaming<Bytes>,
    root: Arc<StagingDir>,
    dest: PathBuf,
    guard: StreamGuard,
) -> Outbound {
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    tokio::spawn(async move {
        let mut writer = Some(Writer::spawn(Arc::clone(&root), dest.clone()));
        let mut state = Receiver::new(dest);
        let outcome = tokio::select! {
            result = receive(inbound, &out, &mut state, &mut writer) => Some(result),
            () = out.closed() => None,
        };
        let mut result = match outcome {
            Some(result) => result,
            // The daemon resets the stream once it has our FIN; all was on disk by then.
            None if state.fin_sent => Ok(()),
            None => Err(FileSendError::Transport(
                "the daemon dropped the export".into(),
            )),
        };
        // The disk thread stops before the outcome is reported, so nothing writes into a
        // staging tree that a discard is removing.
        if let Some(writer) = writer {
            let stopped = writer.stop().await;
            // A disk error (a full disk) explains a broken stream; other
            // failures are reported as they are, the disk's being their echo.
            if let (Err(FileSendError::Transport(_)), Err(disk)) = (&result, stopped) {
                result = Err(disk);
            }
        }
        drop(root);
        match result {
            Ok(()) => guard.finish(),
            Err(err) => {
                tracing::debug!(error = %err, "local export failed");
                guard.fail(&err);
                let _ = out.send(Err(err.into())).await;
            }
        }
    });
    ReceiverStream::new(out_rx)
}

async fn receive(
    mut inbound: Streaming<Bytes>,
    out: &mpsc::Sender<Result<Bytes, Status>>,
    state: &mut Receiver,
    writer: &mut Option<Writer>,
) -> Result<(), FileSendError> {
    loop {
        let message = tokio::select! {
            permit = out.reserve(), if !state.outbox.is_empty() => {
                if let (Ok(permit), Some(packet)) = (permit, state.outbox.pop_front()) {
                    permit.send(Ok(packet.encode_to_vec().into()));
                }
                continue;
            }
            message = inbound.message(), if state.outbox.len() < MAX_OUTBOX => message,
        };
        let raw = match message {
            Ok(Some(raw)) => raw,
            Ok(None) | Err(_) if state.fin_sent => return Ok(()),
            Ok(None) => return Err(state.protocol("the daemon ended the stream before FIN")),
            Err(status) => return Err(FileSendError::Transport(status.message().to_owned())),
        };
        let packet =
            Packet::decode(raw).map_err(|e| state.protocol(&format!("bad packet: {e}")))?;
        match state.handle(packet)? {
            Step::Continue => {}
            Step::Disk(op) => {
                let Some(w) = writer.as_ref() else {
                    return Err(state.protocol("data after the transfer was complete"));
                };
                if w.ops.send(op).await.is_err() {
                    // The disk thread stops early only on an error, which explains this.
                    let finished = match writer.take() {
                        Some(w) => w.finish().await,
                        None => Ok(()),
                    };
                    return Err(finished.err().unwrap_or_else(|| {
                        FileSendError::Internal("the disk writer stopped".into())
                    }));
                }
            }
            Step::Done => return Ok(()),
        }
        if state.complete() {
            if let Some(w) = writer.take() {
                w.finish().await?;
            }
            state.fin_sent = true;
            state.outbox.push_back(packet_of(PacketType::PacketFin, 0));
        }
    }
}

enum Step {
    Continue,
    Disk(Op),
    /// The daemon's `FIN`.
    Done,
}

struct Receiver {
    dest: PathBuf,
    validator: Validator,
    /// The ID the next `STAT` gets.
    next_id: u32,
    /// Requested files whose EOF has not arrived, with the bytes their `STAT` announced
    /// and not yet received: a file never gets more than its listed size.
    pending: HashMap<u32, u64>,
    /// What the listing so far costs to remember, against `listing_limit`.
    listing_cost: u64,
    listing_limit: u64,
    listed: bool,
    fin_sent: bool,
    /// Packets to send; the reader never waits on the daemon reading them.
    outbox: VecDeque<Packet>,
}

impl Receiver {
    fn new(dest: PathBuf) -> Self {
        Self {
            dest,
            validator: Validator::default(),
            next_id: 0,
            pending: HashMap::new(),
            listing_cost: 0,
            listing_limit: MAX_LISTING,
            listed: false,
            fin_sent: false,
            outbox: VecDeque::new(),
        }
    }

    fn protocol(&self, reason: &str) -> FileSendError {
        FileSendError::Protocol {
            dest: self.dest.clone(),
            reason: reason.to_owned(),
        }
    }

    fn complete(&self) -> bool {
        self.listed && self.pending.is_empty() && !self.fin_sent
    }

    fn handle(&mut self, packet: Packet) -> Result<Step, FileSendError> {
        let kind = PacketType::try_from(packet.r#type)
            .map_err(|_| self.protocol(&format!("unknown packet type {}", packet.r#type)))?;
        if self.fin_sent && kind != PacketType::PacketFin {
            return Err(self.protocol("packet after FIN"));
        }
        match kind {
            PacketType::PacketStat => match packet.stat {
                None if self.listed => Err(self.protocol("the listing ended twice")),
                None => {
                    self.listed = true;
                    Ok(Step::Continue)
                }
                Some(_) if self.listed => Err(self.protocol("entry after the end of the listing")),
                Some(stat) => self.entry(stat),
            },
            PacketType::PacketData => {
                let Some(left) = self.pending.get_mut(&packet.id) else {
                    let reason = format!("data for file id {}, which is not awaited", packet.id);
                    return Err(self.protocol(&reason));
                };
                if packet.data.is_empty() {
                    self.pending.remove(&packet.id);
                    return Ok(Step::Disk(Op::Eof { id: packet.id }));
                }
                let len = packet.data.len() as u64;
                if len > *left {
                    let reason =
                        format!("more data for file id {} than its listed size", packet.id);
                    return Err(self.protocol(&reason));
                }
                *left -= len;
                Ok(Step::Disk(Op::Data {
                    id: packet.id,
                    data: packet.data,
                }))
            }
            PacketType::PacketFin if self.fin_sent => Ok(Step::Done),
            PacketType::PacketFin => Err(self.protocol("FIN before the transfer was complete")),
            PacketType::PacketErr => Err(FileSendError::Daemon(
                String::from_utf8_lossy(&packet.data).into_owned(),
            )),
            PacketType::PacketReq => Err(self.protocol("REQ from the sender")),
        }
    }

    fn entry(&mut self, stat: Stat) -> Result<Step, FileSendError> {
        let cost = ENTRY_COST
            + (stat.path.len() + stat.linkname.len()) as u64
            + stat
                .xattrs
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>();
        self.listing_cost = self.listing_cost.saturating_add(cost);
        if self.listing_cost > self.listing_limit {
            let reason = format!(
                "the listing exceeds {} MiB of entries",
                self.listing_limit >> 20
            );
            return Err(self.protocol(&reason));
        }
        let id = self.next_id;
        self.next_id = id
            .checked_add(1)
            .ok_or_else(|| self.protocol("too many entries"))?;
        let kind = self
            .validator
            .check(&stat)
            .map_err(|reason| FileSendError::InvalidEntry {
                dest: self.dest.clone(),
                path: stat.path.clone(),
                reason,
            })?;
        match kind {
            Kind::Skip(why) => {
                tracing::warn!(path = %stat.path, "not exporting {why}");
                return Ok(Step::Continue);
            }
            Kind::File => {
                self.pending
                    .insert(id, u64::try_from(stat.size).unwrap_or_default());
                self.outbox.push_back(packet_of(PacketType::PacketReq, id));
            }
            _ => {}
        }
        Ok(Step::Disk(Op::Entry { id, stat, kind }))
    }
}

fn packet_of(kind: PacketType, id: u32) -> Packet {
    Packet {
        r#type: kind as i32,
        id,
        ..Packet::default()
    }
}

/// The disk thread of one stream.
struct Writer {
    ops: mpsc::Sender<Op>,
    task: JoinHandle<Result<(), FileSendError>>,
}

impl Writer {
    /// The thread holds the staging tree too: it is removed only after the thread is done.
    fn spawn(root: Arc<StagingDir>, dest: PathBuf) -> Self {
        let (ops, rx) = mpsc::channel(DISK_QUEUE);
        let task = tokio::task::spawn_blocking(move || disk::run(&root.path, &dest, rx));
        Self { ops, task }
    }

    /// Completes the tree and waits for the thread's result.
    async fn finish(self) -> Result<(), FileSendError> {
        // A failed send means the thread already stopped; its result says why.
        let _ = self.ops.send(Op::Finish).await;
        self.stop().await
    }

    /// Closes the queue (the thread stops after its current op) and waits for it.
    async fn stop(self) -> Result<(), FileSendError> {
        drop(self.ops);
        self.task
            .await
            .map_err(|e| FileSendError::Internal(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_packet(path: &str, size: i64) -> Packet {
        Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(Stat {
                path: path.to_owned(),
                mode: 0o644,
                size,
                ..Stat::default()
            }),
            ..Packet::default()
        }
    }

    fn data(id: u32, bytes: &'static [u8]) -> Packet {
        Packet {
            r#type: PacketType::PacketData as i32,
            id,
            data: Bytes::from_static(bytes),
            ..Packet::default()
        }
    }

    #[test]
    fn a_file_gets_no_more_than_its_listed_size() {
        let mut r = Receiver::new("/out".into());
        assert!(matches!(r.handle(stat_packet("a", 4)), Ok(Step::Disk(_))));
        assert!(matches!(r.handle(data(0, b"abc")), Ok(Step::Disk(_))));
        let err = r.handle(data(0, b"de")).err().expect("past its size");
        assert!(err.to_string().contains("than its listed size"), "{err}");
        // Shorter than listed is a file that shrank: accepted, as upstream does.
        let mut r = Receiver::new("/out".into());
        r.handle(stat_packet("a", 10)).expect("entry");
        r.handle(data(0, b"abc")).expect("data");
        assert!(matches!(
            r.handle(data(0, b"")),
            Ok(Step::Disk(Op::Eof { id: 0 }))
        ));
    }

    #[test]
    fn an_endless_listing_is_refused_at_its_budget() {
        let mut r = Receiver::new("/out".into());
        r.listing_limit = 64 << 10;
        let mut refused = None;
        for i in 0..100_000u32 {
            if let Err(e) = r.handle(stat_packet(&format!("f{i:08}"), 0)) {
                refused = Some((i, e));
                break;
            }
        }
        let (at, err) = refused.expect("refused before the end");
        assert!(err.to_string().contains("the listing exceeds"), "{err}");
        // Each entry costs its path plus the fixed part: the budget allows a few hundred.
        assert!((400..600).contains(&at), "refused at entry {at}");
        assert!(r.pending.len() <= at as usize);
    }

    /// Fuzz target `fsutil_packets`: the packets a daemon's `local` exporter sends, as
    /// length-prefixed (2 bytes, big-endian) protobuf messages, through the receiver's
    /// state machine and validator, with a small listing budget.
    #[test]
    fn fuzz_fsutil_packets() {
        crate::fuzz::run("fsutil_packets", |mut data| {
            let mut r = Receiver::new("/out".into());
            r.listing_limit = 1 << 20;
            while let Some((head, rest)) = data.split_first_chunk::<2>() {
                let len = usize::from(u16::from_be_bytes(*head)).min(rest.len());
                let (raw, tail) = rest.split_at(len);
                data = tail;
                let Ok(packet) = Packet::decode(raw) else {
                    continue;
                };
                match r.handle(packet) {
                    Ok(Step::Done) | Err(_) => return,
                    Ok(_) => {}
                }
                if r.complete() {
                    r.fin_sent = true;
                }
            }
        });
    }
}
