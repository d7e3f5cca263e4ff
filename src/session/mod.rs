//! A BuildKit session: the services the daemon calls back on while it builds.
//!
//! The daemon reaches our files, credentials and export targets only through
//! the session: each build opens `Control.Session`, runs a gRPC server on that
//! tunnel and registers one service per concern (health, filesync, filesend,
//! content, auth, secrets, sshforward, upload). The header that tells the
//! daemon which methods exist is derived from what was registered (upstream:
//! session/session.go, `allowedMethods`).
//!
//! A program sees only what it hands a build for the session to serve
//! ([`SecretSpec`], [`SshSpec`], [`ContextArchive`]), what the upload of a
//! context cost ([`TransferStats`]) and the errors about them
//! ([`SecretError`], [`SshError`]); the services themselves are internal, the
//! daemon's to call, never a program's.

pub(crate) mod auth;
pub(crate) mod content;
pub(crate) mod filesend;
pub(crate) mod filesync;
pub(crate) mod secrets;
pub(crate) mod sshforward;
pub(crate) mod tunnel;
pub(crate) mod upload;

pub use filesync::TransferStats;
pub use secrets::{SecretError, SecretSource, SecretSpec};
pub use sshforward::{SshError, SshSpec};
pub use upload::ContextArchive;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::metadata::MetadataValue;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::transport::server::Router;

use crate::connect::MAX_MESSAGE_SIZE;
use crate::proto::containerd::services::content::v1::content_server::ContentServer;
use crate::proto::moby::buildkit::v1::control_client::ControlClient;
use crate::proto::moby::filesync::v1::file_sync_server::FileSyncServer;
use filesync::{FileSyncService, LocalSource};
use tunnel::TunnelIo;

/// The local source name of the main build context, as the Dockerfile
/// frontend asks for it.
pub const CONTEXT_SOURCE: &str = "context";

/// How long the daemon may take to attach to a new session. It answers in
/// milliseconds when healthy; a daemon that never does is wedged.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(20);
/// Calls the daemon may have open at once on the session. BuildKit uses a
/// handful (uploads, content reads, a secret, an agent); each open call holds
/// bounded buffers, so this bounds what a misbehaving daemon can make us hold.
/// A Go client waits for a free slot rather than failing.
pub(crate) const MAX_CONCURRENT_CALLS: u32 = 128;
/// The request headers of one call: the frontend sends each `.dockerignore`
/// pattern as a header value, so hyper's 16 KiB default refuses a long
/// ignore file; grpc-go's server (buildx's side) allows 16 MiB.
const MAX_HEADER_LIST: u32 = 1 << 20;

/// Why the session a build needs could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The daemon answered `Control.Session` with an error (its message).
    #[error("the daemon refused the session: {0}")]
    Refused(String),
    /// The daemon accepted the call but never attached: it is wedged.
    #[error("the daemon did not attach to the session within {0:?}")]
    AttachTimeout(Duration),
    /// The tunnel closed before the daemon attached (the transport's words).
    #[error("the session ended before the daemon attached: {0}")]
    Ended(String),
}

/// What the session serves.
#[derive(Default)]
pub(crate) struct SessionConfig {
    /// Local sources by name (`context`, `dockerfile`, named contexts).
    pub sources: HashMap<String, LocalSource>,
    /// Stable across builds of the same project, so the daemon can reuse the
    /// previous upload and receive only what changed.
    pub shared_key: String,
    /// Content stores the daemon may read and write (local cache dirs).
    pub content: content::ContentStores,
    /// Exports the daemon sends back (FileSend); None when no output goes to
    /// the client.
    pub filesend: Option<filesend::FileSendService>,
    /// Registry credentials for pulls and pushes; the default is anonymous.
    pub auth: auth::AuthService,
    /// Build secrets for RUN --mount=type=secret, read before the build.
    pub secrets: secrets::SecretStore,
    /// SSH agents for RUN --mount=type=ssh.
    pub ssh: sshforward::SshAgents,
    /// A context archive the daemon pulls instead of a `context` directory.
    pub uploads: upload::UploadService,
}

/// A running session; dropping it without [`Session::close`] also ends it.
pub(crate) struct Session {
    id: String,
    /// Always `Some` until closed; an Option so `close` can await it while
    /// `Drop` still aborts it on early exits.
    task: Option<JoinHandle<()>>,
    stats: TransferStats,
}

/// Records each registered service's methods for the session header, so the
/// header cannot name a service that is not served.
struct ServiceSet {
    router: Router,
    methods: Vec<String>,
}

impl ServiceSet {
    fn add<S>(mut self, service: S, methods: &[&str]) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.methods
            .extend(methods.iter().map(|m| format!("/{}/{m}", S::NAME)));
        self.router = self.router.add_service(service);
        self
    }
}

