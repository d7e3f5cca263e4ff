//! SSH agent forwarding: the `--ssh` flag and the `SSH` service the daemon
//! calls for `RUN --mount=type=ssh`.
//!
//! An id maps to an agent socket, whose bytes are copied through, or to
//! private key files, which [`keyring`] serves as an in-process agent.
//!
//! Follows buildx `util/buildflags/ssh.go` (flag syntax) and buildkit
//! `session/sshforward/sshprovider/agentprovider.go` and `sshforward/copy.go`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::moby::sshforward::v1::ssh_server::{Ssh, SshServer};
use crate::proto::moby::sshforward::v1::{BytesMessage, CheckAgentRequest, CheckAgentResponse};

#[cfg(feature = "ssh-agent")]
mod keyring;
#[cfg(feature = "ssh-agent")]
pub(crate) use keyring::Keyring;

/// The method names to list in the session header (`/moby.sshforward.v1.SSH/<m>`).
pub const METHODS: &[&str] = &["CheckAgent", "ForwardAgent"];

/// The id a bare `--ssh default` and an empty `CheckAgent{ID}` mean.
pub const DEFAULT_ID: &str = "default";

/// Request metadata naming the agent of a `ForwardAgent` stream
/// (upstream `sshforward.KeySSHID`).
const ID_KEY: &str = "buildkit.ssh.id";

/// Agent traffic is small; messages of at most 32 KiB, the size upstream
/// session/sshforward/copy.go reads and sends, stay far below the session's
/// 1 MiB HTTP/2 frames.
const CHUNK: usize = 32 * 1024;

/// Why an SSH agent or key cannot be forwarded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// The spec is malformed.
    #[error("ssh {input:?}: {reason}")]
    Spec {
        /// The spec as given.
        input: String,
        /// What is wrong, and the right form.
        reason: String,
    },
    /// The agent was asked for but `SSH_AUTH_SOCK` is not set.
    #[error("ssh {id}: SSH_AUTH_SOCK is not set; start an agent or give {id}=SOCKET")]
    NoAuthSock {
        /// The id.
        id: String,
    },
    /// The agent socket cannot be used.
    #[error("ssh {id}: {}: {source}", path.display())]
    Socket {
        /// The id.
        id: String,
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file cannot be used (unreadable, encrypted, an unsupported
    /// kind).
    #[error("ssh {id}: key file {}: {reason}", path.display())]
    Key {
        /// The id.
        id: String,
        /// The key file.
        path: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// A socket was listed among key files.
    #[error(
        "ssh {id}: {} is an agent socket; a socket must be given alone, \
         several paths are key files",
        path.display()
    )]
    SocketAmongKeys {
        /// The id.
        id: String,
        /// The socket.
        path: PathBuf,
    },
    /// Two agents have one id.
    #[error("ssh {id} is given twice")]
    Duplicate {
        /// The id.
        id: String,
    },
}

/// One `--ssh` flag: `ID` (the agent at `SSH_AUTH_SOCK`), `ID=SOCKET` or
/// `ID=KEYFILE[,KEYFILE...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSpec {
    /// The id `RUN --mount=type=ssh,id=ID` asks for (`default` when unnamed).
    pub id: String,
    /// Empty: `SSH_AUTH_SOCK`, as buildkit does for any id given without paths.
    pub paths: Vec<PathBuf>,
}

