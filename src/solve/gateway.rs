//! A build whose frontend runs through the gateway (a call, or a build
//! that takes another build's result as a named context): its
//! `Control.Solve` carries no frontend, and this side drives the frontend
//! over the LLB bridge while that call waits — Ping, Solve (retried with a
//! newer frontend image when the daemon's lacks a call and the build allows
//! it), hand the result to the builds that take it, wait for them, Return.
//! Upstream: buildx build/build.go (`BuildWithResultHandler`'s build
//! function, `solve`, `fallbackPrintError`, the linked targets' waits).

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::daemon::{Daemon, status_message};
use crate::gateway::{Bridge, FrontendRequest, FrontendResult, Refs, unsupported_subrequest};
use crate::outcome::BuildError;
use crate::proto::moby::buildkit::v1::SolveResponse;
use crate::request::BuildPlan;
use crate::subrequests::CallResult;

/// A build's frontend result as the builds that take it see it: `None`
/// until it ran, then the result or why there is none.
pub(crate) type Published = Option<Result<Arc<FrontendResult>, String>>;

/// How a gateway build is tied to the builds of the same call that take
/// its result as a named context.
#[derive(Debug, Default)]
pub(crate) struct Links {
    /// Where its frontend result goes, for those builds.
    pub publish: Option<Arc<watch::Sender<Published>>>,
    /// Those builds' ends: each sender is dropped when its build is over.
    /// The result is returned (and the build's job and session, which its
    /// definition names, let go) only after all of them: they solve that
    /// definition in their own jobs, sharing this one's steps.
    pub dependents: Vec<watch::Receiver<()>>,
}

impl Links {
    fn publish(&self, value: Result<Arc<FrontendResult>, String>) {
        if let Some(tx) = &self.publish {
            let _ = tx.send(Some(value));
        }
    }

    async fn dependents_done(&mut self) {
        for rx in &mut self.dependents {
            while rx.changed().await.is_ok() {}
        }
    }
}

/// What the bridge side of a gateway build came to. It is filled in before
/// the bridge answers the daemon, so the Solve that the answer ends finds
/// it there.
#[derive(Default)]
pub(crate) struct Driven {
    /// The answer, for a call.
    pub call: Option<CallResult>,
    /// A failure this side names better than the daemon would (the call
    /// the frontend lacks); the Solve fails too, with the daemon's words.
    pub error: Option<BuildError>,
    /// The file the build asked to read from its result, or why it could
    /// not be read.
    pub read: Option<Result<Bytes, String>>,
}

/// The largest file a build reads from its result into memory.
const MAX_READ: u64 = 256 << 20;

/// Runs the Control.Solve `control_solve` (sent first: it registers the
/// build) together with the bridge side, and returns the Solve's response
/// and what the bridge side came to. A bridge that cannot be driven at all
/// ends the Solve (dropping it cancels the job) and fails the build.
pub(crate) async fn solve(
    daemon: &Daemon,
    build_ref: &str,
    plan: &BuildPlan,
    request: FrontendRequest,
    links: Links,
    control_solve: impl Future<Output = Result<tonic::Response<SolveResponse>, tonic::Status>>,
) -> (
    Result<tonic::Response<SolveResponse>, tonic::Status>,
    Driven,
) {
    let bridge = match Bridge::new(daemon, build_ref) {
        Ok(b) => b,
        Err(status) => return (Err(status), Driven::default()),
    };
    let driven = Mutex::new(Driven::default());
    let result = {
        let drive = drive(&bridge, plan, request, links, &driven);
        tokio::pin!(control_solve);
        tokio::pin!(drive);
        let mut drove = false;
        loop {
            tokio::select! {
                r = &mut control_solve => break r,
                d = &mut drive, if !drove => match d {
                    Ok(()) => drove = true,
                    Err(status) => {
                        tracing::debug!(error = %status_message(&status), "the gateway build could not be driven");
                        break Err(status);
                    }
                },
            }
        }
    };
    let driven = driven.into_inner().unwrap_or_else(|e| e.into_inner());
    (result, driven)
}

