//! The event fold: merges incremental status updates into the build's state.
//!
//! Follows progressui's `trace.update` (util/progress/progressui/display.go):
//! vertices keyed by digest in first-seen order, numbered `#1..` in the order
//! they start; statuses keyed by `(vertex, id)`; logs split into lines;
//! members of a progress group folded into one step. Each [`State::apply`]
//! returns what changed, so a renderer prints only news.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::vertex::{Interval, LogLine, VertexState, merge_intervals};
use super::{FailedVertex, Summary};
use crate::progress::status::{LogChunk, StatusItem, StatusUpdate, VertexUpdate, Warning};

/// Turns a step name into an annotation for its name line.
pub(crate) type Marker = Box<dyn Fn(&str) -> Option<String> + Send>;

/// What one update changed, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Vertices with anything new, each once, in the order first touched.
    pub touched: Vec<usize>,
    /// `(vertex, status id)` pairs that were updated.
    pub statuses: Vec<(usize, String)>,
    pub lines: Vec<(usize, LogLine)>,
    /// `(vertex, warning index)` for warnings attached to a known vertex.
    pub warnings: Vec<(usize, usize)>,
}

impl Applied {
    fn touch(&mut self, idx: usize) {
        if !self.touched.contains(&idx) {
            self.touched.push(idx);
        }
    }
}

/// Members of a progress group, in the order first seen.
type Members = Vec<VertexUpdate>;

#[derive(Default)]
pub(crate) struct State {
    pub vertices: Vec<VertexState>,
    /// Digest (or group id, or a group member's digest) -> index.
    by_digest: HashMap<String, usize>,
    groups: HashMap<usize, Members>,
    /// The last update seen per plain vertex, to tell news from repeats.
    last: HashMap<usize, VertexUpdate>,
    pub warnings: Vec<Warning>,
    next_number: usize,
    /// The daemon's clock: the latest timestamp it sent. Renderers measure
    /// with it so output does not depend on when messages arrive.
    pub now: Option<SystemTime>,
    marker: Option<Marker>,
}

impl State {
    pub fn set_marker(&mut self, marker: Marker) {
        for v in &mut self.vertices {
            if v.number.is_some() {
                v.mark = marker(&v.name);
            }
        }
        self.marker = Some(marker);
    }

    pub fn apply(&mut self, update: &StatusUpdate) -> Applied {
        let mut applied = Applied::default();
        self.advance_clock(update);
        for v in &update.vertices {
            match &v.progress_group {
                Some(g) => self.apply_member(v, &g.id, &g.name, &mut applied),
                None => self.apply_vertex(v, &mut applied),
            }
        }
        for s in &update.statuses {
            self.apply_status(s, &mut applied);
        }
        for l in &update.logs {
            self.apply_log(l, &mut applied);
        }
        for w in &update.warnings {
            let widx = self.warnings.len();
            self.warnings.push(w.clone());
            if let Some(idx) = self.known(&w.vertex, "warning") {
                self.vertices[idx].warnings.push(widx);
                applied.warnings.push((idx, widx));
                self.touch(idx, &mut applied);
            }
        }
        // A finished step's unterminated last line belongs before its DONE.
        for &idx in &applied.touched {
            if self.vertices[idx].is_completed() {
                let mut lines = Vec::new();
                self.vertices[idx].flush_partial(&mut lines);
                applied.lines.extend(lines.into_iter().map(|l| (idx, l)));
            }
        }
        applied
    }

    /// The build is over: unterminated lines become lines.
    pub fn finish(&mut self) -> Applied {
        let mut applied = Applied::default();
        for (idx, v) in self.vertices.iter_mut().enumerate() {
            let mut lines = Vec::new();
            v.flush_partial(&mut lines);
            if !lines.is_empty() {
                applied.touch(idx);
                applied.lines.extend(lines.into_iter().map(|l| (idx, l)));
            }
        }
        applied
    }

