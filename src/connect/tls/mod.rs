//! TLS for `tcp://` daemons: a buildkitd started with `--tlscacert`,
//! `--tlscert` and `--tlskey` serves HTTP/2 over TLS (ALPN `h2`) and, with a
//! CA configured, requires client certificates.
//!
//! The flags follow buildctl's: verification is always on, against the given
//! CA or else the system's roots, for `--tlsservername` or else the address
//! host, which is also sent as the `:authority`. There is no insecure mode and
//! no fallback to plain HTTP/2.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ProtocolVersion, RootCertStore};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Address, ConnectError};

mod explain;

pub use explain::TlsCheck;
pub(crate) use explain::{explain, rustls_error};

/// The TLS settings for a `tcp://` address, as buildctl's flags give them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM CA bundle the daemon's certificate must chain to (`--tlscacert`);
    /// without it the system's roots are used.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain for mTLS (`--tlscert`); needs `key`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (`--tlskey`).
    pub key: Option<PathBuf>,
    /// Name the daemon's certificate must be valid for (`--tlsservername`);
    /// defaults to the address host.
    pub server_name: Option<String>,
}

impl TlsConfig {
    /// buildctl's `--tlsdir`: `ca.pem|ca.crt`, `cert.pem|tls.crt` and
    /// `key.pem|tls.key` in `dir`, each used when present.
    ///
    /// # Errors
    ///
    /// [`ConnectError::TlsFile`] when `dir` is not a directory or holds none of the files.
    pub fn from_dir(dir: &Path) -> Result<TlsConfig, ConnectError> {
        if !dir.is_dir() {
            return Err(ConnectError::TlsFile {
                path: dir.display().to_string(),
                detail: "not a directory (check the TLS directory)".into(),
            });
        }
        let pick = |names: [&str; 2]| names.iter().map(|n| dir.join(n)).find(|p| p.is_file());
        let config = TlsConfig {
            ca: pick(["ca.pem", "ca.crt"]),
            cert: pick(["cert.pem", "tls.crt"]),
            key: pick(["key.pem", "tls.key"]),
            server_name: None,
        };
        if config.ca.is_none() && config.cert.is_none() && config.key.is_none() {
            return Err(ConnectError::TlsFile {
                path: dir.display().to_string(),
                detail: "holds none of ca.pem|ca.crt, cert.pem|tls.crt, key.pem|tls.key \
                         (check the TLS directory)"
                    .into(),
            });
        }
        Ok(config)
    }
}

/// A loaded client configuration, shared by every connection of a channel.
pub(crate) struct Tls {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// The server name as written, for messages and the `:authority`.
    pub(crate) name: String,
}

impl Tls {
    /// Loads the files and checks the combination, so a bad flag fails
    /// before any connection is tried.
    pub(crate) fn load(config: &TlsConfig, addr: &Address) -> Result<Tls, ConnectError> {
        let shown = addr.to_string();
        let Address::Tcp { host, .. } = addr else {
            return Err(ConnectError::TlsUnsupported { addr: shown });
        };
        let setup = |detail: String| ConnectError::TlsSetup {
            addr: shown.clone(),
            detail,
        };
        match (&config.cert, &config.key) {
            (Some(_), None) => return Err(setup("a client certificate needs its key".into())),
            (None, Some(_)) => return Err(setup("a client key needs its certificate".into())),
            _ => {}
        }
        let name = config.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| setup(format!("{name:?} is not a valid server name")))?;

