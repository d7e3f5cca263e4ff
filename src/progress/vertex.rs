//! One step as the fold sees it: run intervals, sub-task statuses, log lines.
//!
//! Follows progressui's `vertex` (util/progress/progressui/display.go): a step
//! can run more than once (intervals keyed by start time, then merged), logs are
//! split into lines even when chunks end mid-line.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::progress::status::StatusItem;

/// Lines kept per step for the failure report and the tty tail.
pub(crate) const RECENT_LINES: usize = 10;
/// A "line" without a newline is cut here so a process printing megabytes
/// without `\n` cannot grow memory without bound.
const MAX_PARTIAL: usize = 64 * 1024;

/// A complete log line, stamped with the time since its step started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogLine {
    pub elapsed: Duration,
    pub text: String,
}

/// When the step ran: `stop` is `None` while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interval {
    pub start: SystemTime,
    pub stop: Option<SystemTime>,
}

impl Interval {
    /// Length of the interval; a running one is measured up to `now`
    /// (unknown `now` counts as zero rather than guessing).
    pub fn duration(&self, now: Option<SystemTime>) -> Duration {
        let end = self.stop.or(now).unwrap_or(self.start);
        end.duration_since(self.start).unwrap_or_default()
    }
}

#[derive(Debug, Default)]
pub(crate) struct VertexState {
    pub name: String,
    /// `#N`: given when the step first starts (or first shows output).
    pub number: Option<usize>,
    /// Appended to the name line (e.g. a cache-freshness note).
    pub mark: Option<String>,
    pub cached: bool,
    pub error: Option<String>,
    /// Hidden: a progress group none of whose strong members started.
    pub hidden: bool,
    /// Keyed by start time, so a repeated update replaces its interval.
    intervals: Vec<Interval>,
    /// Sub-tasks in the order they started.
    pub statuses: Vec<StatusItem>,
    /// Last complete lines, oldest first.
    pub recent: VecDeque<LogLine>,
    partial: Option<(Duration, Vec<u8>)>,
    /// Indices into the fold's warning list.
    pub warnings: Vec<usize>,
}

impl VertexState {
    pub fn new(name: &str) -> Self {
        VertexState {
            name: clean_name(name),
            ..Default::default()
        }
    }

    pub fn set_name(&mut self, name: &str) {
        self.name = clean_name(name);
    }

    /// Records a run; returns whether anything changed.
    pub fn set_interval(&mut self, start: SystemTime, stop: Option<SystemTime>) -> bool {
        let new = Interval { start, stop };
        match self.intervals.iter_mut().find(|i| i.start == start) {
            Some(i) if *i == new => false,
            Some(i) => {
                *i = new;
                true
            }
            None => {
                self.intervals.push(new);
                true
            }
        }
    }

    pub fn replace_intervals(&mut self, intervals: Vec<Interval>) -> bool {
        let changed = intervals != self.intervals;
        self.intervals = intervals;
        changed
    }

    pub fn merged(&self) -> Vec<Interval> {
        merge_intervals(&self.intervals)
    }

    pub fn is_started(&self) -> bool {
        !self.intervals.is_empty()
    }

    pub fn is_completed(&self) -> bool {
        self.merged().last().is_some_and(|i| i.stop.is_some())
    }

    pub fn is_running(&self) -> bool {
        self.is_started() && !self.is_completed()
    }

    /// Start of the latest run: what log timestamps are measured from.
    pub fn last_start(&self) -> Option<SystemTime> {
        self.merged().last().map(|i| i.start)
    }

    pub fn completed_at(&self) -> Option<SystemTime> {
        self.merged().last().and_then(|i| i.stop)
    }

    /// Total time spent running, overlapping runs counted once.
    pub fn duration(&self, now: Option<SystemTime>) -> Duration {
        self.merged().iter().map(|i| i.duration(now)).sum()
    }

    pub fn failed(&self) -> bool {
        self.error
            .as_deref()
            .is_some_and(|e| !crate::progress::status::is_canceled(e))
    }

