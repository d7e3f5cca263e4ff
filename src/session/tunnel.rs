//! The session tunnel: `Control.Session` carries the raw bytes of a second
//! HTTP/2 connection on which the daemon is the client and we serve.
//!
//! [`TunnelIo`] turns the two directions of that bidi stream into one
//! `AsyncRead + AsyncWrite`, so tonic's server can run on it unchanged
//! (upstream: session/grpchijack/dial.go does the same with a net.Conn).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;
use tonic::Streaming;
use tonic::transport::server::Connected;

use crate::proto::moby::buildkit::v1::BytesMessage;

/// Largest chunk sent in one message: the Go side writes one message per
/// write, and old engines cap received messages at 4 MiB.
const MAX_CHUNK: usize = 1 << 20;

/// One end of the tunnel as a byte stream.
pub struct TunnelIo {
    inbound: Streaming<BytesMessage>,
    pending: Bytes,
    outbound: PollSender<BytesMessage>,
    /// Fired on the first inbound bytes: the daemon has registered the
    /// session and sent its HTTP/2 preface, so a Solve may now name it.
    first_bytes: Option<oneshot::Sender<()>>,
    inbound_done: bool,
}

impl TunnelIo {
    pub fn new(
        inbound: Streaming<BytesMessage>,
        outbound: mpsc::Sender<BytesMessage>,
        first_bytes: oneshot::Sender<()>,
    ) -> Self {
        Self {
            inbound,
            pending: Bytes::new(),
            outbound: PollSender::new(outbound),
            first_bytes: Some(first_bytes),
            inbound_done: false,
        }
    }
}

impl Connected for TunnelIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for TunnelIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                buf.put_slice(&self.pending[..n]);
                self.pending.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.inbound_done {
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut self.inbound).poll_next(cx)) {
                // Zero-length messages occur and are not EOF.
                Some(Ok(msg)) => {
                    if !msg.data.is_empty()
                        && let Some(tx) = self.first_bytes.take()
                    {
                        let _ = tx.send(());
                    }
                    self.pending = msg.data;
                }
                Some(Err(status)) => {
                    self.inbound_done = true;
                    // A cancelled session ends the tunnel like EOF; anything
                    // else is a real failure worth surfacing.
                    if status.code() == tonic::Code::Cancelled {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Ready(Err(io::Error::other(format!(
                        "session stream failed: {}",
                        status.message()
                    ))));
                }
                None => {
                    self.inbound_done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl AsyncWrite for TunnelIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.outbound.poll_reserve(cx)).map_err(|_| closed())?;
        let n = buf.len().min(MAX_CHUNK);
        let msg = BytesMessage {
            data: Bytes::copy_from_slice(&buf[..n]),
        };
        self.outbound.send_item(msg).map_err(|_| closed())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outbound.close();
        Poll::Ready(Ok(()))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "session tunnel closed")
}

/// Adapts the outbound channel to the request stream of `Control.Session`.
pub fn outbound_stream(rx: mpsc::Receiver<BytesMessage>) -> impl Stream<Item = BytesMessage> {
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
