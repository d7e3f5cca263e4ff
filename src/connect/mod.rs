//! Reaching a BuildKit daemon: address parsing and one transport per scheme.
//!
//! Every transport ends in a tonic [`Channel`] that speaks HTTP/2 to the
//! daemon's Control service; they differ only in how the byte stream is
//! opened (a unix socket, TCP, an engine connection upgraded via `/grpc`, or
//! the stdio of a process: `buildctl dial-stdio` in a container or over ssh).

mod address;
pub mod builder;
mod docker;
mod rewind;
mod ssh;
mod stdio;
pub(crate) mod tls;

// Defined by the engine client; re-exported so the path it had here still works.
pub use crate::docker_api::DEFAULT_DOCKER_SOCKET;
pub use address::{Address, AddressError, DEFAULT_BUILDKITD_SOCKET, docker_socket_from_env};
pub use ssh::{SSH_COMMAND_ENV, SSH_REMOTE_COMMAND_ENV, SshError, SshOptions};
pub use tls::{TlsCheck, TlsConfig};

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// Both Go sides use 16 MiB; tonic's 4 MiB default is too small for warnings
/// that embed whole Dockerfiles.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// How a connection is made.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Upper bound for opening the stream and the HTTP/2 handshake.
    pub timeout: Duration,
    /// TLS for a `tcp://` address; refused for socket addresses.
    pub tls: Option<TlsConfig>,
    /// Interval of HTTP/2 pings while a call is open; `None` sends none.
    /// A ping unanswered within [`ping_timeout`] ends the connection, so a
    /// daemon that hangs or a peer that vanished fails the build instead of
    /// leaving it waiting forever.
    pub keepalive: Option<Duration>,
    /// The ssh client and remote command for an `ssh://` address; ignored
    /// for the others.
    pub ssh: SshOptions,
}

/// grpc-go servers refuse pings more often than every 5 minutes unless they
/// have sent data since the last one. During a build they do: BuildKit checks
/// the session's health every 5 s over this connection (measured against the
/// engine: data frames every 5 s, and 1 s pings through a 30 s quiet step drew
/// no GOAWAY). So 30 s is safe and a hung daemon is noticed within ~50 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);

/// How long a keepalive ping may go unanswered: 20 s, or the interval when
/// that is shorter (tests use seconds).
pub fn ping_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(20))
}

impl ConnectOptions {
    /// Waits at most `timeout` for the stream and the HTTP/2 handshake.
    pub fn timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.timeout = timeout;
        self
    }

    /// TLS for a `tcp://` address.
    pub fn tls(mut self, tls: Option<TlsConfig>) -> ConnectOptions {
        self.tls = tls;
        self
    }

    /// Pings every `interval` while a call is open; `None` sends none.
    pub fn keepalive(mut self, interval: Option<Duration>) -> ConnectOptions {
        self.keepalive = interval;
        self
    }

    /// The ssh client and remote command for an `ssh://` address.
    pub fn ssh(mut self, ssh: SshOptions) -> ConnectOptions {
        self.ssh = ssh;
        self
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(4),
            tls: None,
            keepalive: Some(DEFAULT_KEEPALIVE),
            ssh: SshOptions::default(),
        }
    }
}

