//! A test-only byte proxy: it accepts on its own unix socket, performs the
//! engine's `POST /grpc` upgrade on a fresh engine connection, then copies raw
//! bytes both ways. The client sees exactly what a standalone buildkitd
//! serves (HTTP/2 with prior knowledge) while BuildKit's real server answers.
//! A test can freeze it (a hung daemon) or cut it (a killed daemon).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

pub struct GrpcProxy {
    pub socket: PathBuf,
    /// Once set, no byte crosses any more while both sockets stay open: a
    /// daemon that hangs, or a peer that vanished without a FIN.
    frozen: Arc<AtomicBool>,
    /// Once sent, every connection is closed and no new one is accepted:
    /// what a client sees of a daemon killed with SIGKILL.
    cut: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
    /// An Option so Drop can shut it down without blocking, which also works
    /// when the proxy is dropped inside an async test.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for GrpcProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl GrpcProxy {
    /// Starts the proxy on its own runtime so it serves while the test runs
    /// the rbuild binary synchronously.
    pub fn start(engine_socket: &Path) -> GrpcProxy {
        // Short path: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rbp")
            .tempdir_in("/tmp")
            .expect("temp dir for the proxy socket");
        let socket = dir.path().join("bk.sock");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&socket).expect("bind proxy socket")
        };
        let engine = engine_socket.to_path_buf();
        let frozen = Arc::new(AtomicBool::new(false));
        let gate = frozen.clone();
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        let listening = socket.clone();
        runtime.spawn(async move {
            let mut stop = cut_rx.clone();
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|cut| *cut) => break,
                };
                let engine = engine.clone();
                let gate = gate.clone();
                let mut stop = cut_rx.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        r = forward_gated(client, &engine, gate) => if let Err(e) = r {
                            eprintln!("grpc proxy: {e}");
                        },
                        // Dropping the future closes both sockets.
                        _ = stop.wait_for(|cut| *cut) => {}
                    }
                });
            }
            // A dead daemon's socket refuses connections.
            drop(listener);
            let _ = std::fs::remove_file(&listening);
        });
        GrpcProxy {
            socket,
            frozen,
            cut,
            _dir: dir,
            runtime: Some(runtime),
        }
    }

    /// Stops forwarding on every connection, without closing any.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    /// Closes every connection and stops listening, as a killed daemon
    /// would.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// The proxy in rbuild's address syntax.
    pub fn address(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

/// Opens a fresh engine connection, upgrades it via `POST /grpc`, then copies
/// bytes between it and `client` until either side closes.
pub async fn forward<C>(client: C, engine: &Path) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    forward_gated(client, engine, Arc::new(AtomicBool::new(false))).await
}

async fn forward_gated<C>(
    mut client: C,
    engine: &Path,
    frozen: Arc<AtomicBool>,
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut upstream = UnixStream::connect(engine).await?;
    upstream
        .write_all(
            b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n\
              Upgrade: h2c\r\nContent-Length: 0\r\n\r\n",
        )
        .await?;
    // Read the whole 101 header block before anything else crosses; bytes
    // after it already belong to HTTP/2 and must reach the client.
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = upstream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("engine closed during upgrade"));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(pos) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(std::io::Error::other(format!(
            "engine refused the upgrade: {}",
            String::from_utf8_lossy(&head)
        )));
    }
    client.write_all(&head[end..]).await?;
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    let up = pump(&mut client_rx, &mut upstream_tx, &frozen);
    let down = pump(&mut upstream_rx, &mut client_tx, &frozen);
    tokio::try_join!(up, down)?;
    Ok(())
}

/// Copies until EOF; while frozen it holds what it read and keeps both ends open.
async fn pump<R, W>(from: &mut R, to: &mut W, frozen: &AtomicBool) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = from.read(&mut buf).await?;
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
    }
}
