//! One HTTP/1.1 exchange with the engine over its unix socket, and the small
//! pieces every call shares: path escaping, bounded bodies, error bodies.

use std::future::Future;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Body, Incoming};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use super::http1;
use super::{Engine, EngineError};

/// Inspect and list answers; a list of thousands of images stays well below.
pub(super) const JSON_BODY_LIMIT: usize = 64 << 20;

/// Error bodies are `{"message": ...}`; more than this is not a message.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Image references keep `/`, `:` and `@` in the path, as the docker CLI
/// sends them (moby routes `/images/{name:.*}/json`); anything else that is
/// not unreserved is escaped so a bad name becomes the engine's 400, not an
/// invalid request line.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/')
    .remove(b':')
    .remove(b'@');

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub(super) fn path_escape(s: &str) -> String {
    utf8_percent_encode(s, PATH).to_string()
}

pub(super) fn query_escape(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

impl Engine {
    /// Opens a connection, sends `request` and hands the response to `read`
    /// ([`http1::exchange`]: when `read` returns early, the connection is
    /// dropped, which is how a large streamed answer is abandoned).
    pub(super) async fn exchange<B, T, F, Fut>(
        &self,
        what: &str,
        request: Request<B>,
        read: F,
    ) -> Result<T, EngineError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        F: FnOnce(Response<Incoming>) -> Fut,
        Fut: Future<Output = Result<T, EngineError>>,
    {
        tracing::debug!(method = %request.method(), uri = %request.uri(), "engine request");
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| self.unreachable(source))?;
        http1::exchange("engine", stream, request, |e| self.broken(what, e), read).await
    }

    /// A bodiless request whose whole (bounded) answer is read.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        what: &str,
    ) -> Result<(StatusCode, Bytes), EngineError> {
        let request = request(method, path, Empty::<Bytes>::new(), what)?;
        self.exchange(what, request, |response| async move {
            let status = response.status();
            let limit = if status.is_success() {
                JSON_BODY_LIMIT
            } else {
                ERROR_BODY_LIMIT
            };
            let body = read_limited(response.into_body(), limit, what).await?;
            Ok((status, body))
        })
        .await
    }

    pub(super) fn unreachable(&self, source: std::io::Error) -> EngineError {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => {
                "no socket there: is dockerd running, and does DOCKER_HOST=unix://… point at its socket?"
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: run as root or as a member of the socket's group (usually docker)"
            }
            _ => "is dockerd running and listening there? check DOCKER_HOST",
        };
        EngineError::Unreachable {
            socket: self.socket.clone(),
            hint,
            source,
        }
    }

    pub(super) fn broken(&self, what: &str, error: hyper::Error) -> EngineError {
        EngineError::Connection {
            socket: self.socket.clone(),
            what: what.to_string(),
            source: Box::new(error),
        }
    }
}

pub(super) fn request<B>(
    method: Method,
    path: &str,
    body: B,
    what: &str,
) -> Result<Request<B>, EngineError> {
    Request::builder()
        .method(method)
        .uri(path)
        // HTTP/1.1 requires a Host; the engine ignores its value.
        .header(header::HOST, "docker")
        .body(body)
        .map_err(|e| EngineError::BadResponse {
            what: what.to_string(),
            detail: format!("cannot form the request {path:?}: {e}"),
        })
}

pub(super) async fn read_limited(
    body: Incoming,
    limit: usize,
    what: &str,
) -> Result<Bytes, EngineError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| EngineError::BadResponse {
            what: what.to_string(),
            detail: format!("reading the body (at most {limit} bytes): {e}"),
        })
}

pub(super) fn parse_json<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, EngineError> {
    serde_json::from_slice(body).map_err(|e| EngineError::BadResponse {
        what: what.to_string(),
        detail: format!("{e} in {}", preview(body)),
    })
}

/// dockerd wraps errors as `{"message": "..."}`; keep just the message.
pub(super) fn status_error(what: &str, status: StatusCode, body: &[u8]) -> EngineError {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| text.trim().to_string());
    EngineError::Status {
        what: what.to_string(),
        status: status.as_u16(),
        message,
    }
}

/// The start of a body for an error message; engine bodies can be large.
fn preview(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    if body.len() > MAX {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_keep_their_separators_in_paths() {
        assert_eq!(path_escape("127.0.0.1:5000/x/y:1"), "127.0.0.1:5000/x/y:1");
        assert_eq!(path_escape("a@sha256:ab"), "a@sha256:ab");
        assert_eq!(path_escape("bad name?#"), "bad%20name%3F%23");
        assert_eq!(
            query_escape("127.0.0.1:5000/x/y"),
            "127.0.0.1%3A5000%2Fx%2Fy"
        );
    }

    #[test]
    fn error_bodies_become_the_engine_message() {
        let err = status_error(
            "x",
            StatusCode::NOT_FOUND,
            br#"{"message":"No such image"}"#,
        );
        assert_eq!(
            err.to_string(),
            "x: the Docker Engine answered HTTP 404: No such image"
        );
        let err = status_error("x", StatusCode::BAD_GATEWAY, b" plain text \n");
        assert!(err.to_string().ends_with("HTTP 502: plain text"), "{err}");
    }

    #[test]
    fn bad_json_is_a_bad_response_with_a_preview() {
        let body = vec![b'x'; 1000];
        let err = parse_json::<serde_json::Value>("listing", &body).unwrap_err();
        assert!(matches!(err, EngineError::BadResponse { .. }));
        assert!(err.to_string().len() < 400, "{err}");
    }
}