/// Why the daemon could not be reached; each variant names the address and
/// says what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A unix socket address (buildkitd or Docker Engine) whose file does
    /// not exist.
    #[error(
        "cannot connect to BuildKit at {addr}: no socket at {path} (is the daemon running at that address?)"
    )]
    NoSocket {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The socket path that was not found.
        path: String,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "cannot connect to BuildKit at {addr}: permission denied on {path} (run as a user that may open it)"
    )]
    PermissionDenied {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The socket path that refused this user.
        path: String,
    },
    /// Opening the socket or TCP connection failed for another reason
    /// (refused, unreachable, ...).
    #[error(
        "cannot connect to BuildKit at {addr}: {source} (is the daemon running and listening there?)"
    )]
    Io {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The error from opening the stream (name lookup included, for TCP).
        #[source]
        source: io::Error,
    },
    /// The connection and HTTP/2 handshake did not finish within
    /// [`ConnectOptions::timeout`].
    #[error(
        "cannot connect to BuildKit at {addr}: no answer within {secs}s (check the address and that the daemon is up)"
    )]
    Timeout {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The timeout that ran out, in whole seconds.
        secs: u64,
    },
    /// A Docker Engine answered the `POST /grpc` upgrade with something
    /// other than `101 Switching Protocols`.
    #[error(
        "cannot connect to BuildKit at {addr}: the engine refused the /grpc upgrade with HTTP {status}: {body} (is this a Docker Engine with BuildKit, API 1.39 or newer?)"
    )]
    UpgradeRefused {
        /// The engine's address, as [`Address`] displays it.
        addr: String,
        /// The HTTP status code the engine answered with.
        status: u16,
        /// The engine's error message (the `message` of its JSON body, or
        /// the raw body, at most 4 KiB).
        body: String,
    },
    /// The stream opened but the HTTP/1 upgrade or the HTTP/2 handshake on
    /// it failed: most likely not a BuildKit or Docker Engine socket.
    #[error(
        "cannot connect to BuildKit at {addr}: {detail} (is this a BuildKit or Docker Engine socket?)"
    )]
    Handshake {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The transport's error chain.
        detail: String,
    },
    /// TLS options were given for an address that is not `tcp://`.
    #[error(
        "cannot use TLS with {addr}: TLS applies only to tcp://HOST:PORT addresses (drop the TLS options or use a tcp:// address)"
    )]
    TlsUnsupported {
        /// The non-TCP address, as [`Address`] displays it.
        addr: String,
    },
    /// A TLS file or `--tlsdir` directory is missing, unreadable or holds no
    /// usable PEM data.
    #[error("cannot use TLS file {path}: {detail}")]
    TlsFile {
        /// The file or directory, as given.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The TLS files loaded but do not make a client configuration: a
    /// certificate without its key, a key that does not match, a bad server
    /// name, no system roots.
    #[error("cannot set up TLS for {addr}: {detail}")]
    TlsSetup {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// What is wrong with the combination.
        detail: String,
    },
    /// The TLS handshake with the daemon failed, or the daemon refused the
    /// client certificate right after it.
    #[error(
        "cannot connect to BuildKit at {addr}: TLS handshake failed: {detail}{}",
        check.map(|c| format!(" (check {c})")).unwrap_or_default()
    )]
    Tls {
        /// The daemon's address, as [`Address`] displays it.
        addr: String,
        /// The rustls error, explained when it is a known certificate problem.
        detail: String,
        /// The setting to check, when the failure points at one.
        check: Option<TlsCheck>,
    },
    /// A `docker-container://` address: the engine could not run
    /// `buildctl dial-stdio` in the builder container.
    #[error("cannot connect to BuildKit at {addr}: {source} ({hint})")]
    Container {
        /// The container address, as [`Address`] displays it.
        addr: String,
        /// What to check, by the step that failed (creating or starting the
        /// exec).
        hint: &'static str,
        /// The engine's error.
        #[source]
        source: crate::docker_api::EngineError,
    },
    /// An `ssh://` address: the ssh client, the login or the remote command
    /// failed before the daemon answered.
    #[error("cannot connect to BuildKit at {addr}: {problem}")]
    Ssh {
        /// The address, as [`Address`] displays it.
        addr: String,
        /// What went wrong, naming the host.
        #[source]
        problem: SshError,
    },
}

