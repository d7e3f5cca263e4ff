//! Plain progress: line-oriented text for CI logs, in progressui's format
//! (util/progress/progressui/printer.go):
//!
//! ```text
//! #3 [2/3] RUN make
//! #3 0.215 cc -o app main.c
//! #3 DONE 1.4s
//! ```
//!
//! Batching. progressui's plain display folds every message into its trace
//! but prints from a ticker (and a rate limiter), so one print shows all that
//! arrived since the last. Here [`Plain::update`] only queues, and
//! [`Plain::tick`] and [`Plain::finish`] print. Nothing reads a clock: the
//! same status stream and tick sequence always give the same text.
//!
//! Three rules go further than progressui, whose output is only as tidy as
//! its timing luck:
//! - A step's end is printed once it has held for a whole tick. BuildKit
//!   often reports a step finished and starts it again milliseconds later
//!   (the cache-key pass, then the work; a base image resolved, then reported
//!   cached); printing the first end would print the step twice.
//! - A sub-task (`transferring context:`, a layer) is printed when it
//!   finishes, with `done`; while it runs only once it has run a second, then
//!   throttled like progressui (5% or 5s).
//! - A step whose end line was printed is shown again only for news: output,
//!   a warning, a finished sub-task not shown yet, or a different outcome.
//!   Repeats, restarts without output and late sub-task updates are dropped.
//!
//! One step "has the floor" at a time, as in progressui's `textMux`: when
//! another step's output is shown, the interrupted one gets `#N ...` and is
//! re-introduced by its name line when it speaks again. A waiting step gets
//! the floor after [`MAX_DELAY`], or once the holder has been quiet for
//! [`ANTI_FLICKER`], measured on the daemon's timestamps or in ticks,
//! whichever says more time passed.

mod step;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use self::step::{Due, End, Step, end_line, log_line, status_line};
use super::report;
use super::state::{Applied, State};

/// A waiting step gets the floor after this long (progressui's maxDelay).
const MAX_DELAY: Duration = Duration::from_secs(10);
/// ...or once the step holding it has been quiet this long (antiFlicker).
const ANTI_FLICKER: Duration = Duration::from_secs(5);
/// How often the caller ticks (the CLI: every 100ms): the printer's clock
/// when the daemon is silent.
const TICK: Duration = Duration::from_millis(100);

/// Queued steps a tick may print.
#[derive(Default)]
struct Queued {
    ended: Vec<usize>,
    running: Vec<usize>,
}

/// A point on both of the printer's clocks.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Moment {
    daemon: Option<SystemTime>,
    tick: u64,
}

impl Moment {
    /// Time from `self` to `later`: the more of what the daemon's timestamps
    /// and the ticks say.
    fn until(self, later: Moment) -> Duration {
        let daemon = match (self.daemon, later.daemon) {
            (Some(a), Some(b)) => b.duration_since(a).unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let ticks = u32::try_from(later.tick.saturating_sub(self.tick)).unwrap_or(u32::MAX);
        daemon.max(TICK.saturating_mul(ticks))
    }
}

pub(crate) struct Plain {
    out: Box<dyn Write + Send>,
    /// Indexed like the fold's vertices.
    steps: Vec<Step>,
    ticks: u64,
    seq: u64,
    /// The step with the floor: its block is open (no end line yet).
    current: Option<usize>,
    /// When the floor holder last printed.
    current_spoke: Moment,
    printed_any: bool,
    /// The last `#N` given.
    numbers: usize,
}

impl Plain {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Plain {
            out,
            steps: Vec::new(),
            ticks: 0,
            seq: 0,
            current: None,
            current_spoke: Moment::default(),
            printed_any: false,
            numbers: 0,
        }
    }

    /// A `#0` line, printed at once.
    pub fn note(&mut self, line: &str) -> io::Result<()> {
        self.write(&format!("#0 {line}\n"))
    }

    /// Queues what changed; prints nothing (cheap, once per message).
    pub fn update(&mut self, state: &State, applied: Applied) {
        let now = self.now(state);
        self.queue(state, applied, now);
    }

    /// Prints what is due; one tick of the printer's clock passes.
    pub fn tick(&mut self, state: &State) -> io::Result<()> {
        self.ticks += 1;
        let text = self.flush(state, false);
        self.write(&text)
    }

    pub fn finish(&mut self, state: &State, applied: Applied) -> io::Result<()> {
        let now = self.now(state);
        self.queue(state, applied, now);
        let mut text = self.flush(state, true);
        text.push_str(&report::error_logs(state));
        text.push_str(&report::warnings(state, false));
        self.write(&text)
    }

