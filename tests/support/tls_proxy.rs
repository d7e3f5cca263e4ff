//! A test-only TLS-terminating proxy in front of the engine's BuildKit: it
//! serves TLS with ALPN `h2` on 127.0.0.1, optionally requires client
//! certificates (mTLS), and forwards each connection through the engine's
//! `POST /grpc` upgrade, so rbuild sees what a buildkitd started with
//! `--tlscacert/--tlscert/--tlskey` on TCP serves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A test CA and the certificates it signed, as PEM files in a temp dir laid
/// out like buildctl's `--tlsdir` (`ca.pem`, `cert.pem`, `key.pem`).
pub struct TestPki {
    pub dir: tempfile::TempDir,
    /// The CA certificate.
    pub ca: PathBuf,
    /// A client certificate signed by the CA, and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    ca_der: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl TestPki {
    /// A fresh CA; the server certificate is valid for `localhost` only.
    pub fn new() -> TestPki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "rbuild test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &ca).unwrap();
            (cert, key)
        };
        let (server_cert, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf("rbuild-client", ExtendedKeyUsagePurpose::ClientAuth);

        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        TestPki {
            ca: write("ca.pem", ca.pem()),
            client_cert: write("cert.pem", client_cert.pem()),
            client_key: write("key.pem", client_key.serialize_pem()),
            ca_der: ca.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            dir,
        }
    }

    fn server_config(&self, require_client_cert: bool) -> ServerConfig {
        self.server_config_with(if require_client_cert {
            ClientAuth::SignedByCa
        } else {
            ClientAuth::None
        })
    }

    fn server_config_with(&self, auth: ClientAuth) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match auth {
            ClientAuth::SignedByCa => {
                let mut roots = RootCertStore::empty();
                roots.add(self.ca_der.clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            ClientAuth::Exactly(der) => {
                builder.with_client_cert_verifier(Arc::new(ExactClientCert {
                    der,
                    schemes: provider
                        .signature_verification_algorithms
                        .supported_schemes(),
                }))
            }
            ClientAuth::None => builder.with_no_client_auth(),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder
            .with_single_cert(vec![self.server_cert.clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        config
    }
}

/// What the proxy asks of clients.
enum ClientAuth {
    None,
    /// A certificate the test CA signed (rustls/webpki checks it).
    SignedByCa,
    /// Exactly this certificate: for X.509 v1 client certificates, which Go's
    /// TLS (buildkitd) accepts and webpki cannot parse, so neither the chain
    /// nor the handshake signature is checked here: the test is that the
    /// client presents the certificate and completes the handshake.
    Exactly(Vec<u8>),
}

#[derive(Debug)]
struct ExactClientCert {
    der: Vec<u8>,
    schemes: Vec<rustls::SignatureScheme>,
}

impl rustls::server::danger::ClientCertVerifier for ExactClientCert {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_slice() {
            Ok(rustls::server::danger::ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the expected client certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.schemes.clone()
    }
}

pub struct TlsProxy {
    pub port: u16,
    /// An Option so Drop can shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl TlsProxy {
    /// Starts the proxy on its own runtime, serving the server certificate
    /// of `pki`; with `require_client_cert` a client must present one the
    /// test CA signed.
    pub fn start(engine_socket: &Path, pki: &TestPki, require_client_cert: bool) -> TlsProxy {
        Self::serve(engine_socket, pki.server_config(require_client_cert))
    }

    /// As [`TlsProxy::start`], accepting only the client certificate `der`.
    pub fn start_expecting(engine_socket: &Path, pki: &TestPki, der: Vec<u8>) -> TlsProxy {
        Self::serve(
            engine_socket,
            pki.server_config_with(ClientAuth::Exactly(der)),
        )
    }

    fn serve(engine_socket: &Path, config: ServerConfig) -> TlsProxy {
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind TLS proxy port");
        let port = listener.local_addr().unwrap().port();
        let engine = engine_socket.to_path_buf();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let engine = engine.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let client = match acceptor.accept(client).await {
                        Ok(client) => client,
                        Err(e) => return eprintln!("tls proxy: handshake: {e}"),
                    };
                    if let Err(e) = super::proxy::forward(client, &engine).await {
                        eprintln!("tls proxy: {e}");
                    }
                });
            }
        });
        TlsProxy {
            port,
            runtime: Some(runtime),
        }
    }

    /// The proxy in rbuild's address syntax.
    pub fn address(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }
}