/// Opens an HTTP/2 channel to the daemon's Control API.
///
/// The first connection is made eagerly so a wrong or dead address fails
/// here, within `opts.timeout`, with an error that names it.
pub(crate) async fn channel(
    addr: &Address,
    opts: &ConnectOptions,
) -> Result<Channel, ConnectError> {
    let shown = addr.to_string();
    let tls = match &opts.tls {
        Some(config) => Some(Arc::new(tls::Tls::load(config, addr)?)),
        None => None,
    };
    // The authority is not checked by BuildKit; a fixed one keeps URIs valid
    // for socket paths. Over TLS it is the verified server name, as Go sends.
    let mut endpoint = Endpoint::from_static("http://buildkitd")
        .connect_timeout(opts.timeout)
        // Large windows let context uploads stream without stalls.
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20));
    if let Some(origin) = tls.as_ref().and_then(|t| t.origin()) {
        endpoint = endpoint.origin(origin);
    }
    if let Some(interval) = opts.keepalive {
        // Only while a call is open: grpc-go also refuses pings on an idle
        // connection, and rbuild holds none.
        endpoint = endpoint
            .http2_keep_alive_interval(interval)
            .keep_alive_timeout(ping_timeout(interval))
            .keep_alive_while_idle(false);
    }

    // tonic boxes connector errors into an opaque transport error; keep the
    // typed one aside so the user sees the specific cause.
    let failure: Arc<Mutex<Option<ConnectError>>> = Arc::default();
    let target = addr.clone();
    let slot = failure.clone();
    let session_tls = tls.clone();
    let ssh_opts = opts.ssh.clone();
    let connector = tower::service_fn(move |_: Uri| {
        let target = target.clone();
        let slot = slot.clone();
        let tls = session_tls.clone();
        let ssh_opts = ssh_opts.clone();
        async move {
            open(&target, tls.as_deref(), &ssh_opts).await.map_err(|e| {
                let text = e.to_string();
                if let Ok(mut slot) = slot.lock() {
                    slot.get_or_insert(e);
                }
                io::Error::other(text)
            })
        }
    });
    let connect = endpoint.connect_with_connector(connector);
    let result = tokio::time::timeout(opts.timeout, connect).await;
    let typed = failure.lock().ok().and_then(|mut slot| slot.take());
    match result {
        Ok(Ok(channel)) => Ok(channel),
        // tonic's own connect timeout (the same bound) may fire first.
        Ok(Err(e)) if typed.is_none() && timed_out(&e) => Err(ConnectError::Timeout {
            addr: shown,
            secs: opts.timeout.as_secs(),
        }),
        Ok(Err(e)) => Err(
            typed.unwrap_or_else(|| match (&tls, tls::rustls_error(&e)) {
                // With TLS 1.3 the daemon checks the client certificate after
                // the client's handshake is done: its alert ends the HTTP/2 one.
                (Some(tls), Some(err)) => {
                    let (detail, check) = tls::explain(err, "daemon", &tls.name);
                    ConnectError::Tls {
                        addr: shown,
                        detail,
                        check,
                    }
                }
                _ => ConnectError::Handshake {
                    addr: shown,
                    detail: crate::error_chain::error_chain(&e),
                },
            }),
        ),
        Err(_) => Err(typed.unwrap_or(ConnectError::Timeout {
            addr: shown,
            secs: opts.timeout.as_secs(),
        })),
    }
}

/// Whether an error, or one of its causes, is a timeout running out.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if e.is::<tokio::time::error::Elapsed>()
            || e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The byte stream of one connection, whatever the transport.
type Io = Box<dyn Stream>;

trait Stream: hyper::rt::Read + hyper::rt::Write + Send + Unpin {}
impl<T: hyper::rt::Read + hyper::rt::Write + Send + Unpin> Stream for T {}

fn boxed<T>(io: T) -> Io
where
    T: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    Box::new(io)
}

