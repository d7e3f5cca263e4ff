//! Progress as library events: what a running build reports, for any
//! renderer (the ones in this module, or a program's own).

use std::fmt;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::progress::status::StatusUpdate;

/// One event of one build. Builds started together (`Client::build_all`)
/// share one channel; `build` tells them apart.
#[derive(Clone, Debug)]
pub struct Event {
    /// The build's index: its position in the list given to
    /// `Client::build_all`, 0 for `Client::build`.
    pub build: usize,
    /// What happened.
    pub kind: EventKind,
}

/// What happened in a build.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum EventKind {
    /// The build was accepted and is about to be sent to the daemon; always
    /// the build's first event.
    Started {
        /// The build's name, if it has one (bake's target name).
        name: Option<String>,
        /// Notes for step names, e.g. `(refresh every 24h)` after a step
        /// whose cache is renewed on a schedule.
        marker: Option<StepMarker>,
    },
    /// News from the daemon: steps (vertices) that started, completed, came
    /// from cache or failed ([`VertexUpdate`](crate::progress::status::VertexUpdate)),
    /// sub-task progress such as context upload and layer pushes
    /// ([`StatusItem`](crate::progress::status::StatusItem)), log output and warnings.
    Status(StatusUpdate),
    /// A pool placed the build on one of its nodes; right after `Started`.
    Placed(super::placement::Placement),
    /// The build ended, successfully or not; always its last event.
    Finished,
}

/// A function from a step's name to its note.
type MarkFn = dyn Fn(&str) -> Option<String> + Send + Sync;

/// Annotates a step by its name; `None` leaves it as it is.
#[derive(Clone)]
pub struct StepMarker(pub(crate) Arc<MarkFn>);

impl StepMarker {
    /// A marker from a function of the step name.
    pub fn new(f: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> StepMarker {
        StepMarker(Arc::new(f))
    }

    /// The note for step `name`.
    pub fn mark(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl fmt::Debug for StepMarker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StepMarker")
    }
}

/// Where a build sends its events: a channel and the build's index.
#[derive(Clone, Debug)]
pub(crate) struct EventSink {
    tx: Option<mpsc::Sender<Event>>,
    build: usize,
}

impl EventSink {
    pub(crate) fn new(tx: Option<mpsc::Sender<Event>>, build: usize) -> EventSink {
        EventSink { tx, build }
    }

    /// Sends one event; a renderer that went away only loses the view.
    pub(crate) async fn send(&self, kind: EventKind) {
        if let Some(tx) = &self.tx {
            let _ = tx
                .send(Event {
                    build: self.build,
                    kind,
                })
                .await;
        }
    }
}
