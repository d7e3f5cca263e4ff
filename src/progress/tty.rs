//! Live progress for a terminal, redrawn in place, shaped like progressui's
//! tty display (util/progress/progressui/display.go, `ttyDisplay.print`):
//!
//! ```text
//! [+] Building 3.4s (4/6)
//!  => [internal] load build definition from Dockerfile          0.0s
//!  => => transferring dockerfile: 131B                          0.0s
//!  => CACHED [1/3] FROM docker.io/library/busybox               0.0s
//!  => [2/3] RUN make                                            2.1s
//!  => => # cc -o app main.c
//! ```
//!
//! Each frame moves the cursor up over the previous one and rewrites it, so
//! no line may be wider than the terminal. The last frame stays on screen;
//! failed steps' logs and the warnings follow it.

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use super::state::State;
use super::vertex::VertexState;
use super::width::{pad, truncate};
use super::{Clock, report, units};

pub(crate) use super::group::Group;
use crate::progress::status::is_canceled;

/// Frames are drawn at most this often on updates (progressui: 100ms);
/// `tick` redraws regardless so running timers advance.
const MIN_REDRAW: Duration = Duration::from_millis(100);
/// Log lines shown under a running step.
const LOG_TAIL: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Plain,
    Done,
    Error,
    Canceled,
    Faint,
}

impl Style {
    pub(super) fn ansi(self) -> &'static str {
        match self {
            Style::Plain => "",
            Style::Done => "\x1b[34m",
            Style::Error => "\x1b[31m",
            Style::Canceled => "\x1b[33m",
            Style::Faint => "\x1b[2m",
        }
    }
}

pub(super) struct Row {
    text: String,
    /// Right-aligned elapsed time; log lines have none.
    time: Option<Duration>,
    pub(super) style: Style,
    done: bool,
}

pub(crate) struct Tty {
    out: Box<dyn Write + Send>,
    clock: Clock,
    /// `(columns, rows)` fixed by tests; otherwise asked each frame.
    pub(crate) size: Option<(usize, usize)>,
    pub(crate) color: bool,
    started: Option<Instant>,
    /// A daemon timestamp and the local instant it was seen: maps local time
    /// onto the daemon's clock for running timers.
    anchor: Option<(SystemTime, Instant)>,
    drawn: usize,
    last_draw: Option<Instant>,
    /// Lines for after the last frame.
    notes: Vec<String>,
}

impl Tty {
    pub fn new(out: Box<dyn Write + Send>, clock: Clock) -> Self {
        Tty {
            out,
            clock,
            size: None,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            started: None,
            anchor: None,
            drawn: 0,
            last_draw: None,
            notes: Vec::new(),
        }
    }

    /// Keeps `line` for after the last frame (a line written now would be
    /// drawn over).
    pub fn note(&mut self, line: &str) {
        self.notes.push(line.to_string());
    }

    pub fn update(&mut self, state: &State) -> io::Result<()> {
        let now = self.now(state);
        if self
            .last_draw
            .is_none_or(|l| now.duration_since(l) >= MIN_REDRAW)
        {
            self.draw(state, now, false)?;
        }
        Ok(())
    }

    pub fn tick(&mut self, state: &State) -> io::Result<()> {
        let now = self.now(state);
        self.draw(state, now, false)
    }

