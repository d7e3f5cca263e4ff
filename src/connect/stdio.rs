//! The `docker-container://` transport: `buildctl dial-stdio` in the
//! container, started through the engine's exec API, carries the daemon's
//! HTTP/2 on its stdin and stdout (as buildx's docker-container driver does
//! with `docker exec -i`).
//!
//! Without a TTY the engine multiplexes the process's output: each chunk has
//! an 8-byte header (stream: 1 stdout, 2 stderr; 3 zero bytes; big-endian
//! u32 length). [`Demux`] hands stdout through and keeps stderr for the
//! error message, since that is where a failing dial-stdio says why.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Stderr kept for the error message; dial-stdio's complaints are short.
const STDERR_KEEP: usize = 4096;
const SCRATCH: usize = 64 << 10;

/// Reads the engine's multiplexed stream as the process's stdout; writes go
/// to its stdin unchanged.
pub struct Demux<S> {
    inner: S,
    /// What the stream is for, in error messages.
    what: String,
    header: [u8; 8],
    header_len: usize,
    /// Bytes left in the current frame, and its stream number.
    remaining: usize,
    stream: u8,
    stderr: Vec<u8>,
    seen_stdout: bool,
    /// The engine wrote text where the daemon's first bytes belong: the
    /// rest of that frame is read as the message, then the read fails.
    engine_text: bool,
    scratch: Vec<u8>,
}

impl<S> Demux<S> {
    pub fn new(inner: S, what: String) -> Self {
        Demux {
            inner,
            what,
            header: [0; 8],
            header_len: 0,
            remaining: 0,
            stream: 0,
            stderr: Vec::new(),
            seen_stdout: false,
            engine_text: false,
            scratch: Vec::new(),
        }
    }

    fn failure(&self, detail: &str) -> io::Error {
        let stderr = String::from_utf8_lossy(&self.stderr);
        let stderr = stderr.trim();
        let text = match (detail, stderr) {
            (detail, "") => detail.to_string(),
            ("", stderr) => stderr.to_string(),
            (detail, stderr) => format!("{detail}; it said: {stderr}"),
        };
        io::Error::other(format!("{}: {text}", self.what))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Demux<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.remaining == 0 && this.engine_text {
                return Poll::Ready(Err(this.failure("")));
            }
            if this.remaining == 0 {
                while this.header_len < this.header.len() {
                    let mut head = ReadBuf::new(&mut this.header[this.header_len..]);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut head))?;
                    let n = head.filled().len();
                    if n == 0 {
                        if this.header_len > 0 {
                            return Poll::Ready(Err(
                                this.failure("the stream ended inside a frame header")
                            ));
                        }
                        // Ending before the daemon said anything: the
                        // command failed, and its stderr says why.
                        if !this.seen_stdout {
                            return Poll::Ready(Err(
                                this.failure("it exited before the daemon answered")
                            ));
                        }
                        return Poll::Ready(Ok(()));
                    }
                    this.header_len += n;
                }
                this.header_len = 0;
                this.stream = this.header[0];
                if this.stream > 2 || this.header[1..4] != [0, 0, 0] {
                    return Poll::Ready(Err(
                        this.failure("the engine's answer is not a multiplexed stdio stream")
                    ));
                }
                let len = u32::from_be_bytes([
                    this.header[4],
                    this.header[5],
                    this.header[6],
                    this.header[7],
                ]);
                this.remaining = len as usize;
                continue;
            }
            if this.stream == 1 && buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let want = match this.stream {
                1 => this.remaining.min(buf.remaining()),
                _ => this.remaining.min(SCRATCH),
            };
            this.scratch.resize(want, 0);
            let mut chunk = ReadBuf::new(&mut this.scratch[..want]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk))?;
            let n = chunk.filled().len();
            if n == 0 {
                return Poll::Ready(Err(this.failure("the stream ended inside a frame")));
            }
            this.remaining -= n;
            // An HTTP/2 server starts with a SETTINGS frame, whose first
            // length byte is 0. Text instead is the engine reporting that
            // the command could not start ("OCI runtime exec failed ...").
            if this.stream == 1 && !this.seen_stdout && this.scratch[0] != 0 {
                this.engine_text = true;
            }
            if this.stream != 1 || this.engine_text {
                let room = STDERR_KEEP.saturating_sub(this.stderr.len());
                this.stderr.extend_from_slice(&this.scratch[..n.min(room)]);
                tracing::debug!(output = %String::from_utf8_lossy(&this.scratch[..n]).trim(), "dial-stdio stderr");
                continue;
            }
            this.seen_stdout = true;
            buf.put_slice(&this.scratch[..n]);
            return Poll::Ready(Ok(()));
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Demux<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
        let mut out = vec![stream, 0, 0, 0];
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
        out
    }

    async fn read_all(wire: Vec<u8>) -> io::Result<Vec<u8>> {
        let (mut engine, client) = tokio::io::duplex(1 << 20);
        // Dribble the bytes so frames and headers arrive split.
        tokio::spawn(async move {
            for piece in wire.chunks(3) {
                engine.write_all(piece).await.unwrap();
            }
        });
        let mut demux = Demux::new(client, "dial-stdio in container x".into());
        let mut out = Vec::new();
        demux.read_to_end(&mut out).await?;
        Ok(out)
    }

    #[tokio::test]
    async fn passes_stdout_and_keeps_stderr_aside() {
        let wire = [
            frame(1, &[0, 0, 6, 4]),
            frame(2, b"some log line\n"),
            frame(1, b"more"),
            frame(1, b""),
        ]
        .concat();
        assert_eq!(read_all(wire).await.unwrap(), b"\0\0\x06\x04more");
    }

    #[tokio::test]
    async fn a_command_that_dies_early_is_explained_by_its_stderr() {
        let wire = frame(2, b"buildctl: connection refused\n");
        let err = read_all(wire).await.unwrap_err().to_string();
        assert!(err.contains("dial-stdio in container x"), "{err}");
        assert!(err.contains("connection refused"), "{err}");
    }

    #[tokio::test]
    async fn engine_text_instead_of_http2_is_reported() {
        let wire = frame(1, b"OCI runtime exec failed: executable file not found\r\n");
        let err = read_all(wire).await.unwrap_err().to_string();
        assert!(err.contains("executable file not found"), "{err}");
    }

    #[tokio::test]
    async fn a_raw_stream_is_not_taken_for_frames() {
        let err = read_all(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not a multiplexed"), "{err}");
    }
}
