//! The daemon's exports come back hostile: entries that would land outside `dest`, writes
//! through symlinks it planted, more data than it listed, and a stream that never ends
//! into a consumer that stopped reading. All are refused, nothing outside `dest` is
//! touched, and what the client holds meanwhile stays bounded.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::FakeDaemon;
use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::fsutil::types::{Packet, Stat};
use crate::proto::moby::filesync::v1::BytesMessage;
use crate::session::SessionConfig;
use crate::session::filesend::{ExportTarget, FileSendService, StreamSink};
use crate::session::filesync::stat::mode;

const DIFF_COPY: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// Opens `FileSend.DiffCopy` for exporter `id` with messages of type `M` from `rx`.
async fn open<M>(
    channel: &Channel,
    id: &str,
    rx: mpsc::Receiver<M>,
) -> Result<tonic::Streaming<Packet>, Status>
where
    M: Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(ReceiverStream::new(rx));
    let id: MetadataValue<_> = id.parse().expect("ascii");
    request
        .metadata_mut()
        .insert("buildkit-attachable-exporter-id", id);
    let path = http::uri::PathAndQuery::from_static(DIFF_COPY);
    let codec = tonic_prost::ProstCodec::<M, Packet>::default();
    Ok(grpc.streaming(request, path, codec).await?.into_inner())
}

fn stat(path: &str, mode: u32, linkname: &str, size: i64) -> Packet {
    Packet {
        r#type: PacketType::PacketStat as i32,
        stat: Some(Stat {
            path: path.into(),
            mode,
            linkname: linkname.into(),
            size,
            ..Stat::default()
        }),
        ..Packet::default()
    }
}

fn packet(kind: PacketType, id: u32, data: Bytes) -> Packet {
    Packet {
        r#type: kind as i32,
        id,
        data,
        ..Packet::default()
    }
}

/// Plays a `local` exporter that lists `entries`, answers every REQ with `data` (once or
/// `repeat` times) and an EOF. Returns the call's outcome.
async fn local_export(
    channel: &Channel,
    entries: Vec<Packet>,
    data: Bytes,
    repeat: usize,
) -> Result<(), Status> {
    let (tx, rx) = mpsc::channel(256);
    for e in entries {
        tx.send(e).await.expect("queued");
    }
    tx.send(packet(PacketType::PacketStat, 0, Bytes::new()))
        .await
        .expect("queued");
    let mut replies = open(channel, "0", rx).await?;
    while let Some(p) = replies.message().await? {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketReq) => {
                for _ in 0..repeat {
                    let _ = tx
                        .send(packet(PacketType::PacketData, p.id, data.clone()))
                        .await;
                }
                let _ = tx
                    .send(packet(PacketType::PacketData, p.id, Bytes::new()))
                    .await;
            }
            Ok(PacketType::PacketFin) => {
                let _ = tx
                    .send(packet(PacketType::PacketFin, 0, Bytes::new()))
                    .await;
            }
            _ => {}
        }
    }
    Ok(())
}

fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

const LINK: u32 = mode::SYMLINK | 0o777;

