//! A connected BuildKit daemon: the Control and Content stubs over one
//! connection, the quick queries (Info, ListWorkers) under a timeout, what
//! kind of daemon it is, and how a broken call reads.
//!
//! Everything that runs a build sits above this module ([`crate::solve`],
//! [`crate::client`]); this one only knows the wire.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::transport::Channel;

use crate::connect::{self, Address, ConnectError, ConnectOptions, MAX_MESSAGE_SIZE};
use crate::docker_api::Engine;
use crate::proto::containerd::services::content::v1::content_client::ContentClient;
use crate::proto::moby::buildkit::v1::control_client::ControlClient;
use crate::proto::moby::buildkit::v1::{InfoRequest, ListWorkersRequest};
use crate::proto::pb::Platform;

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Opening the connection failed (see [`ConnectError`]).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A quick query got no answer within [`ConnectOptions::timeout`]: the listener
    /// accepted but did not speak BuildKit's API, or the daemon is hung.
    #[error(
        "BuildKit at {addr} did not answer {call} within {secs}s (is this a BuildKit endpoint?)"
    )]
    Timeout {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The RPC that timed out (`Info`, `ListWorkers`).
        call: &'static str,
        /// The timeout that ran out, in whole seconds.
        secs: u64,
    },
    /// The daemon answered a call with a gRPC error.
    #[error("BuildKit at {addr} failed {call}: {message}")]
    Rpc {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The RPC that failed (`Info`, `ListWorkers`).
        call: &'static str,
        /// The daemon's message as one line (the code when it sent none).
        message: String,
    },
}

/// Who runs the build: a Docker Engine keeps built images in its own store
/// through the `moby` exporter, where a standalone buildkitd uses `image`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DaemonKind {
    Engine,
    /// An engine other than the one `--load` goes to (a pool node that is
    /// not the local engine): images stay in its store as on `Engine`, and
    /// a load streams a tarball into the local engine as from buildkitd.
    OtherEngine,
    Buildkitd,
}

/// A connection to one daemon's Control API.
#[derive(Clone, Debug)]
pub(crate) struct Daemon {
    addr: Address,
    channel: Channel,
    control: ControlClient<Channel>,
    /// Bound for quick queries (Info, ListWorkers): a listener that accepts
    /// but never answers must not hang the caller.
    query_timeout: Duration,
    keepalive: Option<Duration>,
    /// The engine `Output::load()` streams into when the daemon is not it.
    load_engine: Option<Engine>,
}

/// What `rbuild info` shows.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct DaemonInfo {
    /// `None` when the daemon predates the Info call (BuildKit < 0.11).
    pub version: Option<Version>,
    /// Every worker the daemon reported, in its order.
    pub workers: Vec<Worker>,
}

/// The BuildKit release the daemon reports through the Info call.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Version {
    /// The Go module path of the daemon's build, e.g. `github.com/moby/buildkit`.
    pub package: String,
    /// The release tag, e.g. `v0.16.0`.
    pub version: String,
    /// The commit the daemon was built from.
    pub revision: String,
}

/// One of the daemon's workers (the OCI or containerd backend that runs steps).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Worker {
    /// The worker's ID as the daemon reports it.
    pub id: String,
    /// `os/arch[/variant]`, as users write `--platform`.
    pub platforms: Vec<String>,
    /// The worker's labels (`org.mobyproject.buildkit.worker.*`: executor,
    /// snapshotter, hostname, ...), sorted by key.
    pub labels: BTreeMap<String, String>,
}

