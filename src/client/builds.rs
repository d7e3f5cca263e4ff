//! `Client::build` and `Client::build_all`: typed builds on one connection.

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::Client;
use super::deps;
use crate::buildspec::Build;
use crate::dockerfile::progress_marks;
use crate::outcome::{BuildError, BuildResult};
use crate::progress::event::{Event, EventKind, EventSink, StepMarker};
use crate::progress::placement::Placement;
use crate::progress::status::{StatusUpdate, Warning};
use crate::request::{self as plan, BuildPlan};
use crate::solve::{self, SharedLocals};

/// How a build is run: where its progress goes and what cancels it.
///
/// A call takes its options by value and drops them when its builds end,
/// as BuildKit's Go client closes the status channel itself: the events
/// sender goes with them, so a renderer reading the other end finishes
/// without the caller having to remember anything.
///
/// ```compile_fail
/// # async fn demo(client: rbuild::Client, builds: Vec<rbuild::Build>) {
/// let (tx, rx) = tokio::sync::mpsc::channel(64);
/// let options = rbuild::BuildOptions::default().events(tx);
/// client.build_all(&builds, options).await;
/// drop(options); // the call owns them: holding them past it does not compile
/// # }
/// ```
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BuildOptions {
    /// Receives the builds' [`Event`]s; none are sent without it.
    pub(crate) events: Option<mpsc::Sender<Event>>,
    /// Canceling it stops every build of the call on the daemon.
    pub(crate) cancel: CancellationToken,
    /// Set by a pool, which gives one node part of its caller's list: each
    /// build's index in that list (its events carry it) and its placement.
    pub(crate) slots: Option<Arc<[Slot]>>,
    /// Set by a pool that runs shares on several nodes: every share waits
    /// here after announcing its builds, so a display learns of all of them
    /// before any prints.
    pub(crate) announced: Option<Arc<tokio::sync::Barrier>>,
}

/// Where one build of a call sits in a pool caller's list.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) index: usize,
    pub(crate) placement: Option<Placement>,
}

impl BuildOptions {
    /// Events go to `tx`.
    pub fn events(mut self, tx: mpsc::Sender<Event>) -> BuildOptions {
        self.events = Some(tx);
        self
    }

    /// `token` cancels the builds.
    pub fn cancel(mut self, token: CancellationToken) -> BuildOptions {
        self.cancel = token;
        self
    }

    /// These options for part of a pool caller's list.
    #[cfg(feature = "pool")]
    pub(crate) fn with_slots(
        &self,
        slots: Vec<Slot>,
        announced: Option<Arc<tokio::sync::Barrier>>,
    ) -> BuildOptions {
        BuildOptions {
            events: self.events.clone(),
            cancel: self.cancel.clone(),
            slots: Some(slots.into()),
            announced,
        }
    }

    pub(crate) async fn all_announced(&self) {
        if let Some(b) = &self.announced {
            b.wait().await;
        }
    }

    /// Where build `i` of this call sends its events.
    fn sink(&self, i: usize) -> EventSink {
        let index = self
            .slots
            .as_ref()
            .and_then(|s| s.get(i))
            .map_or(i, |s| s.index);
        EventSink::new(self.events.clone(), index)
    }

    fn placement(&self, i: usize) -> Option<&Placement> {
        self.slots.as_ref()?.get(i)?.placement.as_ref()
    }
}

impl Client {
    /// Runs one build and waits for its result, without progress output.
    ///
    /// ```no_run
    /// # async fn demo(client: rbuild::Client) -> Result<(), rbuild::BuildError> {
    /// let result = client
    ///     .build(&rbuild::Build::new(".").output(rbuild::Output::tar("app.tar")))
    ///     .await?;
    /// assert!(result.written.iter().any(|p| p.ends_with("app.tar")));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Client::build_with`]; never [`BuildError::Canceled`], as nothing can cancel it.
    pub async fn build(&self, build: &Build) -> Result<BuildResult, BuildError> {
        self.build_with(build, BuildOptions::default()).await
    }