#[tokio::test]
async fn writes_outside_dest_and_symlink_tricks_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("victim"), "untouched").unwrap();
    let out = outside.display().to_string();
    let attempts: Vec<(&str, Vec<Packet>)> = vec![
        ("escape", vec![stat("../outside/victim", 0o644, "", 5)]),
        (
            "absolute",
            vec![stat(&format!("{out}/victim"), 0o644, "", 5)],
        ),
        (
            "symlink",
            vec![stat("a", LINK, &out, 0), stat("a/victim", 0o644, "", 5)],
        ),
        (
            "relative symlink",
            vec![
                stat("a", LINK, "../../outside", 0),
                stat("a/new", 0o644, "", 5),
            ],
        ),
        (
            "hardlink",
            vec![stat("h", 0o644, &format!("{out}/victim"), 0)],
        ),
        (
            "file as parent",
            vec![stat("f", 0o644, "", 5), stat("f/x", 0o644, "", 5)],
        ),
        ("unclean", vec![stat("d/../../x", 0o644, "", 5)]),
    ];
    for (what, entries) in attempts {
        let dest = base.path().join(format!("dest-{}", what.replace(' ', "-")));
        let targets = HashMap::from([(0, ExportTarget::Dir(dest.clone()))]);
        let (service, outputs) = FileSendService::new(targets);
        let mut daemon = FakeDaemon::start().await;
        let config = SessionConfig {
            filesend: Some(service),
            ..SessionConfig::default()
        };
        let (session, d) = daemon.attach(config).await;
        let err = local_export(&d.channel, entries, Bytes::from_static(b"owned"), 1)
            .await
            .expect_err(what);
        assert!(err.message().contains("refused entry"), "{what}: {err:?}");
        let failed = outputs.commit().await.expect_err(what);
        assert!(
            failed.to_string().contains(&dest.display().to_string()),
            "{failed}"
        );
        assert!(!dest.exists(), "{what}: nothing committed");
        session.close().await;
    }
    assert_eq!(tree(&outside), ["victim"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
    // Only the `outside` directory is in base: no staging tree was left behind either.
    assert_eq!(tree(base.path()), ["outside", "outside/victim"]);
}

#[tokio::test]
async fn a_symlink_out_is_written_as_a_link_and_a_device_is_never_made() {
    let base = tempfile::tempdir().unwrap();
    let dest = base.path().join("dest");
    let (service, outputs) =
        FileSendService::new(HashMap::from([(0, ExportTarget::Dir(dest.clone()))]));
    let mut daemon = FakeDaemon::start().await;
    let config = SessionConfig {
        filesend: Some(service),
        ..SessionConfig::default()
    };
    let (session, d) = daemon.attach(config).await;
    let entries = vec![
        stat("dev", mode::DEVICE | mode::CHAR_DEVICE | 0o666, "", 0),
        stat("etc", LINK, "/etc", 0),
        stat("ok", 0o644, "", 5),
    ];
    local_export(&d.channel, entries, Bytes::from_static(b"hello"), 1)
        .await
        .expect("export");
    outputs.commit().await.expect("commit");
    assert_eq!(tree(&dest), ["etc", "ok"]);
    assert_eq!(
        std::fs::read_link(dest.join("etc")).unwrap(),
        Path::new("/etc")
    );
    session.close().await;
}

#[tokio::test]
async fn an_endless_file_is_cut_at_its_listed_size() {
    let base = tempfile::tempdir().unwrap();
    let dest = base.path().join("dest");
    let (service, outputs) =
        FileSendService::new(HashMap::from([(0, ExportTarget::Dir(dest.clone()))]));
    let mut daemon = FakeDaemon::start().await;
    let config = SessionConfig {
        filesend: Some(service),
        ..SessionConfig::default()
    };
    let (session, d) = daemon.attach(config).await;
    // Listed as 1 MiB, then 64 MiB of data offered.
    let chunk = Bytes::from(vec![7u8; 1 << 20]);
    let entries = vec![stat("big", 0o644, "", 1 << 20)];
    let err = local_export(&d.channel, entries, chunk, 64)
        .await
        .expect_err("refused");
    assert!(err.message().contains("than its listed size"), "{err:?}");
    assert!(outputs.commit().await.is_err());
    assert!(!dest.exists());
    session.close().await;
}

/// A consumer that takes the first chunk and then stops reading (an engine that hangs).
struct Stalled {
    open: AtomicBool,
    keep: std::sync::Mutex<Option<mpsc::Receiver<Bytes>>>,
}

#[tonic::async_trait]
impl StreamSink for Stalled {
    async fn open(
        &self,
        _: &BTreeMap<String, String>,
    ) -> Result<Option<mpsc::Sender<Bytes>>, String> {
        self.open.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel(1);
        *self.keep.lock().unwrap() = Some(rx);
        Ok(Some(tx))
    }

    async fn close(&self, _: bool) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test]
async fn an_endless_stream_into_a_stalled_consumer_holds_the_daemon_back() {
    let sink = Arc::new(Stalled {
        open: AtomicBool::new(false),
        keep: std::sync::Mutex::new(None),
    });
    let targets = HashMap::from([(0, ExportTarget::Stream(sink.clone()))]);
    let (service, _outputs) = FileSendService::new(targets);
    let mut daemon = FakeDaemon::start().await;
    let config = SessionConfig {
        filesend: Some(service),
        ..SessionConfig::default()
    };
    let (session, d) = daemon.attach(config).await;
    let (tx, rx) = mpsc::channel::<BytesMessage>(1);
    let channel = d.channel.clone();
    let call = tokio::spawn(async move { open(&channel, "0", rx).await.map(|_| ()) });
    // The daemon writes 1 MiB messages without end; count what the client lets through.
    const CHUNK: usize = 1 << 20;
    let data = Bytes::from(vec![1u8; CHUNK]);
    let mut sent = 0usize;
    loop {
        let message = BytesMessage { data: data.clone() };
        match tokio::time::timeout(Duration::from_secs(2), tx.send(message)).await {
            Ok(Ok(())) => sent += CHUNK,
            Ok(Err(_)) => panic!("the call ended: {:?}", call.await),
            Err(_) => break,
        }
        assert!(
            sent < 256 * CHUNK,
            "the client kept accepting: {sent} bytes"
        );
    }
    assert!(sent > 0 && sink.open.load(Ordering::SeqCst));
    // What is in flight is bounded by the HTTP/2 windows (4 MiB per call, 8 MiB per
    // session) and a few chunks in the queues on either side.
    assert!(sent <= 16 * CHUNK, "{sent} bytes were taken in");
    call.abort();
    session.close().await;
}
