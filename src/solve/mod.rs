//! One build on the daemon: a [`BuildPlan`] becomes a `SolveRequest`, and the
//! session, the Solve call and the Status stream run together under one
//! cancel token (upstream: client/solve.go runs the same three in one
//! errgroup).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cache::{CacheEntry, LocalCache, Scrubber};
use crate::daemon::{BrokenConnection, Daemon, broken_connection, status_message};
use crate::outcome::{BuildError, BuildResult, StepReport, UploadStats};
use crate::output::Destination;
use crate::output::LoadSink;
use crate::progress::Summary;
use crate::progress::event::{EventKind, EventSink};
use crate::progress::state::State;
use crate::proto::moby::buildkit::v1::StatusRequest;
use crate::request::{BuildPlan, DOCKERFILE_LOCAL, DockerfileSource, INLINE_DOCKERFILE};
use crate::session::filesend::{ExportTarget, FileSendService, StreamSink};
use crate::session::filesync::LocalSource;
use crate::session::upload::UploadService;
use crate::session::{CONTEXT_SOURCE, Session, SessionConfig, new_id};

mod cache_steps;
mod failure;
mod gateway;
pub(crate) mod record;
mod shared;

pub(crate) use gateway::{Links, Published};
pub(crate) use shared::{LocalsView, SharedLocals};

/// After Solve returns, how long the Status stream may take to deliver its
/// last messages (the Go client waits the same).
const STATUS_DRAIN: Duration = Duration::from_secs(5);

impl BuildPlan {
    /// The local sources the frontend reads, by the names it asks for.
    pub(crate) fn sources(&self) -> HashMap<String, LocalSource> {
        let mut sources = HashMap::new();
        if let Some(context) = &self.context {
            sources.insert(CONTEXT_SOURCE.to_string(), context.clone());
        }
        let dockerfile = match &self.dockerfile {
            DockerfileSource::File { dir, filename } => Some(LocalSource::Dir(
                dir.clone(),
                crate::request::confine::dockerfile_scope(filename),
            )),
            DockerfileSource::Inline(data) => Some(LocalSource::Files(BTreeMap::from([(
                INLINE_DOCKERFILE.to_string(),
                data.clone(),
            )]))),
            // Read from the remote context by the frontend.
            DockerfileSource::Remote { .. } => None,
        };
        if let Some(dockerfile) = dockerfile {
            sources.insert(DOCKERFILE_LOCAL.to_string(), dockerfile);
        }
        for (name, source) in &self.named_contexts {
            sources.insert(name.clone(), source.clone());
        }
        sources
    }

    /// Where each exporter's result goes on this machine, by exporter id;
    /// None when nothing comes back to the client.
    fn export_targets(&self) -> Option<HashMap<u32, ExportTarget>> {
        let mut targets = HashMap::new();
        for (id, export) in (0u32..).zip(&self.exports) {
            let target = match &export.dest {
                Destination::Daemon => continue,
                Destination::File(path) => ExportTarget::File(path.clone()),
                Destination::Stdout => ExportTarget::Stdout,
                Destination::Dir(path) => ExportTarget::Dir(path.clone()),
                Destination::Stream(channel) => {
                    ExportTarget::Stream(Arc::new(crate::output::ChannelSink::new(channel)))
                }
                Destination::Load => {
                    let names = export
                        .attrs
                        .get("name")
                        .map(|n| n.split(',').map(str::to_string).collect())
                        .unwrap_or_default();
                    let engine = self.engine.clone().unwrap_or_else(|| {
                        crate::docker_api::Engine::new(crate::connect::docker_socket_from_env())
                    });
                    let sink: Arc<dyn StreamSink> = Arc::new(LoadSink::new(engine, names));
                    ExportTarget::Stream(sink)
                }
            };
            targets.insert(id, target);
        }
        (!targets.is_empty()).then_some(targets)
    }
}