async fn open(
    addr: &Address,
    tls: Option<&tls::Tls>,
    ssh_opts: &SshOptions,
) -> Result<Io, ConnectError> {
    let shown = addr.to_string();
    match addr {
        Address::Unix(path) => Ok(boxed(TokioIo::new(unix(&shown, path).await?))),
        Address::Tcp { host, port } => {
            let stream = tokio::net::TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(|source| ConnectError::Io {
                    addr: shown.clone(),
                    source,
                })?;
            // Context uploads are many small packets; latency matters more.
            let _ = stream.set_nodelay(true);
            // Endpoint::tcp_keepalive only reaches tonic's own connector, so the
            // kernel's keepalive is set here: a peer host that disappears
            // (no FIN, no RST) is noticed in about a minute, not hours.
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(30))
                .with_interval(Duration::from_secs(10))
                .with_retries(3);
            if let Err(e) = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive) {
                tracing::debug!(error = %e, "cannot enable TCP keepalive");
            }
            match tls {
                Some(tls) => Ok(boxed(TokioIo::new(tls.connect(stream, &shown).await?))),
                None => Ok(boxed(TokioIo::new(stream))),
            }
        }
        Address::Docker(path) => {
            let stream = unix(&shown, path).await?;
            Ok(boxed(docker::upgrade_to_grpc(stream, &shown).await?))
        }
        Address::DockerContainer { name, engine } => {
            let engine = crate::docker_api::Engine::new(engine.clone());
            let failed = |hint: &'static str| {
                let addr = shown.clone();
                move |source| ConnectError::Container { addr, hint, source }
            };
            let exec = engine
                .exec_create(name, &["buildctl", "dial-stdio"])
                .await
                .map_err(failed(
                    "is the container running on the engine DOCKER_HOST names? docker ps shows it",
                ))?;
            let io = engine
                .exec_start_attached(&exec)
                .await
                .map_err(failed("the engine accepted the exec but did not start it"))?;
            let what = format!("`buildctl dial-stdio` in container {name}");
            Ok(boxed(TokioIo::new(stdio::Demux::new(
                TokioIo::new(io),
                what,
            ))))
        }
        Address::Ssh {
            user,
            host,
            port,
            socket,
        } => {
            let target = ssh::Target {
                user: user.as_deref(),
                host,
                port: *port,
                socket: socket.as_deref(),
            };
            let stream =
                ssh::open(&target, ssh_opts)
                    .await
                    .map_err(|problem| ConnectError::Ssh {
                        addr: shown.clone(),
                        problem,
                    })?;
            Ok(boxed(TokioIo::new(stream)))
        }
    }
}

/// The raw byte stream to the daemon's HTTP/2 server, as `buildctl
/// dial-stdio` offers it: for bridging, not for rbuild's own calls.
///
/// # Errors
///
/// The [`ConnectError`] of [`Client::connect`](crate::Client::connect) for the same
/// address, [`ConnectError::Timeout`] when the stream does not open within `opts.timeout`.
pub async fn dial(
    addr: &Address,
    opts: &ConnectOptions,
) -> Result<impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + use<>, ConnectError>
{
    let tls = match &opts.tls {
        Some(config) => Some(tls::Tls::load(config, addr)?),
        None => None,
    };
    let io = tokio::time::timeout(opts.timeout, open(addr, tls.as_ref(), &opts.ssh))
        .await
        .map_err(|_| ConnectError::Timeout {
            addr: addr.to_string(),
            secs: opts.timeout.as_secs(),
        })??;
    Ok(TokioIo::new(io))
}

async fn unix(shown: &str, path: &Path) -> Result<tokio::net::UnixStream, ConnectError> {
    tokio::net::UnixStream::connect(path)
        .await
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ConnectError::NoSocket {
                addr: shown.to_string(),
                path: path.display().to_string(),
            },
            io::ErrorKind::PermissionDenied => ConnectError::PermissionDenied {
                addr: shown.to_string(),
                path: path.display().to_string(),
            },
            _ => ConnectError::Io {
                addr: shown.to_string(),
                source,
            },
        })
}
