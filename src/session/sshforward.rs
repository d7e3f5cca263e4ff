//! SSH agent forwarding: the `--ssh` flag and the `SSH` service the daemon
//! calls for `RUN --mount=type=ssh`.
//!
//! Only agent sockets are forwarded. buildx also accepts private key files and
//! runs an in-process agent for them; that needs an SSH key parser and signer,
//! so here a key file is refused with a hint to `ssh-add` it to an agent.
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

/// The method names to list in the session header (`/moby.sshforward.v1.SSH/<m>`).
pub const METHODS: &[&str] = &["CheckAgent", "ForwardAgent"];

/// The id a bare `--ssh default` and an empty `CheckAgent{ID}` mean.
pub const DEFAULT_ID: &str = "default";

/// Request metadata naming the agent of a `ForwardAgent` stream
/// (upstream `sshforward.KeySSHID`).
const ID_KEY: &str = "buildkit.ssh.id";

/// Agent messages are small; 32 KiB chunks keep each tunnel write well under
/// the session's frame limits (PROTOCOL §3.1).
const CHUNK: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("--ssh {input:?}: {reason}")]
    Spec { input: String, reason: String },
    #[error("--ssh {id}: SSH_AUTH_SOCK is not set; start an agent or give --ssh {id}=SOCKET")]
    NoAuthSock { id: String },
    #[error("--ssh {id}: {}: {source}", path.display())]
    Socket {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--ssh {id}: {} is not an agent socket; key files are not supported, \
         add the key to an agent (ssh-add) and forward that",
        path.display()
    )]
    NotSocket { id: String, path: PathBuf },
    #[error("--ssh {id} is given twice")]
    Duplicate { id: String },
}

/// One `--ssh` flag: `ID` (the agent at `SSH_AUTH_SOCK`) or `ID=SOCKET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSpec {
    pub id: String,
    /// None: `SSH_AUTH_SOCK`, as buildkit does for any id given without paths.
    pub socket: Option<PathBuf>,
}

impl SshSpec {
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
            return Err(err("the id is empty (use default or ID=SOCKET)"));
        }
        let socket = match path {
            None => None,
            Some("") => return Err(err("the socket path is empty")),
            // buildx allows several comma-separated key files per id; they
            // need the in-process agent we do not have.
            Some(p) if p.contains(',') => {
                return Err(err(
                    "several paths need key files, which are not supported; use one agent socket",
                ));
            }
            Some(p) => Some(PathBuf::from(p)),
        };
        Ok(SshSpec {
            id: id.to_string(),
            socket,
        })
    }
}

/// Agent sockets by id, checked to exist before the build.
#[derive(Clone, Debug, Default)]
pub struct SshAgents {
    sockets: HashMap<String, PathBuf>,
}

impl SshAgents {
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}

/// Resolves `SSH_AUTH_SOCK` and checks that every socket exists and is one.
pub fn load(specs: &[SshSpec]) -> Result<SshAgents, SshError> {
    load_with(specs, std::env::var_os("SSH_AUTH_SOCK"))
}

/// [`load`] with `SSH_AUTH_SOCK` as a parameter, so tests need not mutate
/// the process environment.
fn load_with(specs: &[SshSpec], auth_sock: Option<OsString>) -> Result<SshAgents, SshError> {
    let mut sockets = HashMap::new();
    for s in specs {
        let path = match (&s.socket, &auth_sock) {
            (Some(p), _) => p.clone(),
            (None, Some(sock)) if !sock.is_empty() => PathBuf::from(sock),
            (None, _) => return Err(SshError::NoAuthSock { id: s.id.clone() }),
        };
        check_socket(&s.id, &path)?;
        if sockets.insert(s.id.clone(), path).is_some() {
            return Err(SshError::Duplicate { id: s.id.clone() });
        }
    }
    Ok(SshAgents { sockets })
}

fn check_socket(id: &str, path: &Path) -> Result<(), SshError> {
    let meta = std::fs::metadata(path).map_err(|source| SshError::Socket {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.file_type().is_socket() {
        return Err(SshError::NotSocket {
            id: id.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// `SSH.CheckAgent` and `SSH.ForwardAgent` over configured agent sockets.
#[derive(Clone)]
pub struct SshService {
    agents: Arc<SshAgents>,
}

impl fmt::Debug for SshService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<_> = self.agents.sockets.keys().collect();
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

    fn socket(&self, id: &str) -> Result<&Path, Status> {
        let id = if id.is_empty() { DEFAULT_ID } else { id };
        self.agents
            .sockets
            .get(id)
            .map(PathBuf::as_path)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no SSH agent forwarded for id {id:?} (add --ssh {id} or --ssh {id}=SOCKET)"
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
        self.socket(&request.into_inner().id)?;
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
        let path = self.socket(&id)?;
        let conn = UnixStream::connect(path).await.map_err(|e| {
            Status::unavailable(format!("ssh agent {id:?} at {}: {e}", path.display()))
        })?;
        tracing::debug!(id = %id, "forwarding ssh agent connection");
        let (reader, writer) = conn.into_split();
        // Small buffer: the agent protocol is request/response, and a slow
        // daemon should push back on the socket rather than queue in memory.
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(proxy(request.into_inner(), reader, writer, tx));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_buildx_syntax() {
        for (input, id, socket) in [
            ("default", "default", None),
            ("git", "git", None),
            (
                "default=/run/agent.sock",
                "default",
                Some("/run/agent.sock"),
            ),
            ("a=/p=q", "a", Some("/p=q")),
        ] {
            let got = SshSpec::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.id, id, "{input}");
            assert_eq!(got.socket.as_deref(), socket.map(Path::new), "{input}");
        }
        for (input, reason) in [
            ("", "id is empty"),
            ("=/p", "id is empty"),
            ("a=", "path is empty"),
            ("a=/k1,/k2", "key files"),
        ] {
            let err = SshSpec::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn validates_sockets_before_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let spec = |s: &str| SshSpec::parse(s).unwrap();

        let agents = load_with(&[spec("default")], Some(sock.clone().into())).unwrap();
        assert_eq!(agents.sockets["default"], sock);
        let err = load_with(&[spec("default")], None).unwrap_err();
        assert!(matches!(err, SshError::NoAuthSock { .. }), "{err}");
        let err = load_with(&[spec(&format!("k={}", key.display()))], None).unwrap_err();
        assert!(matches!(err, SshError::NotSocket { .. }), "{err}");
        let err = load_with(&[spec("k=/nonexistent.sock")], None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.sock"), "{err}");
        let twice = [
            spec("default"),
            spec(&format!("default={}", sock.display())),
        ];
        let err = load_with(&twice, Some(sock.clone().into())).unwrap_err();
        assert!(matches!(err, SshError::Duplicate { .. }), "{err}");
    }

    #[tokio::test]
    async fn check_agent_knows_configured_ids() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let agents = load_with(&[SshSpec::parse("default").unwrap()], Some(sock.into())).unwrap();
        let service = SshService::new(agents);
        let check = |id: &str| Request::new(CheckAgentRequest { id: id.into() });
        assert!(service.check_agent(check("")).await.is_ok());
        assert!(service.check_agent(check("default")).await.is_ok());
        let status = service.check_agent(check("other")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert!(status.message().contains("other"));
    }
}