    /// Runs one build with progress events and a cancel token.
    ///
    /// # Errors
    ///
    /// [`BuildError::Invalid`] when the description is wrong (nothing was sent);
    /// [`BuildError::Session`] when the session cannot be opened; [`BuildError::Step`] when
    /// a Dockerfile step fails; [`BuildError::Daemon`], [`BuildError::Push`],
    /// [`BuildError::CacheExport`] or [`BuildError::MissingCacheBackend`] when the daemon
    /// fails the build; [`BuildError::ConnectionLost`] or [`BuildError::DaemonSilent`] when
    /// the daemon stops answering; [`BuildError::Output`], [`BuildError::LocalIo`] or
    /// [`BuildError::ContextChanged`] when a file on this machine cannot be read or written
    /// as needed; [`BuildError::Dependency`] when the build takes a named context from
    /// another build (only [`Client::build_all`] runs that one); [`BuildError::Canceled`]
    /// once `options`' cancel token fires.
    pub async fn build_with(
        &self,
        build: &Build,
        options: BuildOptions,
    ) -> Result<BuildResult, BuildError> {
        if let Some((name, &index)) = build.context_builds.iter().next() {
            return Err(BuildError::Dependency {
                name: name.clone(),
                index,
                reason: "only Client::build_all runs the build it names".into(),
            });
        }
        let plan = self.plan(build).await?;
        let events = options.sink(0);
        announce(&plan, &events).await;
        placed(&events, options.placement(0)).await;
        run_one(
            self,
            &plan,
            &events,
            options.cancel.clone(),
            None,
            solve::Links::default(),
        )
        .await
    }

    /// Runs several builds concurrently over this one connection and
    /// returns each one's result, in order. A failing build does not stop
    /// the others. Builds that read the same local directory share one
    /// session and one upload of it. A build with
    /// [`Build::named_context_from`] starts when the build it names has
    /// succeeded, and fails if that one failed.
    ///
    /// ```no_run
    /// # async fn demo(client: rbuild::Client) {
    /// use rbuild::{Build, Output};
    /// let builds = [
    ///     Build::new(".").named("app").target("app").output(Output::tar("app.tar")),
    ///     Build::new(".").named("tests").target("tests").output(Output::local("out")),
    /// ];
    /// for result in client.build_all(&builds, Default::default()).await {
    ///     match result {
    ///         Ok(r) => println!("{:?}: {} steps", r.name, r.steps.total),
    ///         Err(e) => eprintln!("failed: {e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn build_all(
        &self,
        builds: &[Build],
        options: BuildOptions,
    ) -> Vec<Result<BuildResult, BuildError>> {
        let graph = deps::graph(builds);
        let mut plans: Vec<Result<BuildPlan, BuildError>> = Vec::with_capacity(builds.len());
        for (i, (b, invalid)) in builds.iter().zip(graph.invalid).enumerate() {
            plans.push(match invalid {
                Some(e) => Err(e),
                None => self.plan(b).await.map(|mut p| {
                    p.hands_over = !graph.dependents[i].is_empty();
                    p
                }),
            });
        }
        // Per build: where its frontend result goes for its dependents, and
        // a sender dropped when it ends, which its dependencies wait for.
        let published: Vec<_> = (0..builds.len())
            .map(|_| {
                let (tx, rx) = watch::channel::<solve::Published>(None);
                (Arc::new(tx), rx)
            })
            .collect();
        let (ends, ended): (Vec<_>, Vec<_>) = (0..builds.len()).map(|_| watch::channel(())).unzip();
        let valid: Vec<&BuildPlan> = plans.iter().filter_map(|p| p.as_ref().ok()).collect();
        let shared = if valid.len() > 1 {
            match SharedLocals::open(&self.daemon, &valid).await {
                Ok(s) => Some(s),
                Err(e) => {
                    // Nothing of this share is announced; the others go on.
                    options.all_announced().await;
                    let msg = e.to_string();
                    return plans
                        .into_iter()
                        .map(|p| {
                            p.and_then(|_| {
                                Err(BuildError::Session(crate::session::SessionError::Ended(
                                    msg.clone(),
                                )))
                            })
                        })
                        .collect();
                }
            }
        } else {
            None
        };
        // Every build is announced before any runs, so a display knows from
        // the first line that several builds share it (dependents start later).
        for (i, plan) in plans.iter().enumerate() {
            if let Ok(plan) = plan {
                announce(plan, &options.sink(i)).await;
            }
        }
        options.all_announced().await;
        for (i, plan) in plans.iter().enumerate() {
            if plan.is_ok() {
                placed(&options.sink(i), options.placement(i)).await;
            }
        }
        // Views are by position among the valid plans.
        let mut valid_index = 0usize;
        let runs = plans.iter().zip(ends).enumerate().map(|(i, (p, end))| {
            let view = match p {
                Ok(_) => {
                    let v = shared.as_ref().and_then(|s| s.view(valid_index));
                    valid_index += 1;
                    v
                }
                Err(_) => None,
            };
            let events = options.sink(i);
            let cancel = options.cancel.clone();
            let needs: Vec<(String, usize, watch::Receiver<solve::Published>)> = builds[i]
                .context_builds
                .iter()
                .filter_map(|(n, &j)| Some((n.clone(), j, published.get(j)?.1.clone())))
                .collect();
            let publish = Arc::clone(&published[i].0);
            let links = solve::Links {
                publish: p
                    .as_ref()
                    .is_ok_and(|p| p.hands_over)
                    .then(|| Arc::clone(&publish)),
                dependents: graph.dependents[i]
                    .iter()
                    .filter_map(|&j| ended.get(j).cloned())
                    .collect(),
            };
            async move {
                // Dropped when this build ends, however it ends.
                let _end = end;
                let result = match p {
                    Ok(plan) => {
                        let mut plan = plan.clone();
                        let failed = deps::take_all(&mut plan, needs, &cancel).await.err();
                        match failed {
                            Some(e) => {
                                // It was announced: its view ends too.
                                events.send(EventKind::Finished).await;
                                Err(e)
                            }
                            None => run_one(self, &plan, &events, cancel, view, links).await,
                        }
                    }
                    Err(e) => {
                        // Its own error replaces this placeholder below;
                        // dependents learn the real reason now.
                        let _ = publish.send(Some(Err(format!("it is invalid ({e})"))));
                        return Err(BuildError::Canceled);
                    }
                };
                // A build that failed before its frontend ran tells its
                // dependents why.
                if let Err(e) = &result {
                    publish.send_if_modified(|v| {
                        let unset = v.is_none();
                        if unset {
                            *v = Some(Err(format!("it failed ({e})")));
                        }
                        unset
                    });
                }
                result
            }
        });
        let mut results = join_all(runs).await;
        if let Some(shared) = shared {
            shared.close().await;
        }
        // Plans that were invalid keep their own error.
        for (slot, plan) in results.iter_mut().zip(plans) {
            if let Err(e) = plan {
                *slot = Err(e);
            }
        }
        results
    }

    /// Resolves `build` for this daemon.
    pub(super) async fn plan(&self, build: &Build) -> Result<BuildPlan, BuildError> {
        let support = self.attestation_support().await;
        let resolved = plan::look_upstream(build).await;
        plan::prepare(
            build,
            self.daemon.kind(),
            self.daemon.load_engine(),
            support,
            &resolved,
        )
    }
}

