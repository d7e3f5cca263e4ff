//! One build: a [`BuildPlan`] becomes a `SolveRequest`, and the session, the
//! Solve call and the Status stream run together under one cancel token
//! (upstream: client/solve.go runs the same three in one errgroup).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cache::{self, CacheEntry, LocalCache};
use crate::client::{BrokenConnection, Client, broken_connection, status_message};
use crate::engine::{Engine, LoadSink};
use crate::output::{Destination, Export};
use crate::proto::moby::buildkit::v1::{
    CacheOptions, CacheOptionsEntry, Exporter, SolveRequest, StatusRequest, StatusResponse,
};
use crate::session::filesend::{ExportTarget, FileSendService};
use crate::session::filesync::{LocalSource, TransferStats};
use crate::session::{CONTEXT_SOURCE, Session, SessionConfig, SessionError, new_id};

/// After Solve returns, how long the Status stream may take to deliver its
/// last messages (the Go client waits the same).
const STATUS_DRAIN: Duration = Duration::from_secs(5);

/// Where the Dockerfile comes from.
#[derive(Clone, Debug)]
pub enum DockerfileSource {
    /// `filename` inside directory `dir` (which may be the context itself).
    File { dir: PathBuf, filename: String },
    /// Contents held in memory (`-f -`, or a rewritten Dockerfile).
    Inline(Bytes),
}

/// Everything one build needs, resolved from user input.
#[derive(Clone, Debug)]
pub struct BuildPlan {
    pub context: PathBuf,
    pub dockerfile: DockerfileSource,
    /// `dockerfile.v0` attributes: target, build-arg:*, label:*, platform...
    pub frontend_attrs: BTreeMap<String, String>,
    /// Extra local directories, served under their own names and wired to
    /// the frontend as `context:NAME=local:NAME`.
    pub named_contexts: BTreeMap<String, PathBuf>,
    pub exports: Vec<Export>,
    pub cache_imports: Vec<CacheEntry>,
    pub cache_exports: Vec<CacheEntry>,
    pub entitlements: Vec<String>,
    /// Stable key for incremental uploads of this project's context.
    pub shared_key: String,
    /// Registry credentials from the Docker config (redacted in Debug).
    pub docker_config: crate::session::auth::DockerConfig,
    /// Secrets for RUN --mount=type=secret (values redacted in Debug).
    pub secrets: crate::session::secrets::SecretStore,
    /// SSH agents for RUN --mount=type=ssh.
    pub ssh: crate::session::sshforward::SshAgents,
    /// The Docker Engine that `--load` streams into when the daemon is not
    /// that engine itself.
    pub engine: Engine,
}

/// What a finished build reports.
#[derive(Clone, Debug, Default)]
pub struct BuildOutcome {
    /// The daemon's merged exporter response (`containerimage.digest`, ...).
    pub exporter_response: BTreeMap<String, String>,
    pub transfer: TransferStats,
    /// The build's ref, as shown in the daemon's history.
    pub build_ref: String,
    /// Things the user should know that did not fail the build.
    pub warnings: Vec<String>,
    /// Files and directories the exports wrote.
    pub written: Vec<PathBuf>,
    /// What each exporter produced, in `BuildPlan::exports` order.
    pub outputs: Vec<crate::output::OutputResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("cannot start the build session: {0}")]
    Session(#[from] SessionError),
    /// The build itself failed: a step, the frontend, an export.
    #[error("{0}")]
    Failed(String),
    #[error("build canceled")]
    Canceled,
    #[error(
        "BuildKit at {addr} stopped answering: no reply to a keepalive ping within {secs}s \
         (the daemon hung or the network to it is down; --keepalive sets the ping interval)"
    )]
    DaemonSilent { addr: String, secs: u64 },
    #[error("lost the connection to BuildKit at {addr}: {detail} (is the daemon still running?)")]
    ConnectionLost { addr: String, detail: String },
}

/// The name the frontend uses for the Dockerfile's local source.
const DOCKERFILE_LOCAL: &str = "dockerfile";
/// The file name served for an in-memory Dockerfile.
const INLINE_DOCKERFILE: &str = "Dockerfile";

