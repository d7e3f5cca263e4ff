//! One HTTP/1.1 exchange with a registry over plain TCP, bounded in time
//! and size, and the distribution error body (`{"errors":[{code,message}]}`)
//! turned into a [`RegistryError`].
//!
//! One connection per request, through [`crate::http1`] as the engine
//! client does: a registry on the same machine is cheap to reconnect to,
//! and without a pool there is no idle keep-alive to go stale or task to
//! outlive the call.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use tokio::net::TcpStream;

use super::RegistryError;
use super::auth::parse_bearer;
use super::client::Registry;
use super::reference::with_default_port;
use crate::http1;

/// Error bodies are a short JSON list; more than this is not a message.
const ERROR_BODY_LIMIT: usize = 64 << 10;

/// One request: where, what, and how much of the answer to accept.
pub(super) struct Call<'a> {
    /// `host[:port]` for the connection and the `Host` header.
    pub authority: &'a str,
    pub method: Method,
    /// Origin-form target: `/v2/…?…`.
    pub path: &'a str,
    pub accept: Option<&'a str>,
    pub bearer: Option<&'a str>,
    pub limit: usize,
    /// For error messages: `listing tags of …`.
    pub what: &'a str,
}

pub(super) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Registry {
    /// A request to this repository's registry; a Bearer challenge is
    /// answered once with an anonymous token, which is kept for later calls.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        limit: usize,
        what: &str,
    ) -> Result<Reply, RegistryError> {
        let token = self.token();
        let mut call = Call {
            authority: self.repository().host(),
            method,
            path,
            accept,
            bearer: token.as_ref().map(|t| t.0.as_str()),
            limit,
            what,
        };
        let reply = self.exchange(&call).await?;
        if reply.status != StatusCode::UNAUTHORIZED {
            return Ok(reply);
        }
        let Some(challenge) = reply
            .header(header::WWW_AUTHENTICATE.as_str())
            .and_then(parse_bearer)
        else {
            return Ok(reply);
        };
        tracing::debug!(realm = %challenge.realm, scope = ?challenge.scope, "bearer challenge");
        let token = self.fetch_token(&challenge).await?;
        self.set_token(token.clone());
        call.bearer = Some(&token.0);
        self.exchange(&call).await
    }

    /// Connects, sends, reads the bounded body, all under the request timeout;
    /// the connection is driven in this future and dropped with it.
    pub(super) async fn exchange(&self, call: &Call<'_>) -> Result<Reply, RegistryError> {
        let options = self.options();
        let timeout = |what: &str, limit: std::time::Duration| RegistryError::Timeout {
            host: call.authority.to_string(),
            what: what.to_string(),
            secs: limit.as_secs(),
        };
        tracing::debug!(method = %call.method, host = call.authority, path = call.path, "registry request");
        let addr = with_default_port(call.authority);
        let stream = tokio::time::timeout(options.connect_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| timeout("connecting", options.connect_timeout))?
            .map_err(|source| RegistryError::Unreachable {
                host: call.authority.to_string(),
                source,
            })?;
        tokio::time::timeout(options.request_timeout, self.converse(stream, call))
            .await
            .map_err(|_| timeout(call.what, options.request_timeout))?
    }

    async fn converse(&self, stream: TcpStream, call: &Call<'_>) -> Result<Reply, RegistryError> {
        let broken = |e: &dyn std::fmt::Display| RegistryError::Connection {
            host: call.authority.to_string(),
            what: call.what.to_string(),
            detail: e.to_string(),
        };
        let request = build_request(call).map_err(|e| broken(&e))?;
        let read = |response: http::Response<hyper::body::Incoming>| async move {
            let status = response.status();
            let headers = response.headers().clone();
            let limit = if status.is_success() {
                call.limit
            } else {
                ERROR_BODY_LIMIT
            };
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|e| RegistryError::BadResponse {
                    host: call.authority.to_string(),
                    what: call.what.to_string(),
                    detail: format!("reading the body (at most {limit} bytes): {e}"),
                })?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body,
            })
        };
        http1::exchange("registry", stream, request, |e| broken(&e), read).await
    }

    /// The error for a non-success answer, by what the user can do.
    pub(super) fn status_error(&self, what: &str, method: &Method, reply: &Reply) -> RegistryError {
        let host = self.repository().host().to_string();
        let what = what.to_string();
        let message = error_message(&reply.body);
        let status = reply.status.as_u16();
        match reply.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Denied {
                host,
                what,
                status,
                message,
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                host,
                what,
                message,
            },
            StatusCode::METHOD_NOT_ALLOWED if method == Method::DELETE => {
                RegistryError::DeleteDisabled { host }
            }
            _ => RegistryError::Status {
                host,
                what,
                status,
                message,
            },
        }
    }
}

fn build_request(call: &Call<'_>) -> Result<Request<Empty<Bytes>>, http::Error> {
    let mut builder = Request::builder()
        .method(call.method.clone())
        .uri(call.path)
        .header(header::HOST, call.authority)
        .header(
            header::USER_AGENT,
            concat!("rbuild/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(accept) = call.accept {
        builder = builder.header(header::ACCEPT, accept);
    }
    if let Some(token) = call.bearer {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Empty::new())
}

/// `CODE: message` from distribution's error list, else the trimmed text.
fn error_message(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let first = parsed.as_ref().and_then(|v| v["errors"].get(0).cloned());
    if let Some(e) = first {
        let code = e["code"].as_str().unwrap_or_default();
        let message = e["message"].as_str().unwrap_or_default();
        return match (code.is_empty(), message.is_empty()) {
            (false, false) => format!("{code}: {message}"),
            (false, true) => code.to_string(),
            _ => message.to_string(),
        };
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    match text.trim() {
        "" => "no details".to_string(),
        t => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_error_bodies() {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        assert_eq!(
            error_message(body),
            "NAME_UNKNOWN: repository name not known to registry"
        );
        assert_eq!(
            error_message(b"  Method Not Allowed\n"),
            "Method Not Allowed"
        );
        assert_eq!(error_message(b""), "no details");
        assert_eq!(
            error_message(br#"{"errors":[{"code":"DENIED"}]}"#),
            "DENIED"
        );
    }
}
