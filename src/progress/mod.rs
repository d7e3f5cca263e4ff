//! Build progress for users: folds `Control.Status` updates into the build's
//! state and renders it the way buildx's progressui does (`tty`, `plain`,
//! `rawjson`, `quiet`).
//!
//! [`Progress`] is fed every status message and returns a [`Summary`] at the
//! end. It never decides where output goes or whether it is a terminal: the
//! caller resolves `auto` and passes the writer (normally stderr).

pub mod event;
mod group;
pub mod placement;
mod plain;
mod rawjson;
mod renderer;
mod report;
pub(crate) mod state;
pub mod status;
mod tty;
pub mod units;
mod vertex;
mod width;

#[cfg(test)]
mod fixture;
#[cfg(test)]
mod replay;

use std::io::{self, Write};
use std::time::{Duration, Instant};

pub use event::{Event, EventKind, StepMarker};
pub use renderer::{Renderer, render};

use crate::progress::status::StatusUpdate;
#[cfg(test)]
use crate::proto::moby::buildkit::v1::StatusResponse;

/// How progress is shown. `auto` is the caller's to resolve: `Tty` if stderr
/// is a terminal, else `Plain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn in place, one line per step, logs of running steps beneath.
    Tty,
    /// Append-only `#N` lines, for CI logs; printed on [`Progress::tick`]
    /// in batches, as progressui's plain display does.
    Plain,
    /// One JSON object per status message (BuildKit's `SolveStatus`).
    RawJson,
    /// Nothing while building.
    Quiet,
}

/// The local clock the tty display measures the header's elapsed time with.
pub type Clock = Box<dyn Fn() -> Instant + Send>;

/// What the build did, for the caller's last line and exit code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Steps that started (or showed output).
    pub total: usize,
    /// Completed from the cache, without error.
    pub cached: usize,
    /// Completed without cache and without error.
    pub executed: usize,
    /// Completed with an error other than cancellation. Canceled and
    /// unfinished steps count only in `total`.
    pub failed: usize,
    /// Time the executed steps ran, by the daemon's timestamps.
    pub executed_time: Duration,
    /// Warnings the daemon sent, whether tied to a step or to the build.
    pub warnings: usize,
    /// The first step to fail.
    pub failed_vertex: Option<FailedVertex>,
}

/// A step that failed, as the error report after the build shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedVertex {
    /// The step's name as displayed; a progress group's name for a group.
    pub name: String,
    /// The daemon's error for the step; empty when it sent none.
    pub error: String,
    /// Its last log lines (about ten), oldest first.
    pub logs: Vec<String>,
}

enum View {
    Tty(tty::Tty),
    Plain(plain::Plain),
    RawJson(rawjson::RawJson),
    Quiet,
}

/// Folds status messages and renders them in one [`Mode`].
pub struct Progress {
    state: state::State,
    view: View,
    finished: Option<Summary>,
}

impl Progress {
    /// A fold that renders in `mode` to `out`, the tty header timed by the
    /// real clock.
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Self {
        Self::with_clock(mode, out, Box::new(Instant::now))
    }

    /// As [`Progress::new`], with the tty header's clock injected (tests).
    pub fn with_clock(mode: Mode, out: Box<dyn Write + Send>, clock: Clock) -> Self {
        let view = match mode {
            Mode::Tty => View::Tty(tty::Tty::new(out, clock)),
            Mode::Plain => View::Plain(plain::Plain::new(out)),
            Mode::RawJson => View::RawJson(rawjson::RawJson::new(out)),
            Mode::Quiet => View::Quiet,
        };
        Progress {
            state: state::State::default(),
            view,
            finished: None,
        }
    }

    /// Feeds one `Control.Status` message.
    #[cfg(test)]
    pub(crate) fn update(&mut self, resp: &StatusResponse) -> io::Result<()> {
        self.apply(&StatusUpdate::from_proto(resp))
    }

    /// Feeds events that did not come from the daemon's stream, e.g. steps
    /// the client itself reports (BuildKit's Go client shows `[auth]` ones).
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn apply(&mut self, update: &StatusUpdate) -> io::Result<()> {
        let applied = self.state.apply(update);
        match &mut self.view {
            View::Tty(t) => t.update(&self.state),
            View::Plain(p) => {
                p.update(&self.state, applied);
                Ok(())
            }
            View::RawJson(j) => j.update(update),
            View::Quiet => Ok(()),
        }
    }

    /// Call every 100ms or so. The tty display redraws so running timers
    /// advance; plain output prints what arrived since the last tick (it
    /// prints only here and in [`Progress::finish`], and counts ticks as its
    /// clock). A no-op in the other modes.
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn tick(&mut self) -> io::Result<()> {
        match &mut self.view {
            View::Tty(t) => t.tick(&self.state),
            View::Plain(p) => p.tick(&self.state),
            _ => Ok(()),
        }
    }

    /// Renders the end: the last frame (tty) or the remaining lines (plain),
    /// then failed steps' logs and the warnings. Later calls only return the
    /// summary again.
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn finish(&mut self) -> io::Result<Summary> {
        if let Some(s) = &self.finished {
            return Ok(s.clone());
        }
        let applied = self.state.finish();
        match &mut self.view {
            View::Tty(t) => t.finish(&self.state)?,
            View::Plain(p) => p.finish(&self.state, applied)?,
            View::RawJson(_) | View::Quiet => {}
        }
        let summary = self.state.summary();
        self.finished = Some(summary.clone());
        Ok(summary)
    }

    /// A line about the build that is not a step (which node of a pool
    /// builds it): plain output prints it at once as `#0 LINE`, as buildx
    /// prints its builder; the tty display prints it after its last frame.
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn note(&mut self, line: &str) -> io::Result<()> {
        match &mut self.view {
            View::Tty(t) => {
                t.note(line);
                Ok(())
            }
            View::Plain(p) => p.note(line),
            View::RawJson(_) | View::Quiet => Ok(()),
        }
    }

    /// Folds `update` without drawing when another painter owns the
    /// screen (the grouped tty frame of several builds).
    pub(crate) fn apply_quietly(&mut self, update: &StatusUpdate, quiet: bool) -> io::Result<()> {
        if quiet {
            self.state.apply(update);
            return Ok(());
        }
        self.apply(update)
    }

    /// Ends the fold without drawing (see [`Progress::apply_quietly`]).
    pub(crate) fn finish_state(&mut self) -> Summary {
        if let Some(s) = &self.finished {
            return s.clone();
        }
        self.state.finish();
        let summary = self.state.summary();
        self.finished = Some(summary.clone());
        summary
    }

    /// Annotates steps by name, e.g. `(refresh every 24h)` after a step
    /// whose cache is renewed on a schedule. Shown on the step's name line
    /// in plain and tty modes.
    pub fn mark(&mut self, predicate: impl Fn(&str) -> Option<String> + Send + 'static) {
        self.state.set_marker(Box::new(predicate));
    }
}

/// What progress says about a build's placement: the nodes skipped, then
/// the node that builds.
pub fn placement_lines(p: &placement::Placement) -> Vec<String> {
    use placement::shown;
    let mut lines: Vec<String> = p
        .skipped
        .iter()
        .map(|s| format!("skipped node {}: {}", shown(&s.node, &s.address), s.reason))
        .collect();
    let what = match p.platforms.as_slice() {
        [] => String::new(),
        platforms => format!(" {}", platforms.join(", ")),
    };
    lines.push(format!(
        "building{what} on node {}, route key {}",
        shown(&p.node, &p.address),
        p.key
    ));
    lines
}

#[cfg(test)]
mod tests;