impl Session {
    /// Opens the session and waits until the daemon has attached to it.
    pub async fn start(
        mut control: ControlClient<Channel>,
        config: SessionConfig,
    ) -> Result<Session, SessionError> {
        let id = new_id();
        let filesync = FileSyncService::new(config.sources);
        // An archive context is the context's upload when there is one.
        let stats = if config.uploads.is_empty() {
            filesync.stats(CONTEXT_SOURCE)
        } else {
            config.uploads.stats()
        };
        let (_, health) = tonic_health::server::health_reporter();

        let mut server = tonic::transport::Server::builder()
            // Uploads are the bulk of session traffic: large windows and
            // frames keep the daemon from stalling on flow control.
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .max_frame_size(Some(1 << 20))
            .max_concurrent_streams(Some(MAX_CONCURRENT_CALLS))
            .http2_max_header_list_size(Some(MAX_HEADER_LIST));
        let registry = ServiceSet {
            router: server.add_routes(tonic::service::Routes::default()),
            methods: Vec::new(),
        }
        .add(health, &["Check", "Watch"])
        .add(
            FileSyncServer::new(filesync)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            &["DiffCopy", "TarStream"],
        );
        // Always registered, even empty: unknown ids then get NotFound and
        // optional mounts proceed.
        let registry = registry
            .add(config.auth.into_server(), auth::METHODS)
            .add(
                secrets::SecretsService::new(config.secrets).into_server(),
                secrets::METHODS,
            )
            .add(
                sshforward::SshService::new(config.ssh).into_server(),
                sshforward::METHODS,
            );
        let registry = if config.uploads.is_empty() {
            registry
        } else {
            registry.add(
                config
                    .uploads
                    .into_server()
                    .max_encoding_message_size(MAX_MESSAGE_SIZE),
                upload::METHODS,
            )
        };
        let registry = match config.filesend {
            Some(filesend) => registry.add(filesend, filesend::METHODS),
            None => registry,
        };
        let registry = if config.content.is_empty() {
            registry
        } else {
            registry.add(
                ContentServer::new(content::ContentService::new(config.content))
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(MAX_MESSAGE_SIZE),
                content::METHODS,
            )
        };

        let (out_tx, out_rx) = mpsc::channel(64);
        let mut request = tonic::Request::new(tunnel::outbound_stream(out_rx));
        let md = request.metadata_mut();
        md.insert("x-docker-expose-session-uuid", ascii(&id));
        md.insert(
            "x-docker-expose-session-sharedkey",
            ascii(&config.shared_key),
        );
        // One entry per method: the daemon matches each value exactly.
        for method in &registry.methods {
            md.append("x-docker-expose-session-grpc-method", ascii(method));
        }
        tracing::debug!(session = %id, methods = ?registry.methods, "opening session");

        let (first_tx, first_rx) = oneshot::channel();
        let (fail_tx, fail_rx) = oneshot::channel::<SessionError>();
        let router = registry.router;
        let task = tokio::spawn(async move {
            let inbound = match control.session(request).await {
                Ok(resp) => resp.into_inner(),
                Err(status) => {
                    let _ = fail_tx.send(SessionError::Refused(status.message().to_string()));
                    return;
                }
            };
            let io = TunnelIo::new(inbound, out_tx, first_tx);
            // The incoming stream never ends on its own: the server lives
            // until the session task is aborted.
            let incoming = futures::StreamExt::chain(
                futures::stream::iter([Ok::<_, std::io::Error>(io)]),
                futures::stream::pending(),
            );
            if let Err(e) = router.serve_with_incoming(incoming).await {
                tracing::debug!(error = %e, "session server ended");
            }
        });

        // Owned by a Session from here on, so dropping this future while
        // the daemon attaches (a cancel) also ends the task.
        let session = Session {
            id,
            task: Some(task),
            stats,
        };
        let attached = tokio::time::timeout(ATTACH_TIMEOUT, async {
            tokio::select! {
                first = first_rx => first.map_err(|_| SessionError::Ended("tunnel closed".into())),
                failed = fail_rx => Err(failed.unwrap_or_else(|_| SessionError::Ended("session task ended".into()))),
            }
        })
        .await;
        match attached {
            Ok(Ok(())) => Ok(session),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SessionError::AttachTimeout(ATTACH_TIMEOUT)),
        }
    }

    /// The id a `SolveRequest` names to use this session.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Upload counters of the `context` source, live while the build runs.
    pub fn context_stats(&self) -> TransferStats {
        self.stats.clone()
    }

    /// Ends the session. Dropping the `Control.Session` call resets its
    /// stream, which makes the daemon release the session at once.
    pub async fn close(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Metadata values here are ASCII by construction (base36 ids, hex keys,
/// method paths); anything else is replaced rather than dropped silently.
fn ascii(value: &str) -> MetadataValue<tonic::metadata::Ascii> {
    MetadataValue::try_from(value).unwrap_or_else(|_| MetadataValue::from_static("invalid"))
}

/// 25 base36 characters, as BuildKit's Go client makes them (identity.NewID);
/// no `:`, which the daemon treats as a separator.
pub(crate) fn new_id() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut raw = [0u8; 25];
    // Falling back to a time-based seed keeps ids unique enough if the OS
    // RNG is unavailable; they only need to be unique per daemon.
    if getrandom::fill(&mut raw).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
    raw.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_base36_and_unique() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 25);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_ne!(a, b);
    }
}
