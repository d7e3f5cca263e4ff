//! `POST /images/load`: an image tarball streamed in, JSON lines back.
//!
//! The engine reads the whole tarball before it answers `200` and then
//! reports per image (`{"stream":"Loaded image: …"}`) or fails in-band
//! (`{"errorDetail":{"message":…},"error":…}`) — a truncated or corrupt
//! tarball still gets `200` (moby's `api/server/router/image/image_routes.go`).

use std::convert::Infallible;

use bytes::{Bytes, BytesMut};
use http::{Method, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::http::{read_limited, request, status_error};
use super::{Engine, EngineError};

/// One JSON line of the answer; a longer line is not the engine's.
const MAX_LINE: usize = 1 << 20;

const WHAT: &str = "loading an image tarball into the engine";

impl Engine {
    /// Streams a docker-format image tarball into the engine as its chunks
    /// arrive and returns the loaded names (or ids, for unnamed images).
    ///
    /// The body ends when every sender of `chunks` is dropped, so a producer
    /// that fails half-way must not just drop its sender (the engine would
    /// see a short tarball and report it); drop this future instead, which
    /// closes the connection and makes the engine discard the upload.
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read; [`EngineError::Reported`] when the engine rejects the tarball
    /// in its streamed answer.
    pub async fn load(&self, chunks: mpsc::Receiver<Bytes>) -> Result<Vec<String>, EngineError> {
        let frames = futures::stream::unfold(chunks, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
        });
        let mut request = request(
            Method::POST,
            "/images/load?quiet=1",
            StreamBody::new(frames),
            WHAT,
        )?;
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/x-tar"),
        );
        self.exchange(WHAT, request, |response| async move {
            let status = response.status();
            if !status.is_success() {
                let body = read_limited(response.into_body(), 64 << 10, WHAT).await?;
                return Err(status_error(WHAT, status, &body));
            }
            let mut body = response.into_body();
            let mut lines = LoadLines::default();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.broken(WHAT, e))?;
                if let Ok(data) = frame.into_data() {
                    lines.push(&data)?;
                }
            }
            lines.finish()
        })
        .await
    }
}

/// Splits the answer into lines across frame boundaries and folds them.
#[derive(Default)]
struct LoadLines {
    partial: BytesMut,
    loaded: Vec<String>,
}

impl LoadLines {
    fn push(&mut self, data: &[u8]) -> Result<(), EngineError> {
        self.partial.extend_from_slice(data);
        while let Some(eol) = self.partial.iter().position(|&b| b == b'\n') {
            let line = self.partial.split_to(eol + 1);
            self.line(&line)?;
        }
        if self.partial.len() > MAX_LINE {
            return Err(EngineError::BadResponse {
                what: WHAT.to_string(),
                detail: format!("a response line longer than {MAX_LINE} bytes"),
            });
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<String>, EngineError> {
        let rest = std::mem::take(&mut self.partial);
        self.line(&rest)?;
        Ok(self.loaded)
    }

    fn line(&mut self, line: &[u8]) -> Result<(), EngineError> {
        #[derive(Deserialize)]
        struct Line {
            stream: Option<String>,
            error: Option<String>,
            #[serde(rename = "errorDetail")]
            error_detail: Option<ErrorDetail>,
        }
        #[derive(Deserialize)]
        struct ErrorDetail {
            message: Option<String>,
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let Ok(parsed) = serde_json::from_slice::<Line>(line) else {
            // Not fatal: the load itself may well have worked.
            tracing::warn!(line = %String::from_utf8_lossy(line), "unparsed engine load output");
            return Ok(());
        };
        let detail = parsed.error_detail.and_then(|d| d.message);
        if let Some(message) = detail.or(parsed.error) {
            return Err(EngineError::Reported {
                what: WHAT.to_string(),
                message,
            });
        }
        if let Some(stream) = parsed.stream {
            // Named images say "Loaded image: name:tag", unnamed ones
            // "Loaded image ID: sha256:…" (moby's image exporters).
            for text in stream.lines() {
                let name = text
                    .strip_prefix("Loaded image ID: ")
                    .or_else(|| text.strip_prefix("Loaded image: "));
                if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
                    self.loaded.push(name.to_string());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_engine::FakeEngine;

    fn fold(chunks: &[&str]) -> Result<Vec<String>, EngineError> {
        let mut lines = LoadLines::default();
        for chunk in chunks {
            lines.push(chunk.as_bytes())?;
        }
        lines.finish()
    }

    #[test]
    fn names_and_ids_are_collected_across_chunk_boundaries() {
        let loaded = fold(&[
            r#"{"stream":"Loaded image: a/b:1\n"}"#,
            "\n{\"stream\":\"Loaded ima",
            r#"ge ID: sha256:abc\n"}"#,
            "\n{\"status\":\"Loading layer\",\"progressDetail\":{}}\nnot json\n",
        ])
        .unwrap();
        assert_eq!(loaded, vec!["a/b:1", "sha256:abc"]);
    }

    #[test]
    fn an_error_line_fails_the_load_with_its_message() {
        let err =
            fold(&[r#"{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}"#])
                .unwrap_err();
        assert!(
            matches!(&err, EngineError::Reported { message, .. } if message == "unexpected EOF")
        );
        let err = fold(&[r#"{"error":"only the short form"}"#]).unwrap_err();
        assert!(err.to_string().contains("only the short form"), "{err}");
    }

    #[test]
    fn an_endless_line_is_bounded() {
        let mut lines = LoadLines::default();
        let big = vec![b'x'; MAX_LINE + 1];
        assert!(matches!(
            lines.push(&big),
            Err(EngineError::BadResponse { .. })
        ));
    }

    #[tokio::test]
    async fn chunks_are_streamed_as_the_request_body() {
        let fake = FakeEngine::start(vec![FakeEngine::reply(
            200,
            "{\"stream\":\"Loaded image: x:1\\n\"}\n",
        )]);
        let (tx, rx) = mpsc::channel(1);
        let producer = tokio::spawn(async move {
            for part in ["abc", "def", "ghi"] {
                tx.send(Bytes::from_static(part.as_bytes())).await.unwrap();
            }
        });
        let loaded = fake.engine.load(rx).await.unwrap();
        producer.await.unwrap();
        assert_eq!(loaded, vec!["x:1"]);
        let seen = fake.finish().await;
        let (head, body) = &seen[0];
        assert!(head.starts_with("POST /images/load?quiet=1 "), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/x-tar")
        );
        assert_eq!(body, b"abcdefghi");
    }

    #[tokio::test]
    async fn a_refused_load_carries_the_status_message() {
        let fake = FakeEngine::start(vec![FakeEngine::reply(500, r#"{"message":"disk full"}"#)]);
        let (tx, rx) = mpsc::channel(1);
        drop(tx);
        let err = fake.engine.load(rx).await.unwrap_err();
        assert!(
            matches!(&err, EngineError::Status { status: 500, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("disk full"));
    }
}
