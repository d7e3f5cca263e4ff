//! Transfer tests with the test acting as the fsutil receiver: through a real tonic server
//! over an in-memory connection, and directly on the sender for flow-control details.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use super::sender::{self, DATA_CHUNK};
use super::stat::{is_requestable, mode};
use super::*;
use crate::proto::fsutil::types::Stat;
use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use crate::proto::moby::filesync::v1::file_sync_server::FileSyncServer;

async fn connect(service: FileSyncService) -> FileSyncClient<Channel> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let incoming = tokio_stream::once(Ok::<_, io::Error>(server_io));
        let server = tonic::transport::Server::builder().add_service(FileSyncServer::new(service));
        let _ = server.serve_with_incoming(incoming).await;
    });
    let mut client_io = Some(client_io);
    let connector = tower::service_fn(move |_: http::Uri| {
        let io = client_io.take().map(hyper_util::rt::TokioIo::new);
        async move { io.ok_or_else(|| io::Error::other("one connection only")) }
    });
    let channel = Endpoint::from_static("http://filesync.test")
        .connect_with_connector(connector)
        .await
        .expect("in-memory connection");
    FileSyncClient::new(channel)
}

fn packet(kind: PacketType, id: u32) -> Packet {
    Packet {
        r#type: kind as i32,
        id,
        ..Packet::default()
    }
}

#[derive(Debug, Default)]
struct Received {
    stats: Vec<Stat>,
    files: HashMap<String, Vec<u8>>,
}

impl Received {
    fn paths(&self) -> Vec<&str> {
        self.stats.iter().map(|s| s.path.as_str()).collect()
    }
}

/// Plays the fsutil receiver: requests every regular non-hardlink file, collects the data,
/// sends FIN once the listing and all files are complete, and expects FIN back. Like the Go
/// receiver, it keeps reading while its requests wait to be sent.
async fn run_receiver<S>(responses: &mut S, tx: &mpsc::Sender<Packet>) -> Result<Received, Status>
where
    S: Stream<Item = Result<Packet, Status>> + Unpin,
{
    let mut got = Received::default();
    let mut open: HashMap<u32, (String, Vec<u8>)> = HashMap::new();
    let mut outbox: VecDeque<Packet> = VecDeque::new();
    let (mut listed, mut fin_sent, mut fin_received) = (false, false, false);
    loop {
        let p = tokio::select! {
            permit = tx.reserve(), if !outbox.is_empty() => {
                let next = outbox.pop_front().expect("not empty");
                permit.expect("sender reads requests").send(next);
                continue;
            }
            p = responses.next() => match p {
                Some(p) => p?,
                None => break,
            },
        };
        match PacketType::try_from(p.r#type).expect("known packet type") {
            PacketType::PacketStat => match p.stat {
                None => listed = true,
                Some(stat) => {
                    let id = u32::try_from(got.stats.len()).expect("few entries");
                    if is_requestable(stat.mode) && stat.linkname.is_empty() {
                        open.insert(id, (stat.path.clone(), Vec::new()));
                        outbox.push_back(packet(PacketType::PacketReq, id));
                    }
                    got.stats.push(stat);
                }
            },
            PacketType::PacketData => {
                let entry = open.get_mut(&p.id).expect("data only for requested files");
                entry.1.extend_from_slice(&p.data);
                if p.data.is_empty() {
                    let (path, data) = open.remove(&p.id).expect("present");
                    got.files.insert(path, data);
                }
            }
            PacketType::PacketFin => fin_received = true,
            PacketType::PacketErr => return Err(Status::unknown(String::from_utf8_lossy(&p.data))),
            PacketType::PacketReq => panic!("the sender never requests"),
        }
        if listed && open.is_empty() && !fin_sent {
            fin_sent = true;
            outbox.push_back(packet(PacketType::PacketFin, 0));
        }
    }
    assert!(fin_received, "the sender answers FIN with FIN");
    Ok(got)
}

