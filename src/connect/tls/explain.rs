//! TLS handshake failures in the user's terms: which certificate problem,
//! and which setting to check.

use std::io;

use rustls::{AlertDescription, CertificateError};

/// The rustls error inside an I/O error or anywhere in an error's chain;
/// tokio-rustls and hyper wrap it.
pub(crate) fn rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = e
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        cause = e.source();
    }
    None
}

/// Which TLS setting a handshake failure points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsCheck {
    /// The CA the server's certificate must chain to.
    CaCert,
    /// The name the server's certificate must be valid for.
    ServerName,
    /// The client certificate and key (and that the server's CA signed them).
    ClientCert,
}

impl std::fmt::Display for TlsCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsCheck::CaCert => "the CA certificate",
            TlsCheck::ServerName => "the server name",
            TlsCheck::ClientCert => "the client certificate and key",
        })
    }
}

/// What a handshake failure means for the user, and which setting to check;
/// `peer` names the server in the text (`daemon`, `registry`).
pub(crate) fn explain(err: &rustls::Error, peer: &str, name: &str) -> (String, Option<TlsCheck>) {
    use rustls::Error::{AlertReceived, InvalidCertificate};
    let (text, check) = match err {
        InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => (
            format!("the {peer}'s certificate is not signed by a trusted CA: unknown CA"),
            Some(TlsCheck::CaCert),
        ),
        InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => (
            format!("the {peer}'s certificate is not valid for the name {name:?}"),
            Some(TlsCheck::ServerName),
        ),
        InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            (format!("the {peer}'s certificate has expired"), None)
        }
        InvalidCertificate(other) => (
            format!("the {peer}'s certificate was refused: {other:?}"),
            Some(TlsCheck::CaCert),
        ),
        AlertReceived(AlertDescription::CertificateRequired) => (
            format!("the {peer} requires a client certificate"),
            Some(TlsCheck::ClientCert),
        ),
        AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::DecryptError,
        ) => (
            format!("the {peer} refused the client certificate"),
            Some(TlsCheck::ClientCert),
        ),
        other => (other.to_string(), None),
    };
    (text, check)
}
