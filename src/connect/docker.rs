//! The Docker Engine transport: BuildKit's Control API behind `POST /grpc`.
//!
//! dockerd serves its embedded BuildKit on the engine socket after an
//! HTTP/1.1 upgrade to h2c (moby's `api/server/router/grpc`), which is what
//! buildx's `docker` driver does. hyper performs the upgrade so that bytes the
//! engine sends right after its `101` (its HTTP/2 SETTINGS frame may share the
//! read) stay in the upgraded stream instead of being lost.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::ConnectError;

/// How much of an error body is kept for the message.
const ERROR_BODY_LIMIT: usize = 4096;

/// Upgrades a fresh engine connection to h2c; the returned stream speaks
/// HTTP/2 with dockerd as server, ready for the gRPC client.
pub(crate) async fn upgrade_to_grpc<S>(io: S, addr: &str) -> Result<Upgraded, ConnectError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let handshake_err = |e: hyper::Error| ConnectError::Handshake {
        addr: addr.to_string(),
        detail: e.to_string(),
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(handshake_err)?;
    // The connection future must be polled for the request to go out; with
    // upgrades enabled it resolves once the 101 has been read.
    let driver = tokio::spawn(conn.with_upgrades());

    let request = Request::post("/grpc")
        .header(header::HOST, "docker")
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "h2c")
        .header(header::CONTENT_LENGTH, "0")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ConnectError::Handshake {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
    let response = sender.send_request(request).await.map_err(handshake_err)?;

    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = Limited::new(response.into_body(), ERROR_BODY_LIMIT)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        driver.abort();
        return Err(ConnectError::UpgradeRefused {
            addr: addr.to_string(),
            status: status.as_u16(),
            body: engine_message(&body),
        });
    }
    let upgraded = hyper::upgrade::on(response).await.map_err(handshake_err)?;
    Ok(upgraded)
}

/// dockerd wraps errors as `{"message": "..."}`; show just the message.
fn engine_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A fake engine that answers the upgrade with a fixed response, so the
    /// byte-level handshake (and its refusal) can be checked without dockerd.
    async fn fake_engine(response: &'static [u8], trailing: &'static [u8]) -> Upgraded {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = server.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&seen).to_lowercase();
            assert!(text.starts_with("post /grpc http/1.1"), "{text}");
            assert!(text.contains("upgrade: h2c"), "{text}");
            // The 101 and the first bytes of the new protocol in one write.
            let mut out = response.to_vec();
            out.extend_from_slice(trailing);
            server.write_all(&out).await.unwrap();
            // Keep the stream open while the client reads.
            let _ = server.read(&mut buf).await;
        });
        upgrade_to_grpc(client, "docker:///test.sock")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn keeps_bytes_sent_right_after_the_101() {
        let upgraded = fake_engine(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            b"SETTINGS",
        )
        .await;
        let mut io = TokioIo::new(upgraded);
        let mut got = [0u8; 8];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"SETTINGS");
    }

    #[tokio::test]
    async fn a_refused_upgrade_names_the_engine_message() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let _ = server.read(&mut buf).await.unwrap();
            let body = br#"{"message":"page not found"}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            server.write_all(head.as_bytes()).await.unwrap();
            server.write_all(body).await.unwrap();
        });
        let err = upgrade_to_grpc(client, "docker:///x.sock")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("404"), "{err}");
        assert!(err.contains("page not found"), "{err}");
        assert!(err.contains("docker:///x.sock"), "{err}");
    }
}