    /// Numbered steps in `#N` order: what renderers list.
    pub fn numbered(&self) -> Vec<usize> {
        let mut out: Vec<usize> = (0..self.vertices.len())
            .filter(|&i| self.vertices[i].number.is_some() && !self.vertices[i].hidden)
            .collect();
        out.sort_by_key(|&i| self.vertices[i].number);
        out
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            warnings: self.warnings.len(),
            ..Summary::default()
        };
        let mut first_failure: Option<&VertexState> = None;
        for v in self.numbered().into_iter().map(|i| &self.vertices[i]) {
            s.total += 1;
            if v.failed() {
                s.failed += 1;
                if first_failure.is_none_or(|f| v.completed_at() < f.completed_at()) {
                    first_failure = Some(v);
                }
            } else if v.error.is_some() || !v.is_completed() {
                // Canceled or never finished: counted in the total only.
            } else if v.cached {
                s.cached += 1;
            } else {
                s.executed += 1;
                s.executed_time += v.duration(None);
            }
        }
        s.failed_vertex = first_failure.map(|v| FailedVertex {
            name: v.name.clone(),
            error: v.error.clone().unwrap_or_default(),
            logs: v.recent.iter().map(|l| l.text.clone()).collect(),
        });
        s
    }

    /// Failed steps (canceled ones aside) in `#N` order, by vertex index:
    /// several can fail without failing the build (cache imports, exports
    /// with `ignore-error=true`).
    pub fn failures(&self) -> Vec<(usize, FailedVertex)> {
        self.numbered()
            .into_iter()
            .filter(|&i| self.vertices[i].failed())
            .map(|i| (i, self.report(i)))
            .collect()
    }

    /// The vertex index of this digest (or of its group).
    pub fn index_of(&self, digest: &str) -> Option<usize> {
        self.by_digest.get(digest).copied()
    }

    fn report(&self, idx: usize) -> FailedVertex {
        let v = &self.vertices[idx];
        FailedVertex {
            name: v.name.clone(),
            error: v.error.clone().unwrap_or_default(),
            logs: v.recent.iter().map(|l| l.text.clone()).collect(),
        }
    }

    /// The step with this digest (or a member of its group), as a failure
    /// report: BuildKit names the failed vertex in the Solve error.
    pub fn vertex_report(&self, digest: &str) -> Option<FailedVertex> {
        Some(self.report(self.index_of(digest)?))
    }

    fn apply_status(&mut self, s: &StatusItem, applied: &mut Applied) {
        let Some(idx) = self.known(&s.vertex, "status") else {
            return;
        };
        let v = &mut self.vertices[idx];
        match v.statuses.iter_mut().find(|x| x.id == s.id) {
            Some(prev) => *prev = s.clone(),
            // Shown from its start on, as progressui does.
            None if s.started.is_some() => v.statuses.push(s.clone()),
            None => return,
        }
        applied.statuses.push((idx, s.id.clone()));
        self.touch(idx, applied);
    }

    fn apply_log(&mut self, l: &LogChunk, applied: &mut Applied) {
        let Some(idx) = self.known(&l.vertex, "log") else {
            return;
        };
        let v = &mut self.vertices[idx];
        // Measured on the daemon's clock from the step's latest start.
        let elapsed = match (l.timestamp, v.last_start()) {
            (Some(t), Some(s)) => t.duration_since(s).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let mut lines = Vec::new();
        v.push_log(&l.data, elapsed, &mut lines);
        applied.lines.extend(lines.into_iter().map(|l| (idx, l)));
        self.touch(idx, applied);
    }

    fn advance_clock(&mut self, u: &StatusUpdate) {
        let times = u
            .vertices
            .iter()
            .flat_map(|v| [v.started, v.completed])
            .chain(u.statuses.iter().flat_map(|s| [s.timestamp, s.completed]))
            .chain(u.logs.iter().map(|l| l.timestamp));
        for t in times.flatten() {
            self.now = Some(self.now.map_or(t, |n| n.max(t)));
        }
    }

    fn known(&self, digest: &str, what: &str) -> Option<usize> {
        let idx = self.by_digest.get(digest).copied();
        if idx.is_none() {
            tracing::debug!(digest, what, "status for an unknown vertex ignored");
        }
        idx
    }

    fn index_or_insert(&mut self, digest: &str, name: &str) -> usize {
        if let Some(&idx) = self.by_digest.get(digest) {
            return idx;
        }
        self.vertices.push(VertexState::new(name));
        let idx = self.vertices.len() - 1;
        self.by_digest.insert(digest.to_string(), idx);
        idx
    }

    /// Marks news for a step, numbering it the first time it has any.
    fn touch(&mut self, idx: usize, applied: &mut Applied) {
        let v = &mut self.vertices[idx];
        if v.hidden {
            return;
        }
        if v.number.is_none() {
            self.next_number += 1;
            v.number = Some(self.next_number);
            v.mark = self.marker.as_ref().and_then(|m| m(&v.name));
        }
        applied.touch(idx);
    }

    fn apply_vertex(&mut self, u: &VertexUpdate, applied: &mut Applied) {
        let idx = self.index_or_insert(&u.digest, &u.name);
        let v = &mut self.vertices[idx];
        // A late duplicate of the initial (unstarted) vertex must not reset a
        // started one (display.go).
        if v.is_started() && u.started.is_none() {
            return;
        }
        v.set_name(&u.name);
        v.cached = u.cached;
        v.error = u.error.clone();
        if let Some(start) = u.started {
            v.set_interval(start, u.completed);
        }
        // Only a started step's changes are news (triggerVertexEvent).
        let prev = self.last.insert(idx, u.clone());
        if u.started.is_some() && prev.as_ref().is_none_or(|p| is_news(p, u)) {
            self.touch(idx, applied);
        }
    }

    /// Group members are shown as one step named after the group: it runs
    /// while any member runs, is cached if all are, fails with the first
    /// error, and stays hidden until a strong member starts.
    fn apply_member(&mut self, u: &VertexUpdate, id: &str, name: &str, applied: &mut Applied) {
        let fresh = !self.by_digest.contains_key(id);
        let idx = self.index_or_insert(id, name);
        if fresh {
            self.vertices[idx].hidden = true;
        }
        self.by_digest.insert(u.digest.clone(), idx);
        let members = self.groups.entry(idx).or_default();
        match members.iter_mut().find(|m| m.digest == u.digest) {
            Some(m) => *m = u.clone(),
            None => members.push(u.clone()),
        }
        let members = &self.groups[&idx];
        let intervals: Vec<Interval> = members
            .iter()
            .filter_map(|m| {
                m.started.map(|start| Interval {
                    start,
                    stop: m.completed,
                })
            })
            .collect();
        let cached = members.iter().all(|m| m.cached);
        let error = members.iter().find_map(|m| m.error.clone());
        let reveal = error.is_some()
            || members
                .iter()
                .any(|m| m.started.is_some() && !m.progress_group.as_ref().is_some_and(|g| g.weak));

        let v = &mut self.vertices[idx];
        let mut changed = v.replace_intervals(merge_intervals(&intervals));
        changed |= v.cached != cached || v.error != error;
        v.cached = cached;
        v.error = error;
        if reveal && v.hidden {
            v.hidden = false;
            changed = true;
        }
        if changed && v.is_started() {
            self.touch(idx, applied);
        }
    }
}

fn is_news(prev: &VertexUpdate, u: &VertexUpdate) -> bool {
    prev.name != u.name
        || prev.started != u.started
        || (u.completed.is_some() && prev.completed != u.completed)
        || prev.cached != u.cached
        || prev.error != u.error
}

#[cfg(test)]
mod tests;
