//! The daemon's byte stream over the ssh client's stdio, once the login
//! worked: stdout and stdin pass through, stderr is kept (bounded) so a
//! connection that breaks later still says why.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use super::failure::bounded;
use crate::connect::rewind::Rewind;

/// Stderr kept for the error message: ssh's complaints and a remote
/// command's last words are short, a banner before them is not.
const STDERR_KEEP: usize = 8 << 10;

/// Appends to the kept stderr, keeping its end: the reason comes last.
pub(super) fn keep(kept: &mut Vec<u8>, data: &[u8]) {
    tracing::debug!(output = %String::from_utf8_lossy(data).trim(), "ssh stderr");
    kept.extend_from_slice(data);
    if kept.len() > STDERR_KEEP {
        kept.drain(..kept.len() - STDERR_KEEP);
    }
}

/// The daemon's byte stream over the ssh client's stdio. Dropping it kills
/// the client (and with it the remote command).
pub(crate) struct SshStream {
    _child: Child,
    /// `None` once shut down: only closing the pipe tells ssh the input
    /// ended (tokio's shutdown of a child's stdin does not close it).
    stdin: Option<ChildStdin>,
    /// With the daemon's first bytes, read while checking the login, in front.
    stdout: Rewind<ChildStdout>,
    stderr: Option<ChildStderr>,
    kept: Vec<u8>,
    host: String,
}

impl SshStream {
    pub(super) fn new(
        child: Child,
        stdin: ChildStdin,
        stdout: ChildStdout,
        stderr: ChildStderr,
        head: Vec<u8>,
        host: &str,
    ) -> SshStream {
        SshStream {
            _child: child,
            stdin: Some(stdin),
            stdout: Rewind::new(head, stdout),
            stderr: Some(stderr),
            kept: Vec::new(),
            host: host.to_string(),
        }
    }

    /// Drains whatever stderr has ready, so a chatty remote command never
    /// blocks on a full pipe; the waker is registered with the read's.
    fn drain_stderr(&mut self, cx: &mut Context<'_>) {
        let mut chunk = [0u8; 1024];
        while let Some(stderr) = self.stderr.as_mut() {
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(stderr).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    let data = buf.filled().to_vec();
                    keep(&mut self.kept, &data);
                }
                Poll::Ready(_) => self.stderr = None,
                Poll::Pending => break,
            }
        }
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.drain_stderr(cx);
        let before = buf.filled().len();
        let result = std::task::ready!(Pin::new(&mut this.stdout).poll_read(cx, buf));
        // The stream ended while rbuild was still sending: ssh's last line
        // says why (`Connection to HOST closed by remote host`, a timeout).
        // After a half-close the end is the answer's.
        let ended = result.is_ok() && buf.filled().len() == before && buf.remaining() > 0;
        if ended && this.stdin.is_some() {
            let text = String::from_utf8_lossy(&this.kept);
            if let Some(line) = text.lines().map(str::trim).rfind(|l| !l.is_empty()) {
                return Poll::Ready(Err(io::Error::other(format!(
                    "ssh to {}: {}",
                    this.host,
                    bounded(line)
                ))));
            }
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stdin.as_mut() {
            Some(stdin) => Pin::new(stdin).poll_write(cx, data),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stdin.as_mut() {
            Some(stdin) => Pin::new(stdin).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// The remote command sees the end of its stdin, as over a socket's
    /// half-close; the daemon's answer still comes back.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(stdin) = this.stdin.as_mut() {
            std::task::ready!(Pin::new(stdin).poll_flush(cx))?;
        }
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}