async fn receive(
    client: &mut FileSyncClient<Channel>,
    metadata: &[(&'static str, &str)],
) -> Result<Received, Status> {
    let (tx, rx) = mpsc::channel(16);
    let mut request = Request::new(ReceiverStream::new(rx));
    for (key, value) in metadata {
        request
            .metadata_mut()
            .append(*key, value.parse().expect("ascii metadata"));
    }
    let mut responses = client.diff_copy(request).await?.into_inner();
    run_receiver(&mut responses, &tx).await
}

#[tokio::test]
async fn serves_a_tree_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/empty")).expect("mkdir");
    std::fs::create_dir_all(root.join("node_modules/x")).expect("mkdir");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("src/big.bin"), &big).expect("write");
    std::fs::write(root.join("src/empty.txt"), "").expect("write");
    std::fs::write(root.join("Dockerfile"), "FROM scratch\n").expect("write");
    std::fs::hard_link(root.join("Dockerfile"), root.join("Dockerfile.copy")).expect("link");
    std::os::unix::fs::symlink("../etc/passwd", root.join("link")).expect("symlink");

    let service = FileSyncService::new(HashMap::from([(
        "context".to_owned(),
        LocalSource::Dir(root.to_path_buf(), Scope::all()),
    )]));
    let stats = service.stats("context");
    let mut client = connect(service).await;

    let got = receive(
        &mut client,
        &[
            ("dir-name", "context"),
            ("exclude-patterns", "node_modules"),
        ],
    )
    .await
    .expect("transfer");
    let want = [
        "Dockerfile",
        "Dockerfile.copy",
        "link",
        "src",
        "src/big.bin",
        "src/empty",
        "src/empty.txt",
    ];
    assert_eq!(got.paths(), want);
    assert_eq!(got.stats[1].linkname, "Dockerfile");
    assert_eq!(got.stats[3].mode & mode::TYPE, mode::DIR);
    assert_eq!(got.files.len(), 3, "the hardlink is not requested");
    assert_eq!(got.files["src/big.bin"], big);
    assert_eq!(got.files["src/empty.txt"], b"");
    assert_eq!(got.files["Dockerfile"], b"FROM scratch\n");
    assert_eq!((stats.stats_sent(), stats.files_sent()), (7, 3));
    assert_eq!(stats.bytes_sent(), 300_000 + 13);
}

#[tokio::test]
async fn serves_in_memory_dockerfiles_and_rejects_unknown_names() {
    let files = BTreeMap::from([("Dockerfile".to_owned(), Bytes::from_static(b"FROM mem\n"))]);
    let service = FileSyncService::new(HashMap::from([(
        "dockerfile".to_owned(),
        LocalSource::Files(files),
    )]));
    let mut client = connect(service).await;
    // The frontend's Dockerfile request, with an encoded value.
    let got = receive(
        &mut client,
        &[
            ("dir-name", "dockerfile"),
            ("followpaths", "Dockerfile"),
            ("followpaths", "D%C3%B6ckerfile.dockerignore"),
            ("followpaths-encoded", "1"),
        ],
    )
    .await
    .expect("transfer");
    assert_eq!(got.paths(), ["Dockerfile"]);
    assert_eq!(got.files["Dockerfile"], b"FROM mem\n");

    let err = receive(&mut client, &[("dir-name", "other")])
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = client
        .tar_stream(tokio_stream::empty())
        .await
        .expect_err("unsupported");
    assert_eq!(err.code(), tonic::Code::Unimplemented);
}

/// The sender's packets, and the receiver's side of a direct transfer.
type Replies = ReceiverStream<Result<Packet, Status>>;
type Requests = mpsc::Sender<Packet>;

/// A direct transfer: the response stream and the sender of receiver packets.
fn start_direct(source: LocalSource, req: DiffCopyRequest) -> (Replies, Requests, TransferStats) {
    let (tx, rx) = mpsc::channel(16);
    let stats = TransferStats::default();
    let out = sender::start(
        Arc::new(source),
        req,
        ReceiverStream::new(rx).map(Ok),
        stats.clone(),
    );
    (out, tx, stats)
}

/// Deterministic pseudo-random content (xorshift), reproducible piece by piece.
struct Content(u64);