/// One build, after its Started event: ends with its Finished event.
pub(super) async fn run_one(
    client: &Client,
    plan: &BuildPlan,
    events: &EventSink,
    cancel: CancellationToken,
    view: Option<solve::LocalsView>,
    links: solve::Links,
) -> Result<BuildResult, BuildError> {
    let result = solve::run(client.daemon(), plan, events, cancel, view, links).await;
    events.send(EventKind::Finished).await;
    result
}

/// A build's first event: its name and the notes for its steps.
async fn announce(plan: &BuildPlan, events: &EventSink) {
    let marker = plan
        .rewritten
        .as_ref()
        .map(|r| StepMarker::new(progress_marks(r)));
    events
        .send(EventKind::Started {
            name: plan.name.clone(),
            marker,
        })
        .await;
    // Before the solve, so a build that then fails still shows why its
    // upstream step fell back to a window.
    let warnings: Vec<Warning> = plan
        .rewritten
        .iter()
        .flat_map(|r| &r.refreshed)
        .filter_map(|step| step.warning())
        .map(|short| {
            tracing::warn!("{short}");
            Warning {
                short,
                ..Warning::default()
            }
        })
        .collect();
    if !warnings.is_empty() {
        events
            .send(EventKind::Status(StatusUpdate {
                warnings,
                ..StatusUpdate::default()
            }))
            .await;
    }
}

/// Where a pool placed the build, after its announcement.
async fn placed(events: &EventSink, placement: Option<&Placement>) {
    if let Some(p) = placement {
        events.send(EventKind::Placed(p.clone())).await;
    }
}