    pub fn finish(&mut self, state: &State) -> io::Result<()> {
        let now = self.now(state);
        self.draw(state, now, true)?;
        self.drawn = 0;
        let mut text: String = self.notes.iter().map(|n| format!("{n}\n")).collect();
        text.push_str(&report::error_logs(state));
        text.push_str(&report::warnings(state, self.color));
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn now(&mut self, state: &State) -> Instant {
        let now = (self.clock)();
        self.started.get_or_insert(now);
        if let (None, Some(t)) = (self.anchor, state.now) {
            self.anchor = Some((t, now));
        }
        now
    }

    /// The daemon's time now, never behind the latest timestamp it sent.
    fn daemon_now(&self, state: &State, now: Instant) -> Option<SystemTime> {
        let estimate = self
            .anchor
            .and_then(|(t, seen)| t.checked_add(now.saturating_duration_since(seen)));
        estimate.max(state.now)
    }

    fn draw(&mut self, state: &State, now: Instant, last: bool) -> io::Result<()> {
        let (cols, lines) = self.size.unwrap_or_else(terminal_size);
        let width = cols.max(20) - 1;
        let elapsed = self.started.map(|s| now.saturating_duration_since(s));
        let mut frame = vec![(
            header(state, elapsed.unwrap_or_default(), last),
            Style::Plain,
        )];
        let daemon_now = self.daemon_now(state, now);
        let mut rows = build_rows(state, daemon_now, !last);
        if !last && rows.len() + 2 > lines {
            rows = fit(
                build_rows(state, daemon_now, false),
                lines.saturating_sub(2),
            );
        }
        frame.extend(rows.iter().map(|r| (layout(r, width), r.style)));

        let buf = paint(&frame, self.drawn, self.color, width);
        self.drawn = frame.len();
        self.last_draw = Some(now);
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }
}

/// The escape sequence that replaces the `drawn` lines printed last with
/// `frame`: cursor up, each line rewritten and cleared to its end, then
/// whatever was below cleared.
pub(super) fn paint(frame: &[(String, Style)], drawn: usize, color: bool, width: usize) -> String {
    let mut buf = String::new();
    if drawn > 0 {
        buf.push_str(&format!("\x1b[{drawn}A"));
    }
    for (text, style) in frame {
        buf.push('\r');
        if color && *style != Style::Plain {
            buf.push_str(&format!("{}{text}\x1b[0m", style.ansi()));
        } else {
            buf.push_str(&truncate(text, width));
        }
        buf.push_str("\x1b[K\n");
    }
    buf.push_str("\x1b[J");
    buf
}

/// `[+] Building 12.3s (5/7)`, and ` FINISHED` on a complete last frame.
pub(super) fn header(state: &State, elapsed: Duration, last: bool) -> String {
    let visible = state.vertices.iter().filter(|v| !v.hidden);
    let total = visible.clone().count();
    let done = visible.filter(|v| v.is_completed()).count();
    let finished = if last && done > 0 && done == total {
        " FINISHED"
    } else {
        ""
    };
    format!(
        "[+] Building {}s ({done}/{total}){finished}",
        units::secs(elapsed)
    )
}

pub(super) fn build_rows(state: &State, now: Option<SystemTime>, tails: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    for v in state.numbered().into_iter().map(|i| &state.vertices[i]) {
        if !v.is_started() {
            continue;
        }
        let done = v.is_completed();
        rows.push(Row {
            text: format!(" => {}", title(v)),
            time: Some(v.duration(now)),
            style: style(v),
            done,
        });
        for s in &v.statuses {
            let bytes = match s.total {
                Some(t) => format!(" {} / {}", units::bytes(s.current), units::bytes(t)),
                None if s.current > 0 => format!(" {}", units::bytes(s.current)),
                None => String::new(),
            };
            let end = s.completed.or(now);
            let time = s
                .started
                .zip(end)
                .map(|(a, b)| b.duration_since(a).unwrap_or_default());
            rows.push(Row {
                text: format!(" => => {}{bytes}", s.id),
                time: Some(time.unwrap_or_default()),
                style: if s.completed.is_some() {
                    Style::Done
                } else {
                    Style::Plain
                },
                done: done || s.completed.is_some(),
            });
        }
        for &w in &v.warnings {
            let text = format!(" => WARN: {}", state.warnings[w].short);
            rows.push(Row {
                text,
                time: None,
                style: Style::Canceled,
                done,
            });
        }
        if tails && !done {
            rows.extend(tail(v).into_iter().map(|line| Row {
                text: format!(" => => # {line}"),
                time: None,
                style: Style::Faint,
                done: false,
            }));
        }
    }
    rows
}

/// What a terminal would show of the step's last lines: after a carriage
/// return only the rewritten part remains (progress bars).
fn tail(v: &VertexState) -> Vec<String> {
    let mut lines: Vec<String> = v.recent.iter().map(|l| l.text.clone()).collect();
    lines.extend(v.partial_text());
    let skip = lines.len().saturating_sub(LOG_TAIL);
    lines
        .into_iter()
        .skip(skip)
        .map(|l| l.rsplit('\r').next().unwrap_or_default().to_string())
        .collect()
}

fn title(v: &VertexState) -> String {
    let mut t = String::new();
    if v.cached {
        t.push_str("CACHED ");
    }
    match &v.error {
        Some(e) if is_canceled(e) => t.push_str("CANCELED "),
        Some(_) => t.push_str("ERROR "),
        None => {}
    }
    t.push_str(&v.name);
    if let Some(mark) = &v.mark {
        t.push(' ');
        t.push_str(mark);
    }
    t
}

fn style(v: &VertexState) -> Style {
    match &v.error {
        _ if !v.is_completed() => Style::Plain,
        Some(e) if is_canceled(e) => Style::Canceled,
        Some(_) => Style::Error,
        None => Style::Done,
    }
}

/// Too many rows for the screen: finished rows go first, then the oldest.
pub(super) fn fit(rows: Vec<Row>, limit: usize) -> Vec<Row> {
    let mut excess = rows.len().saturating_sub(limit);
    let mut kept: Vec<Row> = Vec::with_capacity(limit);
    for r in rows {
        if excess > 0 && r.done {
            excess -= 1;
        } else {
            kept.push(r);
        }
    }
    let cut = kept.len().saturating_sub(limit);
    kept.drain(..cut);
    kept
}

/// Name left, time right, exactly `width` columns.
pub(super) fn layout(row: &Row, width: usize) -> String {
    let Some(time) = row.time else {
        return truncate(&row.text, width);
    };
    // Under 0.05s reads as noise; progressui shows 0.0s.
    let time = if time < Duration::from_millis(50) {
        Duration::ZERO
    } else {
        time
    };
    let timer = format!("{}s", units::secs(time));
    let left = width.saturating_sub(timer.len() + 1);
    format!("{} {timer}", pad(&row.text, left))
}

/// `COLUMNS`/`LINES` win (users and CI set them), then the terminal on
/// stderr, then 80x24.
pub(super) fn terminal_size() -> (usize, usize) {
    let env = |name| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
    };
    let term = terminal_size::terminal_size_of(io::stderr());
    let cols = env("COLUMNS").or(term.map(|(w, _)| usize::from(w.0)));
    let rows = env("LINES").or(term.map(|(_, h)| usize::from(h.0)));
    (cols.unwrap_or(80), rows.unwrap_or(24))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_aligns_and_truncates() {
        let row = |text: &str, time| Row {
            text: text.to_string(),
            time,
            style: Style::Plain,
            done: true,
        };
        let r = layout(&row(" => step", Some(Duration::from_millis(1_260))), 20);
        assert_eq!(r, " => step        1.3s");
        let r = layout(
            &row(" => a very long step name indeed", Some(Duration::ZERO)),
            20,
        );
        assert_eq!(r, " => a very long 0.0s");
        assert_eq!(layout(&row(" => => # a\tb", None), 8), " => => #");
        assert_eq!(r.chars().count(), 20);
        // Two-column names: padded and cut by columns, not chars.
        let r = layout(&row(" => 构建镜像", Some(Duration::from_millis(1_260))), 20);
        assert_eq!(r, " => 构建镜像    1.3s");
        let r = layout(&row(" => 构建镜像构建", Some(Duration::ZERO)), 20);
        assert_eq!(r, " => 构建镜像构  0.0s");
        let r = layout(&row(" => 🚀🚀🚀🚀🚀🚀🚀", Some(Duration::ZERO)), 20);
        assert_eq!(r, " => 🚀🚀🚀🚀🚀  0.0s");
    }

    #[test]
    fn fit_drops_finished_rows_first() {
        let rows: Vec<Row> = [true, false, true, false]
            .iter()
            .enumerate()
            .map(|(i, &done)| Row {
                text: i.to_string(),
                time: None,
                style: Style::Plain,
                done,
            })
            .collect();
        let kept: Vec<String> = fit(rows, 2).into_iter().map(|r| r.text).collect();
        assert_eq!(kept, ["1", "3"]);
    }
}
