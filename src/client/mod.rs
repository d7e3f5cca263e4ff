//! The library's front door: a [`Client`] connected to one daemon runs typed
//! builds ([`Client::build`], [`Client::build_all`]), asks the Dockerfile
//! frontend about a build ([`Client::call`]) and answers what the daemon is
//! ([`Client::info`]), so a Rust program scripts builds without knowing
//! about transports, sessions or the Solve request.

mod attest;
mod builds;
mod deps;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use tokio::sync::OnceCell;

pub use crate::daemon::{ClientError, DaemonInfo, Version, Worker};
pub use builds::BuildOptions;
#[cfg(feature = "pool")]
pub(crate) use builds::Slot;

use crate::buildspec::AttestSupport;
use crate::connect::{Address, ConnectError, ConnectOptions};
use crate::daemon::Daemon;
use crate::docker_api::Engine;
use crate::outcome::BuildError;
use crate::subrequests::{Call, CallResult};

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

    /// Asks the frontend `call` about `build`'s Dockerfile instead of
    /// building it: its build checks, a target's parameters, the stages.
    ///
    /// ```no_run
    /// # async fn demo(client: rbuild::Client) -> Result<(), rbuild::BuildError> {
    /// use rbuild::subrequests::Call;
    /// let answer = client.call(&rbuild::Build::new("."), Call::Check).await?;
    /// for w in &answer.lint().expect("a check answers with a lint").warnings {
    ///     println!("line {:?}: {}: {}", w.line(), w.rule, w.detail);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::build`]; [`BuildError::CallUnsupported`] when the
    /// daemon's Dockerfile frontend does not know `call` (see
    /// [`Build::call_fallback`](crate::Build::call_fallback)).
    pub async fn call(&self, build: &crate::Build, call: Call) -> Result<CallResult, BuildError> {
        let result = self.build(&build.clone().call(call)).await?;
        result.call.ok_or_else(|| BuildError::Daemon {
            message: "the frontend answered without a result".into(),
        })
    }

    /// Builds `build` and reads the file `path` (absolute in the target
    /// stage's filesystem) from its result, through the gateway, without an
    /// output for it: a test report, a version file. The build's own
    /// outputs, if any, are exported as usual; a build without outputs or
    /// tags exports nothing (not even into a Docker Engine's store). Up to
    /// 256 MiB.
    ///
    /// ```no_run
    /// # async fn demo(client: rbuild::Client) -> Result<(), rbuild::BuildError> {
    /// let build = rbuild::Build::new(".").target("tests");
    /// let report = client.read_file(&build, "/report/junit.xml").await?;
    /// println!("{} bytes of report", report.len());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::build`]; [`BuildError::Daemon`] when the file cannot be
    /// read (missing, larger than 256 MiB, a multi-platform result).
    pub async fn read_file(&self, build: &crate::Build, path: &str) -> Result<Bytes, BuildError> {
        let mut plan = self.plan(build).await?;
        plan.read_file = Some(path.to_string());
        if build.outputs.is_empty() && build.tags.is_empty() {
            plan.exports.clear();
        }
        let events = crate::progress::event::EventSink::new(None, 0);
        let result = builds::run_one(
            self,
            &plan,
            &events,
            tokio_util::sync::CancellationToken::new(),
            None,
            crate::solve::Links::default(),
        )
        .await?;
        result.read.ok_or_else(|| BuildError::Daemon {
            message: format!("the daemon returned no result to read {path} from"),
        })
    }

    /// The connection under this client.
    pub(crate) fn daemon(&self) -> &Daemon {
        &self.daemon
    }
}
