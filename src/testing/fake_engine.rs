//! A fake engine for unit tests: a unix socket that answers each connection
//! with the next canned response and records what it was sent.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use crate::docker_api::Engine;

pub(crate) struct FakeEngine {
    pub engine: Engine,
    server: JoinHandle<Vec<(String, Vec<u8>)>>,
    _dir: tempfile::TempDir,
}

impl FakeEngine {
    /// Serves `responses` in order, one per connection.
    pub fn start(responses: Vec<Vec<u8>>) -> FakeEngine {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for response in responses {
                let (mut stream, _) = listener.accept().await.unwrap();
                seen.push(read_request(&mut stream).await);
                // The client may have gone (it stopped reading early).
                let _ = stream.write_all(&response).await;
                let _ = stream.shutdown().await;
            }
            seen
        });
        FakeEngine {
            engine: Engine::new(socket),
            server,
            _dir: dir,
        }
    }

    /// A complete response with a JSON (or empty) body.
    pub fn reply(status: u16, body: &str) -> Vec<u8> {
        Self::reply_bytes(status, body.as_bytes())
    }

    pub fn reply_bytes(status: u16, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// The request lines and headers received, in order.
    pub async fn requests(self) -> Vec<String> {
        self.finish()
            .await
            .into_iter()
            .map(|(head, _)| head)
            .collect()
    }

    /// Heads and (de-chunked) bodies received, in order.
    pub async fn finish(self) -> Vec<(String, Vec<u8>)> {
        self.server.await.unwrap()
    }
}

async fn read_request(stream: &mut tokio::net::UnixStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client closed before sending a request");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf.split_off(head_end);
    let lower = head.to_ascii_lowercase();
    if lower.contains("transfer-encoding: chunked") {
        while !rest.ends_with(b"0\r\n\r\n") {
            let n = stream.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        return (head, dechunk(&rest));
    }
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while rest.len() < length {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&chunk[..n]);
    }
    (head, rest)
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
        raw = &raw[eol + 2 + size + 2..];
    }
    out
}
