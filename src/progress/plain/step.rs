//! What the plain printer remembers about one step: what waits to be printed
//! and what was printed, so a block shows only news. The line formats follow
//! progressui's `printVtx` (util/progress/progressui/printer.go).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::Moment;
use crate::progress::status::{StatusItem, is_canceled};
use crate::progress::units;
use crate::progress::vertex::{LogLine, VertexState};

/// A running sub-task is first shown once it has run this long; most finish
/// sooner and get only their `done` line.
pub(super) const STATUS_DELAY: Duration = Duration::from_secs(1);
/// Then it is shown again only after this much progress or time
/// (progressui's minProgressDelta and minTimeDelta).
const MIN_PROGRESS_DELTA: f64 = 0.05;
const MIN_TIME_DELTA: Duration = Duration::from_secs(5);

/// How a finished step ended, as its last line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Done,
    Cached,
    Canceled,
    Error(String),
}

/// A step's end: when and how. Compared between ticks to tell a settled end
/// from one the daemon is about to revise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct End {
    at: Option<SystemTime>,
    pub outcome: Outcome,
}

impl End {
    /// `None` while the step runs (or has not started).
    pub fn of(v: &VertexState) -> Option<End> {
        if !v.is_completed() {
            return None;
        }
        // Progressui decides on the latest vertex message: a base image that
        // was resolved and then reported cached ends CACHED.
        let outcome = match (&v.error, v.cached) {
            (Some(e), _) if is_canceled(e) => Outcome::Canceled,
            (Some(e), _) => Outcome::Error(e.clone()),
            (None, true) => Outcome::Cached,
            (None, false) => Outcome::Done,
        };
        Some(End {
            at: v.completed_at(),
            outcome,
        })
    }
}

/// The last line printed for a sub-task.
struct Shown {
    current: u64,
    timestamp: Option<SystemTime>,
    done: bool,
}

/// Whether a sub-task's line is printed now.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Due {
    Now,
    Later,
    /// Nothing a reader has not seen.
    Never,
}

#[derive(Default)]
pub(super) struct Step {
    /// `#N`, given when the step is first printed, so numbers read in order.
    pub number: Option<usize>,
    /// News waits: its FIFO position and since when.
    pub queued: Option<(u64, Moment)>,
    /// Updated sub-tasks not printed yet, with when each was first queued.
    pub statuses: Vec<(String, Moment)>,
    pub warnings: Vec<usize>,
    pub lines: Vec<LogLine>,
    /// Whether it ran when last queued: tells a (re)start.
    pub running: bool,
    /// The end the step had at the previous tick.
    pub seen_end: Option<End>,
    /// The end line printed last; `Some` once the step's block was closed.
    pub printed_end: Option<End>,
    shown: HashMap<String, Shown>,
}

impl Step {
    pub fn queue_status(&mut self, id: &str, now: Moment) {
        if !self.statuses.iter().any(|(s, _)| s == id) {
            self.statuses.push((id.to_string(), now));
        }
    }