impl Daemon {
    /// Connects eagerly: an unreachable address fails here.
    pub(crate) async fn connect(
        addr: Address,
        opts: &ConnectOptions,
    ) -> Result<Self, ConnectError> {
        let channel = connect::channel(&addr, opts).await?;
        let control = ControlClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE);
        let load_engine = match &addr {
            Address::Docker(socket) => Some(Engine::new(socket.clone())),
            // --load goes to the engine that runs the builder container.
            Address::DockerContainer { engine, .. } => Some(Engine::new(engine.clone())),
            // A remote host's engine is not the local one: --load streams
            // into DOCKER_HOST's, as from a standalone buildkitd.
            Address::Unix(_) | Address::Tcp { .. } | Address::Ssh { .. } => None,
        };
        Ok(Self {
            addr,
            channel,
            control,
            query_timeout: opts.timeout,
            keepalive: opts.keepalive,
            load_engine,
        })
    }

    /// The address this client is connected to.
    pub(crate) fn address(&self) -> &Address {
        &self.addr
    }

    /// Loads images into `engine` instead of the one the address implies
    /// (a Docker Engine address: that engine; otherwise `DOCKER_HOST`).
    pub(crate) fn with_load_engine(mut self, engine: Engine) -> Daemon {
        self.load_engine = Some(engine);
        self
    }

    /// Which kind of daemon this is: a Docker Engine keeps built images in
    /// its own store, a standalone buildkitd in its own.
    pub(crate) fn kind(&self) -> DaemonKind {
        match &self.addr {
            Address::Docker(socket)
                if self
                    .load_engine
                    .as_ref()
                    .is_some_and(|e| e.socket() != socket.as_path()) =>
            {
                DaemonKind::OtherEngine
            }
            Address::Docker(_) => DaemonKind::Engine,
            _ => DaemonKind::Buildkitd,
        }
    }

    /// The engine loads go to; `None`: the engine `DOCKER_HOST` names.
    pub(crate) fn load_engine(&self) -> Option<Engine> {
        self.load_engine.clone()
    }

    /// The bound for quick queries (the connect timeout).
    #[cfg(feature = "pool")]
    pub(crate) fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// The HTTP/2 ping interval this connection was opened with.
    pub(crate) fn keepalive(&self) -> Option<Duration> {
        self.keepalive
    }

    /// A handle on the generated Control stub (cheap to clone; it shares the
    /// connection).
    pub(crate) fn control(&self) -> ControlClient<Channel> {
        self.control.clone()
    }

    /// The connection itself, for the gateway's LLB bridge stub (which
    /// lives above this module, in `gateway`).
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A stub for the daemon's read-only content store (the blobs of its
    /// build records and exported images), over the same connection.
    pub(crate) fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_SIZE)
    }

    /// The daemon's version and workers.
    pub(crate) async fn info(&self) -> Result<DaemonInfo, ClientError> {
        let mut control = self.control();
        let version = match self.quick("Info", control.info(InfoRequest {})).await? {
            Ok(resp) => resp.into_inner().buildkit_version.map(|v| Version {
                package: v.package,
                version: v.version,
                revision: v.revision,
            }),
            // Older daemons lack Info but are otherwise fine.
            Err(status) if status.code() == tonic::Code::Unimplemented => None,
            Err(status) => return Err(self.rpc_error("Info", &status)),
        };
        let workers = self
            .quick(
                "ListWorkers",
                control.list_workers(ListWorkersRequest { filter: vec![] }),
            )
            .await?
            .map_err(|status| self.rpc_error("ListWorkers", &status))?
            .into_inner()
            .record
            .into_iter()
            .map(|w| Worker {
                id: w.id,
                platforms: dedup(w.platforms.iter().map(platform_string)),
                labels: w.labels.into_iter().collect(),
            })
            .collect();
        Ok(DaemonInfo { version, workers })
    }

    /// Runs a quick query under the query timeout.
    async fn quick<T>(
        &self,
        call: &'static str,
        fut: impl std::future::Future<Output = Result<T, tonic::Status>>,
    ) -> Result<Result<T, tonic::Status>, ClientError> {
        tokio::time::timeout(self.query_timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout {
                addr: self.addr.to_string(),
                call,
                secs: self.query_timeout.as_secs(),
            })
    }

    pub(crate) fn rpc_error(&self, call: &'static str, status: &tonic::Status) -> ClientError {
        ClientError::Rpc {
            addr: self.addr.to_string(),
            call,
            message: status_message(status),
        }
    }
}

/// A gRPC status as one readable line: the daemon's message, or the code
/// when the message is empty.
pub(crate) fn status_message(status: &tonic::Status) -> String {
    let msg = status.message().trim();
    let msg = if msg.is_empty() {
        format!("{:?}", status.code())
    } else {
        msg.to_string()
    };
    // A status made on this side from a transport error says only
    // "transport error"; the cause is in its source.
    match std::error::Error::source(status) {
        Some(source) => {
            let chain = crate::error_chain::error_chain(source);
            if chain.starts_with(&msg) {
                chain
            } else {
                format!("{msg}: {chain}")
            }
        }
        None => msg,
    }
}

/// How a call died when the connection under it broke, as opposed to the
/// daemon answering with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BrokenConnection {
    /// An HTTP/2 keepalive ping went unanswered: the daemon hung or the
    /// network to it is gone.
    KeepaliveTimeout,
    /// The connection failed otherwise (reset, closed, protocol error); the
    /// text is the transport's error chain.
    Failed(String),
}

/// `Some` when `status` was made on this side from a transport error rather
/// than sent by the daemon. tonic keeps the transport error as the source.
pub(crate) fn broken_connection(status: &tonic::Status) -> Option<BrokenConnection> {
    use std::error::Error;
    let source = status.source()?;
    let chain = crate::error_chain::error_chain(source);
    let mut cause: Option<&dyn Error> = Some(source);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_timeout()
        {
            return Some(BrokenConnection::KeepaliveTimeout);
        }
        cause = e.source();
    }
    // hyper reports its ping timeout as an opaque h2 error on some paths.
    if chain.contains("keep-alive timed out") {
        return Some(BrokenConnection::KeepaliveTimeout);
    }
    Some(BrokenConnection::Failed(chain))
}

/// Keeps the first of equal strings, in order: the engine lists its native
/// platform twice (once with the OS version it was built for).
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// `os/arch[/variant]`.
pub(crate) fn platform_string(p: &Platform) -> String {
    let mut s = format!("{}/{}", p.os, p.architecture);
    if !p.variant.is_empty() {
        s.push('/');
        s.push_str(&p.variant);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_read_like_the_flag() {
        let p = Platform {
            architecture: "arm".into(),
            os: "linux".into(),
            variant: "v7".into(),
            ..Default::default()
        };
        assert_eq!(platform_string(&p), "linux/arm/v7");
        let p = Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        };
        assert_eq!(platform_string(&p), "linux/amd64");
    }
}