/// Runs one build. Events go to `events`; `cancel` stops the build on the
/// daemon. With `shared`, the local sources are served by that session
/// (shared with other builds) instead of the build's own. `links` ties a
/// gateway build to the builds of the same call that take its result.
pub(crate) async fn run(
    client: &Daemon,
    plan: &BuildPlan,
    events: &EventSink,
    cancel: CancellationToken,
    shared: Option<LocalsView>,
    links: Links,
) -> Result<BuildResult, BuildError> {
    let started = Instant::now();
    let mut plan = plan.clone();
    let (local_cache, local_warnings) =
        LocalCache::prepare(&mut plan.cache_imports, &plan.cache_exports).map_err(|(dir, e)| {
            BuildError::LocalIo {
                what: format!("cannot create the local cache directory {}", dir.display()),
                source: Box::new(e),
            }
        })?;
    let mut warnings = std::mem::take(&mut plan.warnings);
    warnings.extend(local_warnings);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let plan = &plan;
    let (filesend, outputs) = match plan.export_targets() {
        Some(targets) => {
            let (service, outputs) = FileSendService::new(targets);
            (Some(service), Some(outputs))
        }
        None => (None, None),
    };
    // The build's own session serves its sources too: a frontend that
    // ignores `local-sessionid` (the Dockerfile frontend before BuildKit
    // 0.15, e.g. Docker Engine 26's) reads them from there, as buildx
    // arranges it (docker/buildx#2615).
    let (locals, shared_upload) = match shared {
        Some(v) => (v.ids, Some((v.context, v.shared))),
        None => (BTreeMap::new(), None),
    };
    let mut content = local_cache.stores.clone();
    for (store, dir) in &plan.oci_stores {
        content.insert_oci(store, dir);
    }
    let uploads = UploadService::new(plan.upload.iter().cloned().collect());
    tracing::debug!(hosts = ?plan.auth_scope.hosts(), "registry credentials only for (None: every host)");
    let session = tokio::select! {
        s = Session::start(client.control(), SessionConfig {
            sources: plan.sources(),
            shared_key: plan.shared_key.clone(),
            content,
            uploads,
            filesend,
            auth: crate::session::auth::AuthService::new(
                plan.docker_config.clone(),
                plan.auth_scope.clone(),
            ),
            secrets: plan.secrets.clone(),
            ssh: plan.ssh.clone(),
        }) => s?,
        _ = cancel.cancelled() => return Err(BuildError::Canceled),
    };
    let transfer = session.context_stats();
    let session_id = session.id().to_string();
    let build_ref = new_id();
    let request = plan.solve_request(&build_ref, session.id(), &locals);
    tracing::debug!(
        build_ref,
        session = session.id(),
        gateway = plan.via_gateway(),
        "solving"
    );

    let status_task = StatusTask(tokio::spawn(forward_status(
        client.clone(),
        build_ref.clone(),
        events.clone(),
        plan.scrubber.clone(),
    )));
    let mut control = client.control();
    let solved = async {
        if plan.via_gateway() {
            let frontend = plan.frontend_request(&locals);
            gateway::solve(
                client,
                &build_ref,
                plan,
                frontend,
                links,
                control.solve(request),
            )
            .await
        } else {
            (control.solve(request).await, gateway::Driven::default())
        }
    };
    let (result, driven) = tokio::select! {
        r = solved => r,
        // Dropping the Solve call resets its stream: the daemon cancels the
        // job and its running steps.
        _ = cancel.cancelled() => {
            drain(status_task).await;
            session.close().await;
            return Err(BuildError::Canceled);
        }
    };
    tracing::debug!(ok = result.is_ok(), "solve returned");
    // Keep the session until Status has drained: closing it first turns a
    // clean cancel into "no active session" errors on the daemon.
    let (summary, state) = drain(status_task).await;
    tracing::debug!("status drained");
    session.close().await;
    tracing::debug!("session closed");
    let (call, driven_error, read) = (driven.call, driven.error, driven.read);
    if let Some(e) = driven_error {
        return Err(gateway::with_daemon(e, client));
    }
    let failed = state.failures();
    let cache_failures = cache_steps::failures(plan, &session_id, &state, &failed);
    // What failed on this machine is the cause; the daemon only echoes it.
    let local_failure = match &result {
        Err(_) => outputs.as_ref().and_then(|o| o.local_failure()),
        Ok(_) => None,
    };
    if let Some(local) = local_failure {
        return Err(BuildError::Output {
            path: local.path,
            kind: local.kind,
            message: local.message,
        });
    }
    let changed = shared_upload.as_ref().and_then(|(s, _)| s.changed());
    if let (Err(_), Some(path)) = (&result, transfer.changed().or(changed)) {
        return Err(BuildError::ContextChanged { path });
    }
    let response = match result {
        Ok(r) => r.into_inner(),
        Err(status) => {
            return Err(solve_failure(
                client,
                plan,
                &status,
                (&summary, &state),
                &cache_failures,
            ));
        }
    };
    // Files are renamed into place only now that the whole build succeeded;
    // on every earlier return `outputs` is dropped and its temp files go.
    let (written, per_exporter) = match outputs {
        Some(outputs) => {
            let metadata = outputs.exporter_metadata();
            let written = outputs.commit().await.map_err(|e| BuildError::LocalIo {
                what: "cannot write the outputs".to_string(),
                source: Box::new(e),
            })?;
            (written, metadata)
        }
        None => (Vec::new(), BTreeMap::new()),
    };
    let exporter_response: BTreeMap<String, String> =
        response.exporter_response.into_iter().collect();
    local_cache
        .finish(&exporter_response)
        .map_err(|e| BuildError::LocalIo {
            what: "cannot record the local cache export".to_string(),
            source: Box::new(e),
        })?;
    for warning in cache_steps::warnings(plan, &failed, &cache_failures) {
        tracing::warn!("{warning}");
        warnings.push(warning);
    }
    warnings.extend(
        plan.auth_scope
            .withheld()
            .iter()
            .map(|host| crate::credentials::withheld_message(host)),
    );
    let mut outputs = crate::output::attribute(&plan.exports, &exporter_response, &per_exporter);
    // A call is internal: the daemon keeps no record to read.
    let provenance = match plan.call {
        Some(_) => BTreeMap::new(),
        None => record::read_record(client, plan, &build_ref, &mut outputs, &mut warnings).await,
    };
    Ok(BuildResult {
        name: plan.name.clone(),
        build_ref,
        outputs,
        exporter_response,
        steps: StepReport::from(&summary),
        upload: UploadStats::of(&transfer, false),
        shared_upload: shared_upload.map(|(stats, shared)| UploadStats::of(&stats, shared)),
        cache_from: plan
            .cache_imports
            .iter()
            .map(CacheEntry::redacted)
            .collect(),
        cache_to: plan
            .cache_exports
            .iter()
            .map(CacheEntry::redacted)
            .collect(),
        cache_failures: cache_failures.into_iter().map(|(_, f)| f).collect(),
        provenance,
        warnings,
        freshness: plan
            .rewritten
            .as_ref()
            .map(|r| r.refreshed.clone())
            .unwrap_or_default(),
        written,
        duration: started.elapsed(),
        call,
        frontend_warnings: distinct(&state.warnings),
        read: read
            .transpose()
            .map_err(|message| BuildError::Daemon { message })?,
    })
}

