//! The content store through a real tonic server on an in-memory connection,
//! driven the way the daemon's proxy store drives it, and the index.json
//! helpers on temporary directories.

use std::io;
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use super::*;
use crate::proto::containerd::services::content::v1::WriteAction;
use crate::proto::containerd::services::content::v1::content_client::ContentClient;
use crate::proto::containerd::services::content::v1::content_server::ContentServer;

const STORE: &str = "local:/cache";

async fn connect(service: ContentService) -> ContentClient<Channel> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let incoming = tokio_stream::once(Ok::<_, io::Error>(server_io));
        let server = tonic::transport::Server::builder().add_service(ContentServer::new(service));
        let _ = server.serve_with_incoming(incoming).await;
    });
    let mut client_io = Some(client_io);
    let connector = tower::service_fn(move |_: http::Uri| {
        let io = client_io.take().map(hyper_util::rt::TokioIo::new);
        async move { io.ok_or_else(|| io::Error::other("one connection only")) }
    });
    let channel = Endpoint::from_static("http://content.test")
        .connect_with_connector(connector)
        .await
        .expect("in-memory connection");
    ContentClient::new(channel)
}

/// A service with one store, `STORE`, over a fresh directory.
async fn setup() -> (tempfile::TempDir, ContentClient<Channel>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stores = ContentStores::new();
    stores.insert(STORE, dir.path());
    (dir, connect(ContentService::new(stores)).await)
}

fn req<T>(msg: T, store: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(STORE_ID_HEADER, store.parse().expect("ascii store id"));
    r
}

/// Shared with the layout tests.
pub(super) fn sha256(data: &[u8]) -> String {
    let sum = Sha256::digest(data);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn msg(action: WriteAction, offset: i64, data: &[u8]) -> WriteContentRequest {
    WriteContentRequest {
        action: action as i32,
        offset,
        data: Bytes::copy_from_slice(data),
        ..WriteContentRequest::default()
    }
}

/// One Write stream, messages sent one at a time and each answer awaited,
/// as proxy's remoteWriter does.
struct WriteCall {
    tx: mpsc::Sender<WriteContentRequest>,
    rx: Streaming<WriteContentResponse>,
}

impl WriteCall {
    async fn open(client: &mut ContentClient<Channel>) -> WriteCall {
        let (tx, rx) = mpsc::channel(4);
        let call = client
            .write(req(ReceiverStream::new(rx), STORE))
            .await
            .expect("write call");
        WriteCall {
            tx,
            rx: call.into_inner(),
        }
    }

    async fn send(&mut self, m: WriteContentRequest) -> Result<WriteContentResponse, Status> {
        self.tx.send(m).await.expect("stream open");
        match self.rx.next().await {
            Some(r) => r,
            None => Err(Status::unknown("stream ended without an answer")),
        }
    }
}

/// The proxy writer's sequence: STAT with ref/total/expected, WRITEs, COMMIT.
async fn put(
    client: &mut ContentClient<Channel>,
    reference: &str,
    data: &[u8],
    expected: &str,
) -> Result<WriteContentResponse, Status> {
    let mut w = WriteCall::open(client).await;
    let total = data.len() as i64;
    let stat = w
        .send(WriteContentRequest {
            r#ref: reference.into(),
            total,
            expected: expected.into(),
            ..msg(WriteAction::Stat, 0, b"")
        })
        .await?;
    assert_eq!(stat.offset, 0);
    let mut offset = 0;
    for chunk in data.chunks(7.max(data.len() / 3)) {
        let r = w.send(msg(WriteAction::Write, offset, chunk)).await?;
        offset += chunk.len() as i64;
        assert_eq!(r.offset, offset);
    }
    w.send(WriteContentRequest {
        total,
        expected: expected.into(),
        ..msg(WriteAction::Commit, offset, b"")
    })
    .await
}

pub(super) fn blob(dir: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    dir.join("blobs/sha256").join(hex)
}

fn ingest_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("ingest")).map_or(true, |mut d| d.next().is_none())
}

