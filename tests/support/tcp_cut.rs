//! A TCP proxy on a loopback port that a test can cut: every connection is
//! reset and the port stops listening, which is what BuildKit sees of a
//! registry that was stopped. It can cut by itself once the client has sent
//! a number of bytes, to stop a registry in the middle of an upload without
//! racing it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct TcpCut {
    /// `127.0.0.1:PORT`, the address to give BuildKit.
    pub addr: String,
    cut: watch::Sender<bool>,
    /// Bytes sent towards the target, over all connections.
    sent: Arc<AtomicU64>,
    /// Cut once `sent` passes this (u64::MAX: never by itself).
    limit: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TcpCut {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl TcpCut {
    /// Forwards a free loopback port to `target` (`host:port`).
    pub fn start(target: &str) -> TcpCut {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind a loopback port");
        let addr = listener.local_addr().unwrap().to_string();
        let (cut, cut_rx) = watch::channel(false);
        let sent = Arc::new(AtomicU64::new(0));
        let limit = Arc::new(AtomicU64::new(u64::MAX));
        let shared = Link {
            target: target.to_string(),
            cut: Arc::new(cut.clone()),
            sent: sent.clone(),
            limit: limit.clone(),
        };
        runtime.spawn(async move {
            let mut stop = cut_rx.clone();
            loop {
                let client = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => break,
                    },
                    _ = stop.wait_for(|c| *c) => break,
                };
                let link = shared.clone();
                let mut stop = cut_rx.clone();
                tokio::spawn(async move {
                    // Reset rather than FIN: a killed process's socket with
                    // unread data is reset by the kernel.
                    let _ = client.set_zero_linger();
                    tokio::select! {
                        _ = link.forward(client) => {}
                        _ = stop.wait_for(|c| *c) => {}
                    }
                });
            }
            // The port refuses connections from now on.
            drop(listener);
        });
        TcpCut {
            addr,
            cut,
            sent,
            limit,
            runtime: Some(runtime),
        }
    }

    /// Cuts now.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// Cuts once the clients have sent more than `bytes` in total.
    pub fn cut_after_sent(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::SeqCst);
        if self.sent.load(Ordering::SeqCst) > bytes {
            self.cut();
        }
    }

    /// Whether the proxy was cut.
    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }

    /// Bytes the clients sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Link {
    target: String,
    cut: Arc<watch::Sender<bool>>,
    sent: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
}

impl Link {
    async fn forward(&self, client: TcpStream) -> std::io::Result<()> {
        let upstream = TcpStream::connect(&self.target).await?;
        let (mut client_rx, mut client_tx) = client.into_split();
        let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
        let up = self.pump(&mut client_rx, &mut upstream_tx, true);
        let down = self.pump(&mut upstream_rx, &mut client_tx, false);
        tokio::try_join!(up, down)?;
        Ok(())
    }

    async fn pump<R, W>(&self, from: &mut R, to: &mut W, counted: bool) -> std::io::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return to.shutdown().await;
            }
            if counted {
                let total = self.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if total > self.limit.load(Ordering::SeqCst) {
                    let _ = self.cut.send(true);
                    // The select around forward drops this connection.
                    std::future::pending::<()>().await;
                }
            }
            to.write_all(&buf[..n]).await?;
        }
    }
}