/// Each warning once, in the order they came.
fn distinct(all: &[crate::progress::status::Warning]) -> Vec<crate::progress::status::Warning> {
    let mut out: Vec<crate::progress::status::Warning> = Vec::new();
    for w in all {
        if !out.contains(w) {
            out.push(w.clone());
        }
    }
    out
}

/// The status task, aborted when dropped: a build future dropped by its
/// caller, or a drain that timed out, must not leave it holding the event
/// channel open (a renderer ends only when every sender is gone).
struct StatusTask(tokio::task::JoinHandle<State>);

impl Drop for StatusTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits for the status task (bounded), returning its fold.
async fn drain(mut task: StatusTask) -> (Summary, State) {
    match tokio::time::timeout(STATUS_DRAIN, &mut task.0).await {
        Ok(Ok(mut state)) => {
            state.finish();
            (state.summary(), state)
        }
        Ok(Err(_)) | Err(_) => {
            tracing::debug!("status stream did not end within {STATUS_DRAIN:?}");
            (Summary::default(), State::default())
        }
    }
}

/// The daemon's own error, or what happened to the connection when the
/// call died on this side.
fn solve_failure(
    client: &Daemon,
    plan: &BuildPlan,
    status: &tonic::Status,
    (summary, state): (&Summary, &State),
    cache: &[(usize, crate::cache::CacheFailure)],
) -> BuildError {
    let addr = client.address().to_string();
    match broken_connection(status) {
        None => failure::from_status(plan, status, summary, state, cache),
        Some(BrokenConnection::KeepaliveTimeout) => BuildError::DaemonSilent {
            addr,
            secs: client
                .keepalive()
                .map_or(0, |k| crate::connect::ping_timeout(k).as_secs()),
        },
        Some(BrokenConnection::Failed(detail)) => {
            tracing::debug!(%detail, "the Solve call lost its connection");
            BuildError::ConnectionLost { addr, detail }
        }
    }
}

/// Folds the Status stream and passes each update on as an event, with
/// the build's cache credentials taken out.
async fn forward_status(
    client: Daemon,
    build_ref: String,
    events: EventSink,
    scrubber: Scrubber,
) -> State {
    let mut state = State::default();
    let mut control = client.control();
    let mut stream = match control.status(StatusRequest { r#ref: build_ref }).await {
        Ok(resp) => resp.into_inner(),
        Err(status) => {
            tracing::debug!(error = %status_message(&status), "status stream refused");
            return state;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(msg)) => {
                let mut update = crate::progress::status::StatusUpdate::from_proto(&msg);
                scrubber.update(&mut update);
                state.apply(&update);
                events.send(EventKind::Status(update)).await;
            }
            Ok(None) => return state,
            Err(status) => {
                tracing::debug!(error = %status_message(&status), "status stream ended");
                return state;
            }
        }
    }
}