async fn read_all(
    client: &mut ContentClient<Channel>,
    digest: &str,
    offset: i64,
    size: i64,
) -> Result<Vec<u8>, Status> {
    let r = ReadContentRequest {
        digest: digest.into(),
        offset,
        size,
    };
    let mut stream = client.read(req(r, STORE)).await?.into_inner();
    let mut out = Vec::new();
    while let Some(m) = stream.next().await {
        out.extend_from_slice(&m?.data);
    }
    Ok(out)
}

#[tokio::test]
async fn write_commit_then_info_and_read() {
    let (dir, mut client) = setup().await;
    let data: Vec<u8> = (0..100u8).collect();
    let digest = sha256(&data);
    let done = put(&mut client, "layer-1", &data, &digest)
        .await
        .expect("commit");
    assert_eq!(done.action, WriteAction::Commit as i32);
    assert_eq!(done.digest, digest);
    assert_eq!(done.offset, 100);
    assert!(done.started_at.is_some() && done.updated_at.is_some());

    let path = blob(dir.path(), &digest);
    assert_eq!(std::fs::read(&path).expect("blob"), data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("blob").permissions().mode();
        assert_eq!(mode & 0o777, 0o444);
    }
    assert!(ingest_is_empty(dir.path()), "no temporary file left");

    let info = client
        .info(req(
            InfoRequest {
                digest: digest.clone(),
            },
            STORE,
        ))
        .await
        .expect("info")
        .into_inner()
        .info
        .expect("info set");
    assert_eq!((info.digest.as_str(), info.size), (digest.as_str(), 100));

    assert_eq!(
        read_all(&mut client, &digest, 0, 0).await.expect("read"),
        data
    );
    assert_eq!(
        read_all(&mut client, &digest, 10, 5).await.expect("range"),
        &data[10..15]
    );
    // A size past the end reads to the end.
    assert_eq!(
        read_all(&mut client, &digest, 90, 50).await.expect("tail"),
        &data[90..]
    );
    let past = read_all(&mut client, &digest, 101, 0).await.unwrap_err();
    assert_eq!(past.code(), Code::OutOfRange);
}

#[tokio::test]
async fn large_blobs_are_read_in_chunks() {
    let (_dir, mut client) = setup().await;
    let data: Vec<u8> = (0..(READ_CHUNK * 2 + 123))
        .map(|i| (i % 251) as u8)
        .collect();
    let digest = sha256(&data);
    put(&mut client, "big", &data, &digest)
        .await
        .expect("commit");
    let r = ReadContentRequest {
        digest: digest.clone(),
        ..ReadContentRequest::default()
    };
    let mut stream = client.read(req(r, STORE)).await.expect("read").into_inner();
    let mut sizes = Vec::new();
    let mut out = Vec::new();
    while let Some(m) = stream.next().await {
        let m = m.expect("chunk");
        assert_eq!(m.offset as usize, out.len());
        sizes.push(m.data.len());
        out.extend_from_slice(&m.data);
    }
    assert_eq!(sizes, [READ_CHUNK, READ_CHUNK, 123]);
    assert!(out == data);
}

#[tokio::test]
async fn digest_mismatch_fails_the_commit_and_stores_nothing() {
    let (dir, mut client) = setup().await;
    let wrong = sha256(b"something else");
    let err = put(&mut client, "bad", b"payload", &wrong)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().contains("unexpected commit digest"));
    assert!(!blob(dir.path(), &sha256(b"payload")).exists());
    assert!(!blob(dir.path(), &wrong).exists());
    // The stream's task has dropped the temporary file by now or very soon.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(ingest_is_empty(dir.path()));
}

#[tokio::test]
async fn size_mismatch_fails_the_commit() {
    let (dir, mut client) = setup().await;
    let mut w = WriteCall::open(&mut client).await;
    let stat = WriteContentRequest {
        r#ref: "short".into(),
        ..msg(WriteAction::Stat, 0, b"")
    };
    w.send(stat).await.expect("stat");
    w.send(msg(WriteAction::Write, 0, b"abc"))
        .await
        .expect("write");
    let commit = WriteContentRequest {
        total: 4,
        ..msg(WriteAction::Commit, 3, b"")
    };
    let err = w.send(commit).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(!blob(dir.path(), &sha256(b"abc")).exists());
}

