//! An HTTP(S) file's validators from a `HEAD` request: its `ETag`, else
//! `Last-Modified` (with `Content-Length`). Redirects are followed (a
//! "latest" download URL redirects to the current version), and only the
//! final answer's validators count: a redirect target often carries a
//! fresh signature in its query on every request.
//!
//! The request is anonymous unless the URL holds `user:password@`, which
//! is sent as Basic auth, as curl and wget do. A server that refuses
//! `HEAD` (405, 501) is asked with `GET` and the body is not read.

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::Full;

use super::{Identity, LookupError, scrub, shown_url};
use crate::registry::transport::{ConnectFailure, Transport, connect_failure};

/// A chain longer than this is a loop.
const MAX_REDIRECTS: usize = 8;

/// One pooled client for every HTTP lookup of a build.
pub(super) struct Client {
    transport: Transport,
}

impl Client {
    pub(super) fn new(connect_timeout: std::time::Duration) -> Client {
        Client {
            transport: Transport::new(connect_timeout, None),
        }
    }

    /// The validators of the file at `url`.
    pub(super) async fn lookup(&self, url: &str) -> Result<Identity, LookupError> {
        let (mut uri, basic) = split_credentials(url)?;
        let mut method = Method::HEAD;
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .header(
                    header::USER_AGENT,
                    concat!("rbuild/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(auth) = &basic {
                request = request.header(header::AUTHORIZATION, auth.as_str());
            }
            let request = request
                .body(Full::new(Bytes::new()))
                .map_err(|e| LookupError::Failed(format!("cannot make the request: {e}")))?;
            let response = self
                .transport
                .send(request)
                .await
                .map_err(|e| failure(&e, url))?;
            let status = response.status();
            // Only headers are wanted; dropping the response drops the body.
            let headers = response.headers().clone();
            drop(response);
            if status.is_redirection() {
                let location = headers
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| {
                        LookupError::Failed(format!("HTTP {status} without Location"))
                    })?;
                uri = follow(&uri, location).ok_or_else(|| {
                    LookupError::Failed(format!(
                        "HTTP {status} to an unusable Location {}",
                        shown_url(location)
                    ))
                })?;
                continue;
            }
            if matches!(
                status,
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
            ) && method == Method::HEAD
            {
                method = Method::GET;
                continue;
            }
            return validators(status, &headers);
        }
        Err(LookupError::Failed(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// The URL without `user:password@`, and those as a Basic header.
fn split_credentials(url: &str) -> Result<(Uri, Option<String>), LookupError> {
    use base64::Engine as _;
    let bad = || LookupError::Failed(format!("not a usable URL: {}", shown_url(url)));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // A fragment is not sent.
    let tail = tail.split('#').next().unwrap_or_default();
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let uri: Uri = format!("{scheme}://{host}{tail}")
        .parse()
        .map_err(|_| bad())?;
    let basic = userinfo.map(|u| {
        let decoded = percent_encoding::percent_decode_str(u).decode_utf8_lossy();
        let pair = if decoded.contains(':') {
            decoded.into_owned()
        } else {
            format!("{decoded}:")
        };
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    });
    Ok((uri, basic))
}

/// A `Location` against the URL that answered with it.
fn follow(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return location.parse().ok();
    }
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{}://{rest}", base.scheme_str()?).parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        // Relative to the base's directory.
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(path.parse().ok()?);
    Uri::from_parts(parts).ok()
}

fn validators(status: StatusCode, headers: &http::HeaderMap) -> Result<Identity, LookupError> {
    match status.as_u16() {
        200..=299 => {}
        401 | 403 => return Err(LookupError::Credentials(format!("HTTP {status}"))),
        404 | 410 => return Err(LookupError::NotFound(format!("HTTP {status}"))),
        _ => return Err(LookupError::Failed(format!("HTTP {status}"))),
    }
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    if let Some(tag) = text(header::ETAG) {
        return Ok(Identity::ETag(tag));
    }
    match text(header::LAST_MODIFIED) {
        Some(last_modified) => Ok(Identity::Modified {
            last_modified,
            length: text(header::CONTENT_LENGTH).and_then(|n| n.parse().ok()),
        }),
        None => Err(LookupError::NoValidator),
    }
}

fn failure(err: &(dyn std::error::Error + 'static), url: &str) -> LookupError {
    let said = match connect_failure(err) {
        Some(ConnectFailure::Timeout) => {
            return LookupError::Unreachable("connect timed out".into());
        }
        Some(f @ (ConnectFailure::Unreachable(_) | ConnectFailure::Handshake(_))) => {
            return LookupError::Unreachable(scrub(&f.to_string(), url));
        }
        Some(f) => f.to_string(),
        None => chain(err),
    };
    LookupError::Failed(scrub(&said, url))
}

fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let more = e.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_for_a_basic_header() {
        let (uri, basic) = split_credentials("https://u%40x:p%3Aw@host:8443/a/b?q=1#frag").unwrap();
        assert_eq!(uri.to_string(), "https://host:8443/a/b?q=1");
        // base64("u@x:p:w")
        assert_eq!(basic.as_deref(), Some("Basic dUB4OnA6dw=="));
        let (uri, basic) = split_credentials("http://127.0.0.1:9/f").unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:9/f");
        assert!(basic.is_none());
        assert!(split_credentials("no-scheme").is_err());
    }

    #[test]
    fn redirects_resolve_against_the_answering_url() {
        let base: Uri = "https://h/dl/latest/tool".parse().unwrap();
        let f = |l| follow(&base, l).unwrap().to_string();
        assert_eq!(f("https://cdn/x?sig=1"), "https://cdn/x?sig=1");
        assert_eq!(f("//cdn/y"), "https://cdn/y");
        assert_eq!(f("/v2/tool"), "https://h/v2/tool");
        assert_eq!(f("v3"), "https://h/dl/latest/v3");
    }

    #[test]
    fn validators_prefer_the_etag() {
        let mut h = http::HeaderMap::new();
        h.insert(
            header::LAST_MODIFIED,
            "Tue, 01 Jul 2025 10:00:00 GMT".parse().unwrap(),
        );
        h.insert(header::CONTENT_LENGTH, "12".parse().unwrap());
        assert_eq!(
            validators(StatusCode::OK, &h).unwrap().key_text(),
            "modified Tue, 01 Jul 2025 10:00:00 GMT; 12 bytes"
        );
        h.insert(header::ETAG, "W/\"abc\"".parse().unwrap());
        assert_eq!(
            validators(StatusCode::OK, &h),
            Ok(Identity::ETag("W/\"abc\"".into()))
        );
        assert_eq!(
            validators(StatusCode::OK, &http::HeaderMap::new()),
            Err(LookupError::NoValidator)
        );
        assert!(matches!(
            validators(StatusCode::UNAUTHORIZED, &h),
            Err(LookupError::Credentials(_))
        ));
        assert!(matches!(
            validators(StatusCode::NOT_FOUND, &h),
            Err(LookupError::NotFound(_))
        ));
    }
}
