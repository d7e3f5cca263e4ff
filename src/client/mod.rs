//! The library's front door: a [`Client`] connected to one daemon runs typed
//! builds ([`Client::build`], [`Client::build_all`]) and answers what the
//! daemon is ([`Client::info`]), so a Rust program scripts builds without
//! knowing about transports, sessions or the Solve request.

mod attest;
mod builds;
mod deps;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

pub use crate::daemon::{ClientError, DaemonInfo, Version, Worker};
pub use builds::BuildOptions;
#[cfg(feature = "pool")]
pub(crate) use builds::Slot;

use crate::buildspec::AttestSupport;
use crate::connect::{Address, ConnectError, ConnectOptions};
use crate::daemon::Daemon;
use crate::docker_api::Engine;

/// A connection to one daemon, and what was learnt about it once.
#[derive(Clone, Debug)]
pub struct Client {
    daemon: Daemon,
    /// Whether the daemon can store attestations, asked once.
    attestations: Arc<OnceCell<AttestSupport>>,
}

impl Client {
    /// Connects eagerly: an unreachable address fails here.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] when the address cannot be reached, does not speak
    /// HTTP/2, or refuses the TLS or SSH handshake; it says which.
    pub async fn connect(addr: Address, opts: &ConnectOptions) -> Result<Self, ConnectError> {
        Ok(Client {
            daemon: Daemon::connect(addr, opts).await?,
            attestations: Arc::default(),
        })
    }

    /// The address this client is connected to.
    pub fn address(&self) -> &Address {
        self.daemon.address()
    }

    /// Loads images into `engine` instead of the one the address implies
    /// (a Docker Engine address: that engine; otherwise `DOCKER_HOST`).
    pub fn with_load_engine(self, engine: Engine) -> Client {
        Client {
            daemon: self.daemon.with_load_engine(engine),
            ..self
        }
    }

    /// The HTTP/2 ping interval this connection was opened with.
    pub fn keepalive(&self) -> Option<Duration> {
        self.daemon.keepalive()
    }

    /// The daemon's version and workers.
    ///
    /// # Errors
    ///
    /// [`ClientError::Timeout`] when the daemon does not answer within the
    /// connect timeout, [`ClientError::Rpc`] when it answers with an error.
    pub async fn info(&self) -> Result<DaemonInfo, ClientError> {
        self.daemon.info().await
    }

    /// The connection under this client.
    pub(crate) fn daemon(&self) -> &Daemon {
        &self.daemon
    }
}