#[tokio::test]
async fn existing_content_is_already_exists() {
    let (_dir, mut client) = setup().await;
    let digest = sha256(b"same");
    put(&mut client, "one", b"same", &digest)
        .await
        .expect("first");
    // Announced at STAT time, as content.WriteBlob does.
    let err = put(&mut client, "two", b"same", &digest).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    // Without an expected digest, found only at commit.
    let err = put(&mut client, "three", b"same", "").await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn commit_without_expectations_stores_under_the_actual_digest() {
    let (dir, mut client) = setup().await;
    let mut w = WriteCall::open(&mut client).await;
    let commit = WriteContentRequest {
        r#ref: "one-shot".into(),
        ..msg(WriteAction::Commit, 0, b"all at once")
    };
    let done = w.send(commit).await.expect("commit");
    assert_eq!(done.digest, sha256(b"all at once"));
    assert!(blob(dir.path(), &done.digest).is_file());
}

#[tokio::test]
async fn offsets_must_follow_and_zero_restarts() {
    let (_dir, mut client) = setup().await;
    let mut w = WriteCall::open(&mut client).await;
    let first = WriteContentRequest {
        r#ref: "restart".into(),
        ..msg(WriteAction::Write, 0, b"garbage")
    };
    w.send(first).await.expect("write");
    let restarted = w
        .send(msg(WriteAction::Write, 0, b"good"))
        .await
        .expect("restart");
    assert_eq!(restarted.offset, 4);
    assert_eq!(restarted.digest, sha256(b"good"));
    let stat = w.send(msg(WriteAction::Stat, 0, b"")).await.expect("stat");
    assert_eq!(
        (stat.offset, stat.digest.as_str()),
        (4, sha256(b"good").as_str())
    );
    let err = w.send(msg(WriteAction::Write, 9, b"x")).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
}

#[tokio::test]
async fn a_ref_is_held_by_one_stream_and_can_be_aborted() {
    let (_dir, mut client) = setup().await;
    let mut w = WriteCall::open(&mut client).await;
    let first = WriteContentRequest {
        r#ref: "busy".into(),
        total: 10,
        ..msg(WriteAction::Write, 0, b"12345")
    };
    w.send(first).await.expect("write");

    let status = client
        .status(req(
            StatusRequest {
                r#ref: "busy".into(),
            },
            STORE,
        ))
        .await
        .expect("status")
        .into_inner()
        .status
        .expect("status set");
    assert_eq!((status.offset, status.total), (5, 10));

    let mut other = WriteCall::open(&mut client).await;
    let stat = WriteContentRequest {
        r#ref: "busy".into(),
        ..msg(WriteAction::Stat, 0, b"")
    };
    assert_eq!(
        other.send(stat).await.unwrap_err().code(),
        Code::Unavailable
    );

    client
        .abort(req(
            AbortRequest {
                r#ref: "busy".into(),
            },
            STORE,
        ))
        .await
        .expect("abort");
    let err = w
        .send(msg(WriteAction::Write, 5, b"67890"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let gone = client
        .abort(req(
            AbortRequest {
                r#ref: "busy".into(),
            },
            STORE,
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn the_store_is_chosen_by_metadata() {
    let (_dir, mut client) = setup().await;
    let digest = sha256(b"x");
    let missing = client
        .info(Request::new(InfoRequest {
            digest: digest.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let unknown = client
        .info(req(
            InfoRequest {
                digest: digest.clone(),
            },
            "local:/elsewhere",
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert!(unknown.message().contains("unknown store"));
    let absent = client
        .info(req(InfoRequest { digest }, STORE))
        .await
        .unwrap_err();
    assert_eq!(absent.code(), Code::NotFound);
    let invalid = client
        .info(req(
            InfoRequest {
                digest: "sha256:../../etc".into(),
            },
            STORE,
        ))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
}

#[test]
fn local_store_ids_keep_the_attr_verbatim() {
    let mut stores = ContentStores::new();
    let id = stores.insert_local("./cache dir");
    assert_eq!(id, "local:./cache dir");
    assert_eq!(stores.get(&id), Some(Path::new("./cache dir")));
}
