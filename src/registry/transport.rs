//! The registry client's connections: hyper-util's pooled HTTP/1.1 client
//! over plain TCP or rustls.
//!
//! A pool, unlike the engine client's connection per request: an
//! inventory reads a manifest and a config per tag, and against a remote
//! HTTPS registry a TLS handshake per request would cost more round trips
//! than the requests themselves. The pool lives as long as the
//! [`Registry`](super::Registry); its connection tasks end with it.
//! `upstream::http` reuses it for its HEAD requests.
//!
//! Certificates are verified against the system's roots (which
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` replace, as for OpenSSL) plus an
//! optional CA file. They are loaded on the first HTTPS connection, so a
//! plain-HTTP registry never reads them.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Idle connections are closed after this; a CLI run rarely pauses longer.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Inventories run a few requests at once; keep that many warm per host.
const IDLE_PER_HOST: usize = 8;

/// Why a connection could not be opened; found again in the client's
/// error chain to tell the user which of these it was.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectFailure {
    /// Refused, no route, or a name that does not resolve.
    #[error("{0}")]
    Unreachable(io::Error),
    /// TCP did not connect within the connect timeout.
    #[error("connecting timed out")]
    Timeout,
    /// The handshake failed: certificate, name, protocol.
    #[error("TLS handshake failed: {0}")]
    Handshake(io::Error),
    /// The roots or the CA file could not be loaded.
    #[error("{0}")]
    Setup(String),
    /// A URL without a host, or a scheme other than http(s).
    #[error("cannot connect to {0}")]
    BadUri(String),
}

/// The pooled client of one [`Registry`](super::Registry).
pub(crate) struct Transport {
    client: Client<Connector, Full<Bytes>>,
}

impl Transport {
    pub fn new(connect_timeout: Duration, ca_file: Option<PathBuf>) -> Transport {
        let connector = Connector {
            connect_timeout,
            tls: Arc::new(Roots {
                ca_file,
                loaded: OnceLock::new(),
            }),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Transport { client }
    }

    /// Sends `request` (an absolute URI); the answer's body is still to be read.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}

/// The trust roots, loaded once on the first HTTPS connection.
struct Roots {
    ca_file: Option<PathBuf>,
    loaded: OnceLock<Result<TlsConnector, String>>,
}

impl Roots {
    fn connector(&self) -> Result<TlsConnector, ConnectFailure> {
        self.loaded
            .get_or_init(|| load(self.ca_file.as_deref()))
            .clone()
            .map_err(ConnectFailure::Setup)
    }
}

/// The system's roots (or `SSL_CERT_FILE`/`SSL_CERT_DIR`) plus `ca_file`.
fn load(ca_file: Option<&Path>) -> Result<TlsConnector, String> {
    let found = rustls_native_certs::load_native_certs();
    let chosen = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    // A broken file in the platform store is not the user's doing; a
    // variable naming a missing file is.
    if let (true, Some(e)) = (chosen, found.errors.first()) {
        return Err(format!(
            "cannot load the CA certificates SSL_CERT_FILE/SSL_CERT_DIR name: {e}"
        ));
    }
    for e in &found.errors {
        tracing::debug!(error = %e, "system CA certificates");
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system CA certificates");
    if let Some(path) = ca_file {
        let certs = crate::connect::tls::certs_from(path).map_err(|e| e.to_string())?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        return Err("no trusted CA certificates: the system has none".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Opens TCP, then TLS for `https` URIs.
#[derive(Clone)]
struct Connector {
    connect_timeout: Duration,
    tls: Arc<Roots>,
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.open(&uri).await.map(TokioIo::new) })
    }
}

impl Connector {
    async fn open(&self, uri: &Uri) -> Result<Stream, ConnectFailure> {
        let bad = || ConnectFailure::BadUri(uri.to_string());
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad()),
        };
        let host = uri.host().ok_or_else(bad)?;
        // `Uri::host` keeps an IPv6 address's brackets.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        // Checked before connecting, so a bad CA file is reported as such.
        let connector = if tls {
            Some(self.tls.connector()?)
        } else {
            None
        };
        let tcp = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| ConnectFailure::Timeout)?
            .map_err(ConnectFailure::Unreachable)?;
        // Requests are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        let Some(connector) = connector else {
            return Ok(Stream::Plain(tcp));
        };
        let name = ServerName::try_from(host.to_string()).map_err(|_| bad())?;
        let handshake = tokio::time::timeout(self.connect_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| ConnectFailure::Timeout)?
            .map_err(ConnectFailure::Handshake)?;
        Ok(Stream::Tls(Box::new(handshake)))
    }
}

/// A connection to a registry or token service.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The [`ConnectFailure`] anywhere in an error's chain.
pub(crate) fn connect_failure<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ConnectFailure> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<ConnectFailure>() {
            return Some(found);
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_ca_file_is_named_before_connecting() {
        let connector = Connector {
            connect_timeout: Duration::from_secs(1),
            tls: Arc::new(Roots {
                ca_file: Some("/nonexistent/ca.pem".into()),
                loaded: OnceLock::new(),
            }),
        };
        // Port 9 on loopback is never contacted: the roots fail first.
        let uri: Uri = "https://127.0.0.1:9/v2/".parse().unwrap();
        let err = connector.open(&uri).await.err().unwrap();
        assert!(matches!(err, ConnectFailure::Setup(_)), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
