//! One request to a registry, bounded in time and size: answering its
//! 401 once (Basic credentials or a token), following a blob's redirect to
//! storage, and turning the distribution error body
//! (`{"errors":[{code,message}]}`) into a [`RegistryError`].

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, Limited};

use super::RegistryError;
use super::auth::{Challenge, Secret, challenge_of};
use super::client::Registry;
use super::transport::{ConnectFailure, connect_failure};
use crate::connect::tls::{explain, rustls_error};

/// Error bodies are a short JSON list; more than this is not a message.
const ERROR_BODY_LIMIT: usize = 64 << 10;
/// Blob GETs on hosted registries redirect once to storage; a few more
/// hops are tolerated, a loop is not.
const MAX_REDIRECTS: usize = 5;

/// One request: where, what, and how much of the answer to accept.
pub(super) struct Call {
    pub method: Method,
    /// Absolute: `https://host/v2/…?…`.
    pub url: Uri,
    pub accept: Option<&'static str>,
    pub authorization: Option<Secret>,
    /// Content type and bytes (the OAuth2 form); none for the API calls.
    pub body: Option<(&'static str, Bytes)>,
    pub limit: usize,
    /// For error messages: `listing the tags of …`.
    pub what: String,
}

impl Call {
    pub fn new(method: Method, url: Uri, limit: usize, what: &str) -> Call {
        Call {
            method,
            url,
            accept: None,
            authorization: None,
            body: None,
            limit,
            what: what.to_string(),
        }
    }

    fn authority(&self) -> String {
        self.url
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default()
    }
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
    /// A request to this repository's registry. A 401 is answered once
    /// (credentials, or a token for the scopes this client wants), and the
    /// answer is kept for later calls.
    pub(super) async fn send(
        &self,
        method: Method,
        path: &str,
        accept: Option<&'static str>,
        limit: usize,
        what: &str,
    ) -> Result<Reply, RegistryError> {
        self.send_body(method, path, accept, None, limit, what)
            .await
    }