impl BuildPlan {
    fn sources(&self) -> HashMap<String, LocalSource> {
        let mut sources = HashMap::new();
        sources.insert(
            CONTEXT_SOURCE.to_string(),
            LocalSource::Dir(self.context.clone()),
        );
        let dockerfile = match &self.dockerfile {
            DockerfileSource::File { dir, .. } => LocalSource::Dir(dir.clone()),
            DockerfileSource::Inline(data) => LocalSource::Files(BTreeMap::from([(
                INLINE_DOCKERFILE.to_string(),
                data.clone(),
            )])),
        };
        sources.insert(DOCKERFILE_LOCAL.to_string(), dockerfile);
        for (name, dir) in &self.named_contexts {
            sources.insert(name.clone(), LocalSource::Dir(dir.clone()));
        }
        sources
    }

    /// The request sent to `Control.Solve`.
    pub fn solve_request(&self, build_ref: &str, session_id: &str) -> SolveRequest {
        let mut attrs: HashMap<String, String> = self.frontend_attrs.clone().into_iter().collect();
        let filename = match &self.dockerfile {
            DockerfileSource::File { filename, .. } => filename.clone(),
            DockerfileSource::Inline(_) => INLINE_DOCKERFILE.to_string(),
        };
        attrs.insert("filename".into(), filename);
        for name in self.named_contexts.keys() {
            attrs.insert(format!("context:{name}"), format!("local:{name}"));
        }
        let entry = |c: &CacheEntry| CacheOptionsEntry {
            r#type: c.kind.clone(),
            attrs: c.attrs.clone().into_iter().collect(),
        };
        if !self.cache_imports.is_empty() {
            // The Dockerfile frontend reads its cache imports from this
            // attribute; the Go client mirrors Cache.Imports into it too.
            attrs.insert(
                "cache-imports".into(),
                cache::imports_attr(&self.cache_imports),
            );
        }
        let exporters: Vec<Exporter> = self
            .exports
            .iter()
            .map(|e| Exporter {
                r#type: e.kind.clone(),
                attrs: e.attrs.clone().into_iter().collect(),
            })
            .collect();
        let first = exporters.first().cloned().unwrap_or_default();
        SolveRequest {
            r#ref: build_ref.to_string(),
            session: session_id.to_string(),
            frontend: "dockerfile.v0".into(),
            frontend_attrs: attrs,
            cache: Some(CacheOptions {
                exports: self.cache_exports.iter().map(entry).collect(),
                imports: self.cache_imports.iter().map(entry).collect(),
            }),
            entitlements: self.entitlements.clone(),
            // Daemons before v0.13 read only the single deprecated exporter.
            exporter_deprecated: first.r#type,
            exporter_attrs_deprecated: first.attrs,
            exporters,
            ..Default::default()
        }
    }
}