impl Content {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

#[tokio::test]
async fn streams_a_large_file_with_bounded_buffering() {
    const SIZE: usize = 50 * 1024 * 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        use std::io::Write;
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(dir.path().join("big")).expect("create"));
        let (mut content, mut buf) = (Content(0x9e37_79b9), vec![0u8; 1 << 20]);
        for _ in 0..SIZE / buf.len() {
            content.fill(&mut buf);
            out.write_all(&buf).expect("write");
        }
        out.flush().expect("flush");
    }
    let (mut out, tx, stats) = start_direct(
        LocalSource::Dir(dir.path().into(), Scope::all()),
        DiffCopyRequest::default(),
    );
    let (mut expect, mut scratch) = (Content(0x9e37_79b9), vec![0u8; DATA_CHUNK]);
    let (mut received, mut packets) = (0usize, 0usize);
    // The queue between the file reader and the stream, plus the chunk in hand.
    let bound = (32 + 2) * DATA_CHUNK as u64;
    while let Some(p) = out.next().await {
        let p = p.expect("no error");
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) if p.stat.is_none() => {
                tx.send(packet(PacketType::PacketReq, 0))
                    .await
                    .expect("req");
            }
            Ok(PacketType::PacketData) if p.data.is_empty() => {
                tx.send(packet(PacketType::PacketFin, 0))
                    .await
                    .expect("fin");
            }
            Ok(PacketType::PacketData) => {
                assert!(p.data.len() <= DATA_CHUNK);
                expect.fill(&mut scratch[..p.data.len()]);
                assert!(
                    p.data[..] == scratch[..p.data.len()],
                    "content at offset {received}"
                );
                received += p.data.len();
                packets += 1;
                assert!(
                    stats.bytes_sent() <= received as u64 + bound,
                    "sender ran ahead"
                );
                if packets % 32 == 0 {
                    // A slow receiver: the sender must wait, not buffer.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            _ => {}
        }
    }
    assert_eq!(received, SIZE);
    assert_eq!((stats.bytes_sent(), stats.files_sent()), (SIZE as u64, 1));
}

/// Reads up to the end of the listing (a receiver requests only listed entries).
async fn read_listing(out: &mut Replies) {
    while let Some(p) = out.next().await {
        if p.expect("listing").stat.is_none() {
            return;
        }
    }
}

#[tokio::test]
async fn rejects_unknown_and_repeated_requests() {
    let files = BTreeMap::from([("a".to_owned(), Bytes::from_static(b"x"))]);
    for ids in [&[7][..], &[0, 0][..]] {
        let (mut out, tx, _) = start_direct(
            LocalSource::Files(files.clone()),
            DiffCopyRequest::default(),
        );
        read_listing(&mut out).await;
        for &id in ids {
            tx.send(packet(PacketType::PacketReq, id))
                .await
                .expect("req");
        }
        let mut saw_err_packet = false;
        let status = loop {
            match out.next().await.expect("the stream ends with an error") {
                Ok(p) => saw_err_packet |= p.r#type == PacketType::PacketErr as i32,
                Err(status) => break status,
            }
        };
        assert!(saw_err_packet);
        assert!(status.message().contains("invalid file id"), "{status:?}");
    }
}

#[tokio::test]
async fn receiver_errors_abort_the_transfer() {
    let (mut out, tx, _) = start_direct(
        LocalSource::Files(BTreeMap::new()),
        DiffCopyRequest::default(),
    );
    let mut err = packet(PacketType::PacketErr, 0);
    err.data = Bytes::from_static(b"disk full");
    tx.send(err).await.expect("err");
    let status = loop {
        if let Err(status) = out.next().await.expect("ends with an error") {
            break status;
        }
    };
    assert_eq!(status.message(), "error from receiver: disk full");
}

#[tokio::test]
async fn dropping_the_response_stops_the_transfer() {
    let data = Bytes::from(vec![7u8; 64 * DATA_CHUNK]);
    let files = BTreeMap::from([("f".to_owned(), data)]);
    let (mut out, tx, stats) = start_direct(LocalSource::Files(files), DiffCopyRequest::default());
    read_listing(&mut out).await;
    tx.send(packet(PacketType::PacketReq, 0))
        .await
        .expect("req");
    for _ in 0..4 {
        out.next().await.expect("packet").expect("ok");
    }
    drop(out);
    // The reader lets go of the receiver's stream once the transfer has stopped.
    tokio::time::timeout(Duration::from_secs(5), tx.closed())
        .await
        .expect("transfer stops");
    assert!(stats.bytes_sent() < 64 * DATA_CHUNK as u64);
}

#[tokio::test]
async fn a_file_changed_or_removed_after_its_listing_fails_the_transfer() {
    for remove in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, "listed version").expect("write");
        let (mut out, tx, stats) = start_direct(
            LocalSource::Dir(dir.path().into(), Scope::all()),
            DiffCopyRequest::default(),
        );
        read_listing(&mut out).await;
        // Rewritten (or removed) in place between the listing and the request.
        if remove {
            std::fs::remove_file(&path).expect("remove");
        } else {
            std::fs::write(&path, "new").expect("rewrite");
        }
        tx.send(packet(PacketType::PacketReq, 0))
            .await
            .expect("req");
        let status = loop {
            if let Err(status) = out.next().await.expect("ends with an error") {
                break status;
            }
        };
        assert!(
            status.message().contains("changed while it was being sent"),
            "{status:?}"
        );
        assert_eq!(stats.changed(), Some(path));
    }
}
