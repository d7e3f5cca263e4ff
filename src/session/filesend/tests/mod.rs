//! Exports through a real tonic server over an in-memory connection, with the test playing
//! the daemon (its exporters are the gRPC client of `FileSend.DiffCopy`).

mod local;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status, Streaming};

use super::service::{DIFF_COPY_PATH, RawCodec};
use super::*;
use crate::proto::moby::filesync::v1::BytesMessage;

/// Serves `targets` on an in-memory HTTP/2 connection.
async fn serve(targets: HashMap<u32, ExportTarget>) -> (Channel, Outputs) {
    let (service, outputs) = FileSendService::new(targets);
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let incoming = tokio_stream::once(Ok::<_, io::Error>(server_io));
        let server = tonic::transport::Server::builder().add_service(service);
        let _ = server.serve_with_incoming(incoming).await;
    });
    let mut client_io = Some(client_io);
    let connector = tower::service_fn(move |_: http::Uri| {
        let io = client_io.take().map(hyper_util::rt::TokioIo::new);
        async move { io.ok_or_else(|| io::Error::other("one connection only")) }
    });
    let channel = Endpoint::from_static("http://filesend.test")
        .connect_with_connector(connector)
        .await
        .expect("in-memory connection");
    (channel, outputs)
}

/// Opens `DiffCopy` as the daemon does, sending what arrives on `outgoing`.
async fn open_call(
    channel: &Channel,
    md: &[(&'static str, &str)],
    outgoing: mpsc::Receiver<Bytes>,
) -> Result<Streaming<Bytes>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(ReceiverStream::new(outgoing));
    for (key, value) in md {
        let value: MetadataValue<_> = value.parse().expect("ascii metadata");
        request.metadata_mut().append(*key, value);
    }
    let path = http::uri::PathAndQuery::from_static(DIFF_COPY_PATH);
    Ok(grpc.streaming(request, path, RawCodec).await?.into_inner())
}

/// The tar/oci/docker side: `BytesMessage` chunks, CloseSend, then wait for the end.
async fn send_file(
    channel: &Channel,
    md: &[(&'static str, &str)],
    chunks: &[&[u8]],
) -> Result<(), Status> {
    let (tx, rx) = mpsc::channel(chunks.len() + 1);
    for chunk in chunks {
        let message = BytesMessage {
            data: Bytes::copy_from_slice(chunk),
        };
        tx.send(message.encode_to_vec().into())
            .await
            .expect("queued");
    }
    // CloseSend: the handler answers only once it has seen the whole file.
    drop(tx);
    let mut responses = open_call(channel, md, rx).await?;
    let extra = responses.message().await?;
    assert!(extra.is_none(), "the client sends nothing back");
    Ok(())
}

/// Names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn tarball(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[tokio::test]
async fn tar_export_appears_only_at_commit() {
    let base = tempfile::tempdir().expect("tempdir");
    let dest = base.path().join("image.tar");
    let (channel, outputs) = serve(HashMap::from([(0, ExportTarget::File(dest.clone()))])).await;
    let data = tarball(7 << 20, 1);
    let chunks: Vec<&[u8]> = data.chunks(3 << 20).collect();
    // No exporter id: daemons before v0.13 mean exporter 0.
    send_file(&channel, &[], &chunks).await.expect("export");
    assert!(!dest.exists(), "nothing at dest before commit");
    assert_eq!(names(base.path()).len(), 1, "one temp file beside dest");

    let written = outputs.commit().await.expect("commit");
    assert_eq!(written, [dest.as_path()]);
    assert!(std::fs::read(&dest).expect("read") == data, "exact bytes");
    assert_eq!(names(base.path()), ["image.tar"]);
}

#[tokio::test]
async fn discarded_exports_leave_the_previous_file() {
    let base = tempfile::tempdir().expect("tempdir");
    let dest = base.path().join("out.tar");
    std::fs::write(&dest, "previous").expect("write");
    let (channel, outputs) = serve(HashMap::from([(0, ExportTarget::File(dest.clone()))])).await;
    let md = [("buildkit-attachable-exporter-id", "0")];
    send_file(&channel, &md, &[b"new".as_slice()])
        .await
        .expect("export");
    drop(outputs);
    assert_eq!(std::fs::read_to_string(&dest).expect("read"), "previous");
    assert_eq!(names(base.path()), ["out.tar"], "no temp files left");
}

#[tokio::test]
async fn bad_ids_missing_parents_and_missing_exports_fail() {
    let base = tempfile::tempdir().expect("tempdir");
    let nowhere = base.path().join("no/such/dir/out.tar");
    let targets = HashMap::from([
        (0, ExportTarget::File(nowhere.clone())),
        (1, ExportTarget::File(base.path().join("never.tar"))),
    ]);
    let (channel, outputs) = serve(targets).await;
    let unknown = send_file(&channel, &[("buildkit-attachable-exporter-id", "7")], &[])
        .await
        .expect_err("unknown id");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let invalid = send_file(&channel, &[("buildkit-attachable-exporter-id", "x")], &[])
        .await
        .expect_err("invalid id");
    assert_eq!(invalid.code(), Code::InvalidArgument, "{invalid:?}");

    let missing = send_file(&channel, &[], &[b"x".as_slice()])
        .await
        .expect_err("missing parent");
    assert!(
        missing.message().contains("no/such/dir") && missing.message().contains("does not exist"),
        "{missing:?}"
    );
    // It failed here, not on the daemon: the build's error says so.
    let local = outputs.local_failure().expect("a local failure");
    assert_eq!(local.path, nowhere);
    assert!(local.message.contains("does not exist"), "{local:?}");
    let err = outputs.commit().await.expect_err("failed export");
    assert!(err.to_string().contains("out.tar"), "{err}");

    // An export the daemon never sent.
    let (_, outputs) = serve(HashMap::from([(
        0,
        ExportTarget::File(base.path().join("x.tar")),
    )]))
    .await;
    let err = outputs.commit().await.expect_err("never arrived");
    assert!(matches!(err, FileSendError::Missing(_)), "{err}");
    assert!(names(base.path()).is_empty());
}

/// Collects what a [`StreamSink`] receives.
#[derive(Default)]
struct Collector {
    md: Mutex<Vec<BTreeMap<String, String>>>,
    task: Mutex<Option<tokio::task::JoinHandle<Vec<u8>>>>,
    received: Mutex<Option<(Vec<u8>, bool)>>,
}

#[tonic::async_trait]
impl StreamSink for Collector {
    async fn open(
        &self,
        md: &BTreeMap<String, String>,
    ) -> Result<Option<mpsc::Sender<Bytes>>, String> {
        self.md.lock().expect("lock").push(md.clone());
        if md.get("containerimage.config.digest").map(String::as_str) == Some("sha256:have") {
            return Ok(None);
        }
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let task = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(chunk) = rx.recv().await {
                all.extend_from_slice(&chunk);
            }
            all
        });
        *self.task.lock().expect("lock") = Some(task);
        Ok(Some(tx))
    }

    async fn close(&self, ok: bool) -> Result<(), String> {
        let task = self.task.lock().expect("lock").take();
        let data = match task {
            Some(task) => task.await.map_err(|e| e.to_string())?,
            None => return Err("closed before open".into()),
        };
        *self.received.lock().expect("lock") = Some((data, ok));
        Ok(())
    }
}

#[tokio::test]
async fn stream_targets_receive_chunks_or_skip() {
    let sink = Arc::new(Collector::default());
    let skip = Arc::new(Collector::default());
    let targets = HashMap::from([
        (0, ExportTarget::Stream(sink.clone())),
        (1, ExportTarget::Stream(skip.clone())),
    ]);
    let (channel, outputs) = serve(targets).await;
    let data = tarball(1 << 20, 9);
    let chunks: Vec<&[u8]> = data.chunks(100_000).collect();
    let md = [
        ("buildkit-attachable-exporter-id", "0"),
        ("exporter-md-containerimage.config.digest", "sha256:new"),
        ("exporter-md-image.name", "a:1"),
        ("exporter-md-image.name", "b:2"),
    ];
    send_file(&channel, &md, &chunks).await.expect("export");
    let (received, ok) = sink.received.lock().expect("lock").take().expect("closed");
    assert!(ok && received == data, "every chunk, in order");
    let seen = sink.md.lock().expect("lock")[0].clone();
    assert_eq!(seen["containerimage.config.digest"], "sha256:new");
    assert_eq!(
        seen["image.name"], "a:1,b:2",
        "repeated keys joined as upstream"
    );

    let md = [
        ("buildkit-attachable-exporter-id", "1"),
        ("exporter-md-containerimage.config.digest", "sha256:have"),
    ];
    let skipped = send_file(&channel, &md, &[]).await.expect_err("skip");
    assert_eq!(skipped.code(), Code::AlreadyExists);
    assert!(skip.received.lock().expect("lock").is_none());
    assert_eq!(
        outputs.commit().await.expect("commit"),
        Vec::<PathBuf>::new()
    );
}
