//! Oversized messages and header floods from the daemon: each call is refused at its
//! limit before the client buffers it, and the session goes on serving.

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request};

use super::FakeDaemon;
use super::filesync::diff_copy;
use crate::proto::fsutil::types::Packet;
use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::moby::buildkit::secrets::v1::GetSecretRequest;
use crate::proto::moby::buildkit::secrets::v1::secrets_client::SecretsClient;
use crate::proto::moby::filesync::v1::CredentialsRequest;
use crate::proto::moby::filesync::v1::auth_client::AuthClient;
use crate::proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use crate::session::SessionConfig;
use crate::session::filesync::{LocalSource, Scope};

fn context() -> (tempfile::TempDir, SessionConfig) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let source = LocalSource::Dir(dir.path().to_path_buf(), Scope::all());
    let config = SessionConfig {
        sources: [("context".to_string(), source)].into(),
        ..SessionConfig::default()
    };
    (dir, config)
}

async fn still_serves(channel: &Channel) {
    let got = diff_copy(channel, "context", &[], &[])
        .await
        .expect("still served");
    assert!(got.files.contains_key("Dockerfile"));
}

#[tokio::test]
async fn oversized_messages_are_refused_and_the_session_lives_on() {
    let (_dir, config) = context();
    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(config).await;

    // Clients encode messages of any size by default: the limits are the session's.
    // 20 MiB in one fsutil packet, past the 16 MiB the session takes in one message.
    let (tx, rx) = mpsc::channel(2);
    let huge = Packet {
        r#type: PacketType::PacketReq as i32,
        data: Bytes::from(vec![0u8; 20 << 20]),
        ..Packet::default()
    };
    tx.send(huge).await.unwrap();
    let mut request = Request::new(ReceiverStream::new(rx));
    let dir: MetadataValue<_> = "context".parse().unwrap();
    request.metadata_mut().insert("dir-name", dir);
    let mut filesync = FileSyncClient::new(d.channel.clone());
    let outcome = match filesync.diff_copy(request).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("a 20 MiB message was taken in"),
                    Err(status) => break status,
                }
            }
        }
        Err(status) => status,
    };
    assert!(
        outcome
            .message()
            .contains("decoded message length too large"),
        "{outcome:?}"
    );
    drop(tx);

    // 5 MiB of host name, and of secret id, past the 4 MiB of the small services.
    let mut auth = AuthClient::new(d.channel.clone());
    let host = "h".repeat(5 << 20);
    let err = auth
        .credentials(CredentialsRequest { host })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    let mut secrets = SecretsClient::new(d.channel.clone());
    let request = GetSecretRequest {
        id: "s".repeat(5 << 20),
        ..GetSecretRequest::default()
    };
    let err = secrets.get_secret(request).await.expect_err("refused");
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");

    still_serves(&d.channel).await;
    session.close().await;
}

#[tokio::test]
async fn a_long_dockerignore_gets_through_and_a_header_flood_does_not() {
    let (_dir, config) = context();
    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(config).await;

    // 600 patterns of ~200 bytes: a long ignore file, far past hyper's 16 KiB default
    // (the frontend sends each pattern as a header value).
    let pattern = format!("generated/{}/*.o", "x".repeat(180));
    let long: Vec<(&'static str, &str)> = (0..600)
        .map(|_| ("exclude-patterns", pattern.as_str()))
        .collect();
    let got = diff_copy(&d.channel, "context", &long, &[])
        .await
        .expect("a long ignore file");
    assert!(got.files.contains_key("Dockerfile"));

    // 4 MiB of headers: HTTP/2 refuses the header block (and with it the connection, as
    // its header compression state is lost) instead of buffering it.
    let flood = "y".repeat(8 << 10);
    let md: Vec<(&'static str, &str)> = (0..512)
        .map(|_| ("exclude-patterns", flood.as_str()))
        .collect();
    let call = diff_copy(&d.channel, "context", &md, &[]);
    let err = tokio::time::timeout(std::time::Duration::from_secs(10), call)
        .await
        .expect("refused at once, not hung")
        .expect_err("refused");
    assert!(err.message().contains("transport error"), "{err:?}");
    session.close().await;
}

#[tokio::test]
async fn open_calls_are_capped() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(SessionConfig::default()).await;
    let mut health = HealthClient::new(d.channel.clone());
    // Watch calls stay open until the daemon drops them.
    let mut open = Vec::new();
    for _ in 0..crate::session::MAX_CONCURRENT_CALLS {
        let watch = health
            .watch(HealthCheckRequest::default())
            .await
            .expect("open");
        open.push(watch.into_inner());
    }
    let mut extra = health.clone();
    let next = tokio::spawn(async move { extra.watch(HealthCheckRequest::default()).await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(!next.is_finished(), "a call past the cap was taken in");
    // One call ends: the waiting one goes through.
    drop(open.pop());
    let admitted = tokio::time::timeout(std::time::Duration::from_secs(10), next)
        .await
        .expect("admitted once a slot is free")
        .expect("joined");
    assert!(admitted.is_ok(), "{admitted:?}");
    session.close().await;
}