    /// Splits a chunk into lines; a trailing fragment waits for its newline.
    /// A line is stamped with the time of the chunk that began it.
    pub fn push_log(&mut self, data: &[u8], elapsed: Duration, out: &mut Vec<LogLine>) {
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (stamp, mut line) = self.partial.take().unwrap_or((elapsed, Vec::new()));
            line.extend_from_slice(&rest[..pos]);
            self.push_line(stamp, &line, out);
            rest = &rest[pos + 1..];
        }
        if rest.is_empty() {
            return;
        }
        let (_, buf) = self.partial.get_or_insert_with(|| (elapsed, Vec::new()));
        buf.extend_from_slice(rest);
        if buf.len() >= MAX_PARTIAL {
            self.flush_partial(out);
        }
    }

    /// Ends an unterminated last line (the step finished or the build ended).
    pub fn flush_partial(&mut self, out: &mut Vec<LogLine>) {
        if let Some((stamp, line)) = self.partial.take() {
            self.push_line(stamp, &line, out);
        }
    }

    /// The unterminated line, as a terminal would show it so far.
    pub fn partial_text(&self) -> Option<String> {
        self.partial
            .as_ref()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
    }

    fn push_line(&mut self, elapsed: Duration, bytes: &[u8], out: &mut Vec<LogLine>) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = LogLine {
            elapsed,
            text: String::from_utf8_lossy(bytes).into_owned(),
        };
        if self.recent.len() == RECENT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line.clone());
        out.push(line);
    }
}

/// Overlapping runs merge; a run without a stop swallows every later one
/// (mergeIntervals in display.go).
pub(crate) fn merge_intervals(intervals: &[Interval]) -> Vec<Interval> {
    let mut sorted = intervals.to_vec();
    sorted.sort_by_key(|i| i.start);
    let mut merged: Vec<Interval> = Vec::with_capacity(sorted.len());
    for next in sorted {
        let Some(cur) = merged.last_mut() else {
            merged.push(next);
            continue;
        };
        match cur.stop {
            None => break,
            Some(stop) if stop < next.start => merged.push(next),
            Some(stop) => {
                cur.stop = next.stop.map(|s| s.max(stop));
            }
        }
    }
    merged
}

/// A name spans one output line whatever the daemon sends.
fn clean_name(name: &str) -> String {
    name.replace(['\n', '\r', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn texts(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn chunks_split_mid_line_and_mid_char() {
        let mut v = VertexState::new("n");
        let mut out = Vec::new();
        v.push_log(b"hel", Duration::from_secs(1), &mut out);
        assert!(out.is_empty());
        v.push_log(b"lo\nw\xc3", Duration::from_secs(2), &mut out);
        v.push_log(b"\xa9rld\r\n\nlast", Duration::from_secs(3), &mut out);
        assert_eq!(texts(&out), ["hello", "w\u{e9}rld", ""]);
        // A line keeps the time of the chunk that began it.
        assert_eq!(out[0].elapsed, Duration::from_secs(1));
        assert_eq!(out[1].elapsed, Duration::from_secs(2));
        assert_eq!(v.partial_text().as_deref(), Some("last"));
        v.flush_partial(&mut out);
        assert_eq!(out.last().map(|l| l.text.as_str()), Some("last"));
        assert_eq!(v.partial_text(), None);
    }

    #[test]
    fn recent_lines_are_bounded() {
        let mut v = VertexState::new("n");
        let mut out = Vec::new();
        for i in 0..25 {
            v.push_log(format!("{i}\n").as_bytes(), Duration::ZERO, &mut out);
        }
        assert_eq!(v.recent.len(), RECENT_LINES);
        assert_eq!(v.recent.front().map(|l| l.text.as_str()), Some("15"));
    }

    #[test]
    fn endless_line_is_cut() {
        let mut v = VertexState::new("n");
        let mut out = Vec::new();
        v.push_log(&vec![b'x'; MAX_PARTIAL + 1], Duration::ZERO, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(v.partial_text(), None);
    }

    #[test]
    fn intervals_merge_and_measure() {
        let ivs = [
            Interval {
                start: at(5),
                stop: Some(at(7)),
            },
            Interval {
                start: at(1),
                stop: Some(at(3)),
            },
            Interval {
                start: at(2),
                stop: Some(at(4)),
            },
        ];
        let merged = merge_intervals(&ivs);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            merged[0],
            Interval {
                start: at(1),
                stop: Some(at(4))
            }
        );
        let open = [
            Interval {
                start: at(1),
                stop: None,
            },
            Interval {
                start: at(2),
                stop: Some(at(9)),
            },
        ];
        assert_eq!(
            merge_intervals(&open),
            [Interval {
                start: at(1),
                stop: None
            }]
        );

        let mut v = VertexState::new("a\nb");
        assert_eq!(v.name, "a b");
        assert!(v.set_interval(at(1), None));
        assert!(v.is_running());
        assert_eq!(v.duration(Some(at(4))), Duration::from_secs(3));
        assert_eq!(v.duration(None), Duration::ZERO);
        assert!(v.set_interval(at(1), Some(at(2))));
        assert!(!v.set_interval(at(1), Some(at(2))));
        assert!(v.is_completed());
        // A stop before the start (clock skew) is zero, not a panic.
        assert!(v.set_interval(at(5), Some(at(4))));
        assert_eq!(v.duration(None), Duration::from_secs(1));
    }
}