        let roots = match &config.ca {
            Some(path) => roots_from(path)?,
            None => system_roots().map_err(setup)?,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(e.to_string()))?
            .with_root_certificates(roots);
        let mut client = match (&config.cert, &config.key) {
            (Some(cert), Some(key)) => {
                let signer = provider
                    .key_provider
                    .load_private_key(key_from(key)?)
                    .map_err(|e| setup(format!("the client key cannot be used: {e}")))?;
                let certified = CertifiedKey::new(certs_from(cert)?, signer);
                match certified.keys_match() {
                    Ok(()) => {}
                    Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                        return Err(setup(
                            "the client key is not the key of the client certificate \
                             (check the client certificate and key)"
                                .into(),
                        ));
                    }
                    // webpki reads only X.509 v3, but buildkitd (Go) takes
                    // v1 certificates as `openssl x509 -req` makes them: the
                    // daemon, not the client, judges the client certificate.
                    Err(e) => {
                        tracing::debug!(error = %e, "client certificate not checked against its key")
                    }
                }
                builder.with_client_cert_resolver(Arc::new(ClientCert(Arc::new(certified))))
            }
            _ => builder.with_no_client_auth(),
        };
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
            name,
        })
    }

    /// Runs the handshake on a fresh TCP stream, then waits briefly for the
    /// daemon's first bytes: with TLS 1.3 the daemon checks the client
    /// certificate only after the client's handshake is done, and its refusal
    /// would otherwise surface as a cancelled first call.
    pub(crate) async fn connect(
        &self,
        stream: TcpStream,
        shown: &str,
    ) -> Result<Probed, ConnectError> {
        let failed = |e: io::Error| {
            let (detail, check) = match rustls_error(&e) {
                Some(err) => explain(err, "daemon", &self.name),
                None => (e.to_string(), None),
            };
            ConnectError::Tls {
                addr: shown.to_string(),
                detail,
                check,
            }
        };
        let mut stream = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(failed)?;
        let mut head = Vec::new();
        if stream.get_ref().1.protocol_version() == Some(ProtocolVersion::TLSv1_3) {
            // A gRPC server sends its SETTINGS first, so this is quick; a
            // daemon that waits for the client just costs the probe window.
            let mut buf = vec![0u8; 16 << 10];
            match tokio::time::timeout(PROBE, stream.read(&mut buf)).await {
                Ok(Ok(0)) => {
                    return Err(failed(io::Error::other(
                        "the daemon closed the connection right after the handshake",
                    )));
                }
                Ok(Ok(n)) => head.extend_from_slice(&buf[..n]),
                Ok(Err(e)) => return Err(failed(e)),
                Err(_) => {}
            }
        }
        Ok(Probed::new(head, stream))
    }

    /// The `:authority` sent with every request: the verified server name.
    pub(crate) fn origin(&self) -> Option<http::Uri> {
        let host = if self.name.contains(':') {
            format!("[{}]", self.name)
        } else {
            self.name.clone()
        };
        format!("https://{host}").parse().ok()
    }
}

/// How long to wait for the daemon's first bytes after a TLS 1.3 handshake.
const PROBE: Duration = Duration::from_secs(1);

/// A client TLS stream with the bytes read by the post-handshake probe put
/// back in front.
pub(crate) type Probed = super::rewind::Rewind<TlsStream<TcpStream>>;

/// The one client certificate of a connection, sent whatever the server
/// hints (as buildctl does).
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl rustls::client::ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn file_error(path: &Path, detail: impl std::fmt::Display) -> ConnectError {
    ConnectError::TlsFile {
        path: path.display().to_string(),
        detail: detail.to_string(),
    }
}

pub(crate) fn certs_from(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no PEM certificate in it"));
    }
    Ok(certs)
}

fn key_from(path: &Path) -> Result<PrivateKeyDer<'static>, ConnectError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, e))
}

fn roots_from(path: &Path) -> Result<RootCertStore, ConnectError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from(path)? {
        roots
            .add(cert)
            .map_err(|e| file_error(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The platform's trusted roots, as buildctl uses Go's system pool when no
/// CA is given.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err("no system CA certificates found (give a CA certificate)".into());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_dir_finds_either_naming() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "x").unwrap();
        std::fs::write(dir.path().join("cert.pem"), "x").unwrap();
        std::fs::write(dir.path().join("tls.key"), "x").unwrap();
        let config = TlsConfig::from_dir(dir.path()).unwrap();
        assert_eq!(config.ca, Some(dir.path().join("ca.crt")));
        assert_eq!(config.cert, Some(dir.path().join("cert.pem")));
        assert_eq!(config.key, Some(dir.path().join("tls.key")));

        let empty = tempfile::tempdir().unwrap();
        let err = TlsConfig::from_dir(empty.path()).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
        let err = TlsConfig::from_dir(&empty.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn tls_is_refused_for_socket_addresses() {
        let config = TlsConfig::default();
        for addr in ["unix:///run/bk.sock", "docker:///var/run/docker.sock"] {
            let addr: Address = addr.parse().unwrap();
            let err = Tls::load(&config, &addr).err().unwrap().to_string();
            assert!(err.contains(&addr.to_string()), "{err}");
            assert!(err.contains("tcp://"), "{err}");
        }
    }

    #[test]
    fn missing_files_and_half_a_key_pair_are_named() {
        let addr: Address = "tcp://127.0.0.1:1234".parse().unwrap();
        let config = TlsConfig {
            ca: Some("/nonexistent/ca.pem".into()),
            ..TlsConfig::default()
        };
        let err = Tls::load(&config, &addr).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "").unwrap();
        let config = TlsConfig {
            cert: Some(cert),
            ..TlsConfig::default()
        };
        let err = Tls::load(&config, &addr).err().unwrap().to_string();
        assert!(err.contains("key"), "{err}");
    }
}