impl SshSpec {
    /// Parses buildx's `ID`, `ID=SOCKET` or `ID=KEYFILE[,KEYFILE...]`.
    ///
    /// # Errors
    ///
    /// [`SshError::Spec`] when the id or one of the paths is empty.
    pub fn parse(input: &str) -> Result<SshSpec, SshError> {
        let err = |reason: &str| SshError::Spec {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (id, path) = match input.split_once('=') {
            Some((id, path)) => (id, Some(path)),
            None => (input, None),
        };
        if id.is_empty() {
            return Err(err(
                "the id is empty (use default, ID=SOCKET or ID=KEYFILE)",
            ));
        }
        let paths = match path {
            None => Vec::new(),
            Some(p) => p
                .split(',')
                .map(|p| match p {
                    "" => Err(err("a path is empty (ID=SOCKET or ID=KEYFILE[,KEYFILE])")),
                    p => Ok(PathBuf::from(p)),
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(SshSpec {
            id: id.to_string(),
            paths,
        })
    }
}

/// What answers for one id.
#[derive(Clone, Debug)]
enum Agent {
    Socket(PathBuf),
    #[cfg(feature = "ssh-agent")]
    Keys(Arc<Keyring>),
}

/// Agents by id, checked (sockets) or loaded (key files) before the build.
#[derive(Clone, Debug, Default)]
pub struct SshAgents {
    agents: HashMap<String, Agent>,
}

impl SshAgents {}

/// Resolves `SSH_AUTH_SOCK`, checks sockets and reads key files.
pub fn load(specs: &[SshSpec]) -> Result<SshAgents, SshError> {
    load_with(specs, std::env::var_os("SSH_AUTH_SOCK"))
}

/// [`load`] with `SSH_AUTH_SOCK` as a parameter, so tests need not mutate
/// the process environment.
fn load_with(specs: &[SshSpec], auth_sock: Option<OsString>) -> Result<SshAgents, SshError> {
    let mut agents = HashMap::new();
    for s in specs {
        let agent = match (s.paths.as_slice(), &auth_sock) {
            ([], Some(sock)) if !sock.is_empty() => {
                let path = PathBuf::from(sock);
                check_socket(&s.id, &path)?;
                Agent::Socket(path)
            }
            ([], _) => return Err(SshError::NoAuthSock { id: s.id.clone() }),
            // As buildkit decides: one path that is a socket is an agent,
            // anything else is key files.
            ([path], _) if is_socket(&s.id, path)? => Agent::Socket(path.clone()),
            (paths, _) => {
                for path in paths {
                    if is_socket(&s.id, path)? {
                        return Err(SshError::SocketAmongKeys {
                            id: s.id.clone(),
                            path: path.clone(),
                        });
                    }
                }
                key_agent(&s.id, paths)?
            }
        };
        if agents.insert(s.id.clone(), agent).is_some() {
            return Err(SshError::Duplicate { id: s.id.clone() });
        }
    }
    Ok(SshAgents { agents })
}

fn is_socket(id: &str, path: &Path) -> Result<bool, SshError> {
    let meta = std::fs::metadata(path).map_err(|source| SshError::Socket {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    Ok(meta.file_type().is_socket())
}

fn check_socket(id: &str, path: &Path) -> Result<(), SshError> {
    if is_socket(id, path)? {
        return Ok(());
    }
    Err(SshError::Socket {
        id: id.to_string(),
        path: path.to_path_buf(),
        source: std::io::Error::other("SSH_AUTH_SOCK names no socket"),
    })
}

/// `SSH.CheckAgent` and `SSH.ForwardAgent` over configured agent sockets.
#[derive(Clone)]
pub struct SshService {
    agents: Arc<SshAgents>,
}

impl fmt::Debug for SshService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.agents.agents.keys().collect();
        ids.sort();
        f.debug_struct("SshService").field("ids", &ids).finish()
    }
}

impl SshService {
    pub fn new(agents: SshAgents) -> Self {
        Self {
            agents: Arc::new(agents),
        }
    }

    /// The tonic service, ready for the session's registry.
    pub fn into_server(self) -> SshServer<SshService> {
        SshServer::new(self)
    }

    fn agent(&self, id: &str) -> Result<&Agent, Status> {
        let id = if id.is_empty() { DEFAULT_ID } else { id };
        self.agents.agents.get(id).ok_or_else(|| {
            Status::not_found(format!(
                "no SSH agent forwarded for id {id:?} (give the build an agent socket \
                 or key files under that id)"
            ))
        })
    }
}

type ForwardStream = Pin<Box<dyn Stream<Item = Result<BytesMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        self.agent(&request.into_inner().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = ForwardStream;

    async fn forward_agent(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(DEFAULT_ID)
            .to_string();
        // Small buffer: the agent protocol is request/response, and a slow
        // daemon should push back on the socket rather than queue in memory.
        let (tx, rx) = mpsc::channel(4);
        match self.agent(&id)? {
            Agent::Socket(path) => {
                let conn = UnixStream::connect(path).await.map_err(|e| {
                    Status::unavailable(format!("ssh agent {id:?} at {}: {e}", path.display()))
                })?;
                tracing::debug!(id = %id, "forwarding ssh agent connection");
                let (reader, writer) = conn.into_split();
                tokio::spawn(proxy(request.into_inner(), reader, writer, tx));
            }
            #[cfg(feature = "ssh-agent")]
            Agent::Keys(keyring) => {
                tracing::debug!(id = %id, "serving ssh agent from key files");
                tokio::spawn(keyring::serve(keyring.clone(), request.into_inner(), tx));
            }
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Copies both ways until the agent closes its side; ending then drops `tx`,
/// which ends the response stream (upstream `sshforward.Copy`).
async fn proxy(
    inbound: Streaming<BytesMessage>,
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    tx: mpsc::Sender<Result<BytesMessage, Status>>,
) {
    let upstream = tokio::spawn(to_agent(inbound, writer));
    from_agent(reader, tx).await;
    // The agent is done; whatever the daemon still sends has nowhere to go.
    upstream.abort();
}

async fn to_agent(mut inbound: Streaming<BytesMessage>, mut writer: OwnedWriteHalf) {
    loop {
        match inbound.message().await {
            Ok(Some(msg)) => {
                if let Err(e) = writer.write_all(&msg.data).await {
                    tracing::debug!(error = %e, "ssh agent write failed");
                    return;
                }
            }
            // The daemon half-closed: pass the half-close on and let the
            // reader drain the agent's last answer.
            Ok(None) => break,
            Err(status) => {
                tracing::debug!(error = %status, "ssh forward stream failed");
                break;
            }
        }
    }
    if let Err(e) = writer.shutdown().await {
        tracing::debug!(error = %e, "ssh agent shutdown(write) failed");
    }
}

async fn from_agent(mut reader: OwnedReadHalf, tx: mpsc::Sender<Result<BytesMessage, Status>>) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => read,
            // The daemon went away (stream reset): stop waiting on the agent.
            () = tx.closed() => return,
        };
        let msg = match read {
            Ok(0) => return,
            Ok(n) => Ok(BytesMessage {
                data: Bytes::copy_from_slice(&buf[..n]),
            }),
            Err(e) => Err(Status::unavailable(format!("ssh agent read: {e}"))),
        };
        let failed = msg.is_err();
        if tx.send(msg).await.is_err() || failed {
            return;
        }
    }
}

/// The in-process agent for private key files.
#[cfg(feature = "ssh-agent")]
fn key_agent(id: &str, paths: &[PathBuf]) -> Result<Agent, SshError> {
    Ok(Agent::Keys(Arc::new(Keyring::load(id, paths)?)))
}

/// Without the `ssh-agent` feature only agent sockets can be forwarded.
#[cfg(not(feature = "ssh-agent"))]
fn key_agent(id: &str, paths: &[PathBuf]) -> Result<Agent, SshError> {
    Err(SshError::Key {
        id: id.to_string(),
        path: paths.first().cloned().unwrap_or_default(),
        reason: "this build of rbuild has no in-process agent for key files (the ssh-agent \
                 feature is off): give an agent socket instead"
            .to_string(),
    })
}

#[cfg(test)]
mod tests;