/// The bridge side: everything between the Solve's registration and the
/// Return. An `Err` is a bridge that did not answer (the Solve then waits
/// for nothing and is dropped).
async fn drive(
    bridge: &Bridge,
    plan: &BuildPlan,
    request: FrontendRequest,
    mut links: Links,
    driven: &Mutex<Driven>,
) -> Result<(), tonic::Status> {
    bridge.ping().await?;
    let solved = match frontend(bridge, plan, request).await {
        Ok(result) => evaluated(bridge, &links, result)
            .await
            .map_err(|s| (s, None)),
        Err(failed) => Err(failed),
    };
    let result = match solved {
        Ok(result) => result,
        Err((status, error)) => {
            links.publish(Err(status_message(&status)));
            if let (Some(error), Ok(mut d)) = (error, driven.lock()) {
                d.error = Some(error);
            }
            // The Solve fails with the frontend's error, details included.
            return bridge.fail(&status).await;
        }
    };
    if let Some(path) = &plan.read_file {
        let read = read_file(bridge, &result, path).await;
        if let Ok(mut d) = driven.lock() {
            d.read = Some(read);
        }
    }
    let result = Arc::new(result);
    links.publish(Ok(Arc::clone(&result)));
    links.dependents_done().await;
    if let Some(call) = &plan.call {
        let answer = CallResult::from_metadata(call.clone(), result.metadata.clone());
        if let Ok(mut d) = driven.lock() {
            d.call = Some(answer);
        }
    }
    bridge.give_back(&result).await
}

/// A result other builds take is built before they get it, so that a
/// failing step fails this build, and theirs only for want of it (buildx
/// evaluates linked targets' refs the same way).
async fn evaluated(
    bridge: &Bridge,
    links: &Links,
    result: FrontendResult,
) -> Result<FrontendResult, tonic::Status> {
    if links.publish.is_some() {
        let refs = result.ref_ids();
        futures::future::try_join_all(refs.iter().map(|id| bridge.evaluate(id))).await?;
    }
    Ok(result)
}

/// Reads `path` of a single-platform result (building it first).
async fn read_file(bridge: &Bridge, result: &FrontendResult, path: &str) -> Result<Bytes, String> {
    let Refs::Single(r) = &result.refs else {
        return Err(format!(
            "cannot read {path}: the result is not one filesystem (build one platform)"
        ));
    };
    match bridge.read_file(&r.id, path, MAX_READ).await {
        Ok(Some(data)) => Ok(data),
        Ok(None) => Err(format!(
            "{path} is larger than {} MiB: export the result instead",
            MAX_READ >> 20
        )),
        Err(status) => Err(format!("cannot read {path}: {}", status_message(&status))),
    }
}

/// Solves the frontend; for a call it does not know, asks again with the
/// build's fallback frontend image, and otherwise names what it lacks.
async fn frontend(
    bridge: &Bridge,
    plan: &BuildPlan,
    mut request: FrontendRequest,
) -> Result<FrontendResult, (tonic::Status, Option<BuildError>)> {
    let status = match bridge.solve(&request).await {
        Ok(result) => return Ok(result),
        Err(status) => status,
    };
    let lacking = plan
        .call
        .as_ref()
        .and_then(|_| unsupported_subrequest(&status));
    let Some(lacking) = lacking else {
        return Err((status, None));
    };
    let mut fallback = None;
    if let Some(image) = &plan.call_fallback {
        tracing::debug!(%image, request = %lacking, "the daemon's frontend lacks the call; retrying with a newer frontend");
        // The built-in frontend hands the request on to this image
        // (frontend/dockerfile/builder: BUILDKIT_SYNTAX without a cmdline).
        request
            .opts
            .insert("build-arg:BUILDKIT_SYNTAX".into(), image.clone());
        match bridge.solve(&request).await {
            Ok(result) => return Ok(result),
            Err(again) => fallback = Some((image.clone(), status_message(&again))),
        }
    }
    let error = BuildError::CallUnsupported {
        daemon: String::new(),
        request: lacking,
        fallback,
    };
    Err((status, Some(error)))
}

/// A call the frontend lacks, named with the daemon that lacks it.
pub(super) fn with_daemon(e: BuildError, client: &Daemon) -> BuildError {
    match e {
        BuildError::CallUnsupported {
            request, fallback, ..
        } => BuildError::CallUnsupported {
            daemon: client.address().to_string(),
            request,
            fallback,
        },
        e => e,
    }
}