    /// [`Registry::send`] with a request body (content type and bytes):
    /// a manifest PUT.
    pub(super) async fn send_body(
        &self,
        method: Method,
        path: &str,
        accept: Option<&'static str>,
        body: Option<(&'static str, Bytes)>,
        limit: usize,
        what: &str,
    ) -> Result<Reply, RegistryError> {
        let url = format!("{}{path}", self.repository().origin())
            .parse()
            .map_err(|e| self.bad(what, format!("request path {path:?}: {e}")))?;
        let mut call = Call::new(method, url, limit, what);
        call.accept = accept;
        call.body = body;
        let (authorization, generation) = self.authorization();
        call.authorization = authorization;
        let mut reply = self.exchange(&call).await?;
        if let Some(challenge) = challenge_of(reply.status, &reply.headers) {
            let retry = self
                .reauthorize(&challenge, generation, call.authorization.is_some())
                .await?;
            if let Some(authorization) = retry {
                call.authorization = Some(authorization);
                reply = self.exchange(&call).await?;
            }
        }
        self.follow_redirects(call, reply).await
    }

    /// What to retry a challenged request with. Concurrent requests that
    /// all got a 401 share the one answer: whoever comes second finds the
    /// generation moved and takes what the first one got.
    async fn reauthorize(
        &self,
        challenge: &Challenge,
        sent_generation: u64,
        sent_some: bool,
    ) -> Result<Option<Secret>, RegistryError> {
        let _one_at_a_time = self.refresh.lock().await;
        let (current, generation) = self.authorization();
        if generation != sent_generation {
            return Ok(current);
        }
        // The same username and password again would be refused again.
        if sent_some && *challenge == Challenge::Basic {
            return Ok(None);
        }
        tracing::debug!(?challenge, "registry challenge");
        let fresh = self.answer(challenge).await?;
        if let Some(secret) = &fresh {
            self.set_authorization(secret.clone());
        }
        Ok(fresh)
    }

    /// GET and HEAD follow redirects (hosted registries send blob reads to
    /// storage); credentials stay with the registry's own origin.
    async fn follow_redirects(
        &self,
        mut call: Call,
        mut reply: Reply,
    ) -> Result<Reply, RegistryError> {
        for _ in 0..MAX_REDIRECTS {
            let follows = reply.status.is_redirection()
                && reply.status != StatusCode::NOT_MODIFIED
                && (call.method == Method::GET || call.method == Method::HEAD);
            let Some(location) = reply.header("location").filter(|_| follows) else {
                return Ok(reply);
            };
            let next = resolve(&call.url, location)
                .ok_or_else(|| self.bad(&call.what, format!("bad redirect to {location:?}")))?;
            if call.url.scheme_str() == Some("https") && next.scheme_str() != Some("https") {
                return Err(self.bad(&call.what, format!("redirect to plain HTTP: {next}")));
            }
            if next.authority() != call.url.authority() {
                call.authorization = None;
            }
            tracing::debug!(
                host = next.authority().map(|a| a.as_str()),
                "registry redirect"
            );
            call.url = next;
            reply = self.exchange(&call).await?;
        }
        Err(self.bad(&call.what, format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Sends and reads the bounded body, all under the request timeout.
    pub(super) async fn exchange(&self, call: &Call) -> Result<Reply, RegistryError> {
        let options = self.options();
        // Without the query: a storage redirect's query is a signature.
        let host = call.url.authority().map(|a| a.as_str());
        tracing::debug!(method = %call.method, host, path = call.url.path(), "registry request");
        let request = build_request(call).map_err(|e| RegistryError::Connection {
            host: call.authority(),
            what: call.what.clone(),
            detail: e.to_string(),
        })?;
        let work = async {
            let response = self
                .transport()
                .send(request)
                .await
                .map_err(|e| self.transport_error(call, &e))?;
            let status = response.status();
            tracing::debug!(%status, "registry response");
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
                    host: call.authority(),
                    what: call.what.clone(),
                    detail: format!("reading the body (at most {limit} bytes): {e}"),
                })?
                .to_bytes();
            Ok(Reply {
                status,
                headers,
                body,
            })
        };
        tokio::time::timeout(options.request_timeout, work)
            .await
            .map_err(|_| RegistryError::Timeout {
                host: call.authority(),
                what: call.what.clone(),
                secs: options.request_timeout.as_secs(),
            })?
    }

    fn transport_error(
        &self,
        call: &Call,
        err: &(dyn std::error::Error + 'static),
    ) -> RegistryError {
        let host = call.authority();
        match connect_failure(err) {
            Some(ConnectFailure::Unreachable(e)) => RegistryError::Unreachable {
                host,
                source: std::io::Error::new(e.kind(), e.to_string()),
            },
            Some(ConnectFailure::Timeout) => RegistryError::Timeout {
                host,
                what: "connecting".into(),
                secs: self.options().connect_timeout.as_secs(),
            },
            Some(ConnectFailure::Handshake(e)) => {
                let name = call.url.host().unwrap_or_default();
                let (detail, check) = match rustls_error(e) {
                    Some(tls) => explain(tls, "registry", name),
                    None => (e.to_string(), None),
                };
                RegistryError::Tls {
                    host,
                    detail,
                    check,
                }
            }
            Some(ConnectFailure::Setup(detail)) => RegistryError::TlsSetup {
                host,
                detail: detail.clone(),
            },
            _ => RegistryError::Connection {
                host,
                what: call.what.clone(),
                detail: chain(err),
            },
        }
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
                credentials: self.sent_credentials(),
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                host,
                what,
                message,
            },
            StatusCode::METHOD_NOT_ALLOWED if method == Method::DELETE => {
                RegistryError::DeleteDisabled { host, message }
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

fn build_request(call: &Call) -> Result<Request<Full<Bytes>>, http::Error> {
    let mut builder = Request::builder()
        .method(call.method.clone())
        .uri(call.url.clone())
        .header(
            header::USER_AGENT,
            concat!("rbuild/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(accept) = call.accept {
        builder = builder.header(header::ACCEPT, accept);
    }
    if let Some(value) = call.authorization.as_ref().and_then(Secret::header) {
        builder = builder.header(header::AUTHORIZATION, value);
    }
    match &call.body {
        Some((kind, bytes)) => builder
            .header(header::CONTENT_TYPE, *kind)
            .body(Full::new(bytes.clone())),
        None => builder.body(Full::new(Bytes::new())),
    }
}

/// A `Location` against the URL that answered with it: absolute, or a
/// path on the same origin.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return location.parse().ok();
    }
    if !location.starts_with('/') || location.starts_with("//") {
        return None;
    }
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(location.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// An error and its causes on one line (hyper's top error says little).
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
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

    #[test]
    fn redirect_targets() {
        let base: Uri = "https://reg.lan/v2/a/blobs/sha256:1".parse().unwrap();
        let to = |l: &str| resolve(&base, l).map(|u| u.to_string());
        assert_eq!(
            to("/storage/x?sig=1").as_deref(),
            Some("https://reg.lan/storage/x?sig=1")
        );
        assert_eq!(
            to("https://cdn.lan/b?s=2").as_deref(),
            Some("https://cdn.lan/b?s=2")
        );
        assert_eq!(to("relative/x"), None);
        assert_eq!(to("//cdn.lan/x"), None);
    }
}