    /// A running step's sub-task: its `done` line at once, a running line
    /// once it has run [`STATUS_DELAY`] (on the daemon's clock or the
    /// printer's), then throttled. `closing`: the step ends in this block,
    /// so whatever changed is printed.
    pub fn due(&self, s: &StatusItem, since: Duration, closing: bool) -> Due {
        let Some(last) = self.shown.get(&s.id) else {
            let ran = match (s.started, s.timestamp) {
                (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
                _ => Duration::ZERO,
            };
            let due = s.completed.is_some() || closing || ran.max(since) >= STATUS_DELAY;
            return if due { Due::Now } else { Due::Later };
        };
        if last.done {
            return Due::Never;
        }
        if s.completed.is_some() {
            return Due::Now;
        }
        if closing {
            let changed = last.current != s.current || last.timestamp != s.timestamp;
            return if changed { Due::Now } else { Due::Never };
        }
        let progress = match s.total {
            Some(t) => s.current.saturating_sub(last.current) as f64 / t as f64,
            None => 0.0,
        };
        let waited = match (s.timestamp, last.timestamp) {
            (Some(now), Some(then)) => now.duration_since(then).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        if progress >= MIN_PROGRESS_DELTA || waited >= MIN_TIME_DELTA {
            Due::Now
        } else {
            Due::Later
        }
    }

    /// Whether a finished sub-task's `done` line is still to be printed.
    pub fn done_unshown(&self, s: &StatusItem) -> bool {
        s.completed.is_some() && !self.shown.get(&s.id).is_some_and(|l| l.done)
    }

    pub fn record_shown(&mut self, s: &StatusItem) {
        let shown = Shown {
            current: s.current,
            timestamp: s.timestamp,
            done: s.completed.is_some(),
        };
        self.shown.insert(s.id.clone(), shown);
    }

    /// Nothing left to print: the step leaves the queue.
    pub fn clear(&mut self) {
        self.queued = None;
        self.statuses.clear();
        self.warnings.clear();
        self.lines.clear();
    }
}

/// `#4 sha256:ab.. 1.05MB / 2.10MB 0.3s done`
pub(super) fn status_line(n: usize, s: &StatusItem) -> String {
    let bytes = match s.total {
        Some(total) => format!(" {} / {}", units::bytes(s.current), units::bytes(total)),
        None if s.current > 0 => format!(" {}", units::bytes(s.current)),
        None => String::new(),
    };
    let mut time = String::new();
    if let (Some(start), Some(end)) = (s.started, s.completed.or(s.timestamp)) {
        let d = end.duration_since(start).unwrap_or_default();
        if d > Duration::from_millis(10) {
            time = format!(" {}s", units::secs(d));
        }
    }
    if s.completed.is_some() {
        time.push_str(" done");
    }
    format!("#{n} {}{bytes}{time}\n", s.id)
}

pub(super) fn log_line(n: usize, line: &LogLine) -> String {
    format!("#{n} {} {}\n", units::log_elapsed(line.elapsed), line.text)
}

pub(super) fn end_line(v: &VertexState, outcome: &Outcome, n: usize) -> String {
    match outcome {
        Outcome::Canceled => format!("#{n} CANCELED\n"),
        Outcome::Error(e) => format!("#{n} ERROR: {e}\n"),
        Outcome::Cached => format!("#{n} CACHED\n"),
        Outcome::Done => format!("#{n} DONE {}s\n", units::secs(v.duration(None))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn at(ms: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_millis(ms))
    }

    #[test]
    fn status_lines() {
        let mut s = StatusItem {
            id: "sha256:abc".into(),
            current: 1_048_576,
            total: Some(2_097_152),
            timestamp: at(1_300),
            started: at(1_000),
            ..Default::default()
        };
        assert_eq!(status_line(4, &s), "#4 sha256:abc 1.05MB / 2.10MB 0.3s\n");
        s.completed = at(1_005);
        assert_eq!(status_line(4, &s), "#4 sha256:abc 1.05MB / 2.10MB done\n");
        s.total = None;
        s.current = 0;
        assert_eq!(status_line(4, &s), "#4 sha256:abc done\n");
    }

    #[test]
    fn end_lines_follow_the_latest_vertex_message() {
        let mut v = VertexState::new("n");
        assert_eq!(End::of(&v), None);
        v.set_interval(UNIX_EPOCH, at(1_260));
        let end = |v: &VertexState| End::of(v).expect("completed").outcome;
        assert_eq!(end_line(&v, &end(&v), 2), "#2 DONE 1.3s\n");
        v.cached = true;
        assert_eq!(end_line(&v, &end(&v), 2), "#2 CACHED\n");
        v.error = Some("rpc error: context canceled".into());
        assert_eq!(end_line(&v, &end(&v), 2), "#2 CANCELED\n");
        v.error = Some("exit code: 2".into());
        assert_eq!(end_line(&v, &end(&v), 2), "#2 ERROR: exit code: 2\n");
    }

    #[test]
    fn sub_tasks_wait_then_are_throttled() {
        let mut step = Step::default();
        let mut s = StatusItem {
            id: "layer".into(),
            total: Some(1_000),
            started: at(0),
            timestamp: at(300),
            ..Default::default()
        };
        let quick = Duration::from_millis(200);
        assert!(step.due(&s, quick, false) == Due::Later, "young");
        assert!(step.due(&s, STATUS_DELAY, false) == Due::Now, "waited");
        s.timestamp = at(1_100);
        assert!(step.due(&s, quick, false) == Due::Now, "ran a second");
        step.record_shown(&s);
        s.current = 40;
        s.timestamp = at(2_000);
        assert!(step.due(&s, STATUS_DELAY, false) == Due::Later, "4%");
        assert!(step.due(&s, quick, true) == Due::Now, "closing");
        s.current = 60;
        assert!(step.due(&s, quick, false) == Due::Now, "6%");
        s.completed = at(2_100);
        assert!(step.done_unshown(&s));
        assert!(step.due(&s, quick, false) == Due::Now);
        step.record_shown(&s);
        assert!(!step.done_unshown(&s));
        assert!(step.due(&s, quick, true) == Due::Never, "done once");
    }
}
