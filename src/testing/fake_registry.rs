//! A fake registry for unit tests: a TCP listener on loopback that answers
//! each connection with the next canned response and records the request
//! heads, so the HTTP, token and pagination code runs for real.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::registry::{Registry, RegistryOptions};

pub(crate) struct FakeRegistry {
    pub registry: Registry,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    server: JoinHandle<Vec<String>>,
}

impl FakeRegistry {
    /// Serves `responses` in order, one per connection, for repository `repo`.
    pub async fn start(repo: &str, responses: Vec<String>) -> FakeRegistry {
        Self::start_with(repo, |_| responses).await
    }

    /// Like `start`, with responses that may name the fake's own address.
    pub async fn start_with(
        repo: &str,
        responses: impl FnOnce(&str) -> Vec<String>,
    ) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let responses = responses(&addr);
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for response in responses {
                let (mut stream, _) = listener.accept().await.unwrap();
                seen.push(read_head(&mut stream).await);
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
            seen
        });
        let repository = format!("{addr}/{repo}").parse().unwrap();
        FakeRegistry {
            addr,
            registry: Registry::new(
                repository,
                RegistryOptions {
                    docker_config: Some(crate::registry::DockerConfig::default()),
                    ..RegistryOptions::default()
                },
            ),
            server,
        }
    }

    /// The client reads credentials from this Docker config (JSON) instead.
    pub fn with_docker_config(mut self, json: &str) -> FakeRegistry {
        let config = crate::registry::DockerConfig::parse(json.as_bytes()).unwrap();
        let options = RegistryOptions {
            docker_config: Some(config),
            ..RegistryOptions::default()
        };
        self.registry = Registry::new(self.registry.repository().clone(), options);
        self
    }

    /// A complete response; `headers` are `Name: value` lines.
    pub fn reply(status: u16, headers: &[&str], body: &str) -> String {
        // One answer per connection, so the client's pool must not keep it.
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        format!("{head}\r\n{body}")
    }

    /// The request heads received, in order.
    pub async fn requests(self) -> Vec<String> {
        self.server.await.unwrap()
    }
}

async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