/// Where each exporter's result goes on this machine, by exporter id; None
/// when nothing comes back to the client.
fn export_targets(plan: &BuildPlan) -> Option<HashMap<u32, ExportTarget>> {
    let mut targets = HashMap::new();
    for (id, export) in (0u32..).zip(&plan.exports) {
        let target = match &export.dest {
            Destination::Daemon => continue,
            Destination::File(path) => ExportTarget::File(path.clone()),
            Destination::Stdout => ExportTarget::Stdout,
            Destination::Dir(path) => ExportTarget::Dir(path.clone()),
            Destination::Load => {
                let names = export
                    .attrs
                    .get("name")
                    .map(|n| n.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                ExportTarget::Stream(Arc::new(LoadSink::new(plan.engine.clone(), names)))
            }
        };
        targets.insert(id, target);
    }
    (!targets.is_empty()).then_some(targets)
}

/// Runs one build. Status messages go to `status` as they arrive; `cancel`
/// stops the build on the daemon.
pub async fn solve(
    client: &Client,
    plan: &BuildPlan,
    status: mpsc::Sender<StatusResponse>,
    cancel: CancellationToken,
) -> Result<BuildOutcome, SolveError> {
    let mut plan = plan.clone();
    let (local_cache, warnings) = LocalCache::prepare(&mut plan.cache_imports, &plan.cache_exports)
        .map_err(|e| SolveError::Failed(format!("cannot create the local cache directory: {e}")))?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let plan = &plan;
    let (filesend, outputs) = match export_targets(plan) {
        Some(targets) => {
            let (service, outputs) = FileSendService::new(targets);
            (Some(service), Some(outputs))
        }
        None => (None, None),
    };
    let session = tokio::select! {
        s = Session::start(client.control(), SessionConfig {
            sources: plan.sources(),
            shared_key: plan.shared_key.clone(),
            content: local_cache.stores.clone(),
            filesend,
            auth: crate::session::auth::AuthService::new(plan.docker_config.clone()),
            secrets: plan.secrets.clone(),
            ssh: plan.ssh.clone(),
        }) => s?,
        _ = cancel.cancelled() => return Err(SolveError::Canceled),
    };
    let build_ref = new_id();
    let request = plan.solve_request(&build_ref, session.id());
    tracing::debug!(build_ref, session = session.id(), "solving");

    let status_task = tokio::spawn(forward_status(client.clone(), build_ref.clone(), status));
    let mut control = client.control();
    let result = tokio::select! {
        r = control.solve(request) => r.map_err(|s| solve_failure(client, &s)),
        // Dropping the Solve call resets its stream: the daemon cancels the
        // job and its running steps.
        _ = cancel.cancelled() => Err(SolveError::Canceled),
    };
    tracing::debug!(ok = result.is_ok(), "solve returned");
    // Keep the session until Status has drained: closing it first turns a
    // clean cancel into "no active session" errors on the daemon.
    if tokio::time::timeout(STATUS_DRAIN, status_task)
        .await
        .is_err()
    {
        tracing::debug!("status stream did not end within {STATUS_DRAIN:?}");
    }
    tracing::debug!("status drained");
    let transfer = session.context_stats();
    session.close().await;
    tracing::debug!("session closed");
    let response = result?.into_inner();
    // Files are renamed into place only now that the whole build succeeded;
    // on every earlier return `outputs` is dropped and its temp files go.
    let (written, per_exporter) = match outputs {
        Some(outputs) => {
            let metadata = outputs.exporter_metadata();
            let written = outputs
                .commit()
                .await
                .map_err(|e| SolveError::Failed(e.to_string()))?;
            (written, metadata)
        }
        None => (Vec::new(), BTreeMap::new()),
    };
    let exporter_response: BTreeMap<String, String> =
        response.exporter_response.into_iter().collect();
    local_cache
        .finish(&exporter_response)
        .map_err(|e| SolveError::Failed(format!("cannot record the local cache export: {e}")))?;
    let outputs = crate::output::attribute(&plan.exports, &exporter_response, &per_exporter);
    Ok(BuildOutcome {
        outputs,
        exporter_response,
        transfer,
        build_ref,
        warnings,
        written,
    })
}

/// The daemon's own error, or what happened to the connection when the
/// call died on this side.
fn solve_failure(client: &Client, status: &tonic::Status) -> SolveError {
    let addr = client.address().to_string();
    match broken_connection(status) {
        None => SolveError::Failed(status_message(status)),
        Some(BrokenConnection::KeepaliveTimeout) => SolveError::DaemonSilent {
            addr,
            secs: client
                .keepalive()
                .map_or(0, |k| crate::connect::ping_timeout(k).as_secs()),
        },
        Some(BrokenConnection::Failed(detail)) => {
            tracing::debug!(%detail, "the Solve call lost its connection");
            SolveError::ConnectionLost { addr, detail }
        }
    }
}

async fn forward_status(client: Client, build_ref: String, out: mpsc::Sender<StatusResponse>) {
    let mut control = client.control();
    let mut stream = match control.status(StatusRequest { r#ref: build_ref }).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => {
            tracing::debug!(error = %status_message(&status), "status stream refused");
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(msg)) => {
                if out.send(msg).await.is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(error = %status_message(&status), "status stream ended");
                return;
            }
        }
    }
}