    fn now(&self, state: &State) -> Moment {
        Moment {
            daemon: state.now,
            tick: self.ticks,
        }
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn queue(&mut self, state: &State, applied: Applied, now: Moment) {
        if self.steps.len() < state.vertices.len() {
            self.steps.resize_with(state.vertices.len(), Step::default);
        }
        let touched = (applied.touched.iter().copied())
            .chain(applied.statuses.iter().map(|(i, _)| *i))
            .chain(applied.lines.iter().map(|(i, _)| *i));
        for idx in touched {
            let running = state.vertices[idx].is_running();
            let step = &mut self.steps[idx];
            // A (re)start is news of its own: it queues behind what came
            // before it, even if the step had older news waiting.
            if step.queued.is_none() || (running && !step.running) {
                self.seq += 1;
                step.queued = Some((self.seq, now));
            }
            step.running = running;
        }
        for (idx, id) in applied.statuses {
            self.steps[idx].queue_status(&id, now);
        }
        for (idx, w) in applied.warnings {
            self.steps[idx].warnings.push(w);
        }
        for (idx, line) in applied.lines {
            self.steps[idx].lines.push(line);
        }
    }

    /// Chooses what to print, as progressui's `textMux.print`: ended steps
    /// first (the floor holder, then by completion time), then the floor
    /// holder, then at most one other step if it is owed the floor. `all`:
    /// the build is over, everything queued is printed.
    fn flush(&mut self, state: &State, all: bool) -> String {
        let now = self.now(state);
        let mut out = String::new();
        let Some(Queued {
            mut ended,
            mut running,
        }) = self.sort_queued(state, all)
        else {
            return out;
        };
        ended.sort_by_key(|&i| {
            let v = &state.vertices[i];
            (
                Some(i) != self.current,
                v.completed_at(),
                self.steps[i].queued.map(|q| q.0),
            )
        });
        for idx in ended {
            self.print_ended(state, idx, now, &mut out);
        }
        running.retain(|&i| self.has_news(state, i, now));
        running.sort_by_key(|&i| self.steps[i].queued.map(|(seq, _)| seq));
        if let Some(pos) = running.iter().position(|&i| Some(i) == self.current) {
            let cur = running.remove(pos);
            self.print(state, cur, now, &mut out);
        }
        if all {
            for idx in running {
                self.print(state, idx, now, &mut out);
            }
            return out;
        }
        match (self.current, running.first()) {
            (None, Some(&next)) => self.print(state, next, now, &mut out),
            (None, None) => self.reopen(state, now, &mut out),
            (Some(_), Some(&next)) if self.owed_floor(next, now) => {
                self.print(state, next, now, &mut out)
            }
            _ => {}
        }
        out
    }

    /// Splits the queued steps into settled ends and running steps; an end
    /// counts once it has held since the previous tick. `None`: the floor
    /// holder's end is not settled yet, and the rest waits for it rather
    /// than interrupt a block that is about to close.
    fn sort_queued(&mut self, state: &State, all: bool) -> Option<Queued> {
        let mut q = Queued::default();
        // The first news still waiting for an end to settle.
        let mut barrier: Option<u64> = None;
        let mut holder_ending = false;
        for idx in 0..self.steps.len() {
            let Some((seq, _)) = self.steps[idx].queued else {
                continue;
            };
            if state.vertices[idx].hidden {
                continue;
            }
            let end = End::of(&state.vertices[idx]);
            match &end {
                None => q.running.push(idx),
                Some(e) if all || self.steps[idx].seen_end.as_ref() == Some(e) => q.ended.push(idx),
                Some(_) => {
                    holder_ending |= self.current == Some(idx);
                    barrier = Some(barrier.map_or(seq, |b| b.min(seq)));
                }
            }
            self.steps[idx].seen_end = end;
        }
        if holder_ending {
            return None;
        }
        // News that came after an unsettled end waits for it, so steps are
        // printed (and numbered) in the order things happened.
        let before_barrier = |i: &usize| {
            let seq = self.steps[*i].queued.map(|q| q.0);
            barrier.is_none_or(|b| seq.is_some_and(|s| s < b))
        };
        q.running.retain(before_barrier);
        Some(q)
    }

    /// A running step is shown for output, a due sub-task line, or its
    /// first appearance; a restart of an ended step is not news by itself.
    fn has_news(&self, state: &State, idx: usize, now: Moment) -> bool {
        let (v, step) = (&state.vertices[idx], &self.steps[idx]);
        if !step.lines.is_empty() || !step.warnings.is_empty() {
            return true;
        }
        if step.number.is_none() && v.is_started() {
            return true;
        }
        step.statuses.iter().any(|(id, since)| {
            v.statuses
                .iter()
                .find(|s| &s.id == id)
                .is_some_and(|s| step.due(s, since.until(now), false) == Due::Now)
        })
    }

    /// A step whose end has settled. If its end line is out already, it is
    /// printed again only for news a reader has not seen.
    fn print_ended(&mut self, state: &State, idx: usize, now: Moment, out: &mut String) {
        let (v, step) = (&state.vertices[idx], &self.steps[idx]);
        if let (Some(prev), false) = (&step.printed_end, self.current == Some(idx)) {
            let outcome_changed = End::of(v).is_some_and(|e| e.outcome != prev.outcome);
            let unshown_done = step.statuses.iter().any(|(id, _)| {
                v.statuses
                    .iter()
                    .any(|s| &s.id == id && step.done_unshown(s))
            });
            let news = !step.lines.is_empty() || !step.warnings.is_empty();
            if !(news || outcome_changed || unshown_done) {
                self.steps[idx].clear();
                return;
            }
        }
        self.print(state, idx, now, out);
    }

    fn owed_floor(&self, next: usize, now: Moment) -> bool {
        let waited = self.steps[next].queued.map(|(_, since)| since.until(now));
        waited >= Some(MAX_DELAY) || self.current_spoke.until(now) >= ANTI_FLICKER
    }

    /// With nothing new to say and the floor free, an interrupted step that
    /// still runs takes it back, so the log shows what the build waits on.
    fn reopen(&mut self, state: &State, now: Moment, out: &mut String) {
        let open = (0..self.steps.len())
            .filter(|&i| {
                let (v, step) = (&state.vertices[i], &self.steps[i]);
                !v.hidden && v.is_running() && step.number.is_some() && step.printed_end.is_none()
            })
            .min_by_key(|&i| self.steps[i].number);
        if let Some(idx) = open {
            self.print(state, idx, now, out);
        }
    }

    /// One block of a step's output (progressui's `printVtx`).
    fn print(&mut self, state: &State, idx: usize, now: Moment, out: &mut String) {
        let v = &state.vertices[idx];
        let end = End::of(v);
        // Re-shown after its end line: only finished sub-tasks are news.
        let late = self.steps[idx].printed_end.is_some() && self.current != Some(idx);
        if self.current != Some(idx) {
            self.introduce(state, idx, out);
        }
        let step = &mut self.steps[idx];
        let n = step.number.unwrap_or_default();
        let mut waiting = Vec::new();
        for (id, since) in std::mem::take(&mut step.statuses) {
            let Some(s) = v.statuses.iter().find(|s| s.id == id) else {
                continue;
            };
            let due = match (late, &end) {
                (true, Some(_)) if step.done_unshown(s) => Due::Now,
                (true, Some(_)) => Due::Never,
                _ => step.due(s, since.until(now), end.is_some()),
            };
            match due {
                Due::Now => {
                    out.push_str(&status_line(n, s));
                    step.record_shown(s);
                }
                Due::Later => waiting.push((id, since)),
                Due::Never => {}
            }
        }
        for w in std::mem::take(&mut step.warnings) {
            out.push_str(&format!("#{n} WARN: {}\n", state.warnings[w].short));
        }
        for line in std::mem::take(&mut step.lines) {
            out.push_str(&log_line(n, &line));
        }
        step.statuses = waiting;
        if step.statuses.is_empty() {
            step.queued = None;
        }
        match end {
            Some(end) => {
                out.push_str(&end_line(v, &end.outcome, n));
                step.printed_end = Some(end);
                self.current = None;
            }
            None => {
                self.current = Some(idx);
                self.current_spoke = now;
            }
        }
    }

    /// Hands the floor to `idx`: the holder's block is left open with
    /// `#N ...`, and `idx` gets its name line (and its `#N` the first time).
    fn introduce(&mut self, state: &State, idx: usize, out: &mut String) {
        if let Some(cur) = self.current {
            let m = self.steps[cur].number.unwrap_or_default();
            out.push_str(&format!("#{m} ...\n"));
        }
        if self.printed_any {
            out.push('\n');
        }
        self.printed_any = true;
        let n = match self.steps[idx].number {
            Some(n) => n,
            None => {
                self.numbers += 1;
                self.steps[idx].number = Some(self.numbers);
                self.numbers
            }
        };
        let v = &state.vertices[idx];
        match &v.mark {
            Some(mark) => out.push_str(&format!("#{n} {} {mark}\n", v.name)),
            None => out.push_str(&format!("#{n} {}\n", v.name)),
        }
    }
}
