//! Registry credentials from the Docker CLI config: inline `auths` entries
//! and credential helpers ([`DockerConfig`]), and the policy of which hosts
//! get them ([`AuthScope`]). The session's `Auth` service answers the daemon
//! from here, and the registry client signs its own requests from here, so
//! neither needs the other.
//!
//! Secrets never reach logs or errors: [`Credentials`] redacts itself in
//! `Debug`, and only hosts and "found or not" are traced.

mod config;
mod helper;
mod scope;

use std::path::PathBuf;

pub use config::DockerConfig;
pub use scope::{AuthScope, withheld_message};

/// Why credentials could not be looked up. No variant holds a secret, so
/// every one can be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The config file exists but cannot be read: fix its permissions.
    #[error("cannot read the Docker config {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file is malformed; the reason never quotes its contents.
    #[error("the Docker config {path} is invalid: {reason}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is malformed, without quoting the file.
        reason: String,
    },
    /// A credential helper failed (other than "credentials not found").
    #[error("credential helper {helper} failed for {server}: {reason}")]
    Helper {
        /// The helper program (`docker-credential-NAME`).
        helper: String,
        /// The registry it was asked about.
        server: String,
        /// Its last words (never the secret it was to print).
        reason: String,
    },
}

/// A username and secret for one registry. An empty username means the
/// secret is an identity (refresh) token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    secret: String,
}

impl Credentials {
    /// A username and password.
    pub fn basic(username: String, password: String) -> Credentials {
        Credentials {
            username,
            secret: password,
        }
    }

    /// An identity (refresh) token, which has no username.
    pub fn identity_token(token: String) -> Credentials {
        Credentials {
            username: String::new(),
            secret: token,
        }
    }

    /// The username; empty for an identity token.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password or token. Never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_redact_in_debug() {
        let creds = Credentials::basic("alice".into(), "s3cr3t".into());
        let shown = format!("{creds:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let shown = format!("{:?}", Credentials::identity_token("t0k3n".into()));
        assert!(!shown.contains("t0k3n"), "{shown}");
    }
}
