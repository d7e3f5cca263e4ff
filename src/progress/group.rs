//! The tty display for several concurrent builds: one frame, redrawn in
//! place, with each build as a group under its own header line.
//!
//! ```text
//! [+] app: Building 3.4s (4/6)
//!  => [2/3] RUN make                                            2.1s
//! [+] tests: Building 1.2s (2/5)
//!  => [2/4] RUN go test ./...                                   0.9s
//! ```

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::report;
use super::state::State;
use super::tty::{Style, build_rows, fit, header, layout, paint, terminal_size};

/// Frames are drawn at most this often unless forced (a tick).
const MIN_REDRAW: Duration = Duration::from_millis(100);

/// The grouped frame's painter.
pub(crate) struct Group {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    labels: Vec<(usize, String)>,
    started: Instant,
    drawn: usize,
    last_draw: Option<Instant>,
    color: bool,
}

impl Group {
    pub(crate) fn new(out: Arc<Mutex<Box<dyn Write + Send>>>) -> Group {
        Group {
            out,
            labels: Vec::new(),
            started: Instant::now(),
            drawn: 0,
            last_draw: None,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// Adds build `index` under `label`.
    pub(crate) fn add(&mut self, index: usize, label: String) {
        if !self.labels.iter().any(|(i, _)| *i == index) {
            self.labels.push((index, label));
        }
    }

    /// Redraws the frame (at most every 100 ms unless `force`).
    pub(crate) fn draw(&mut self, states: &[(usize, &State)], force: bool) -> io::Result<()> {
        let now = Instant::now();
        if !force
            && self
                .last_draw
                .is_some_and(|l| now.duration_since(l) < MIN_REDRAW)
        {
            return Ok(());
        }
        self.paint(states, false)
    }

    /// The last frame, then each build's failed steps and warnings.
    pub(crate) fn finish(&mut self, states: &[(usize, &State)]) -> io::Result<()> {
        self.paint(states, true)?;
        self.drawn = 0;
        let mut text = String::new();
        for (index, state) in states {
            let logs = report::error_logs(state);
            let warnings = report::warnings(state, self.color);
            if logs.is_empty() && warnings.is_empty() {
                continue;
            }
            text.push_str(&format!("[{}]\n{logs}{warnings}", self.label(*index)));
        }
        let mut out = self
            .out
            .lock()
            .map_err(|_| io::Error::other("output lock"))?;
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    fn label(&self, index: usize) -> &str {
        self.labels
            .iter()
            .find(|(i, _)| *i == index)
            .map_or("build", |(_, l)| l.as_str())
    }

    fn paint(&mut self, states: &[(usize, &State)], last: bool) -> io::Result<()> {
        let (cols, lines) = terminal_size();
        let width = cols.max(20) - 1;
        let elapsed = self.started.elapsed();
        let groups = states.len().max(1);
        // Each build gets an equal share of the screen below its header.
        let share = (lines.saturating_sub(1) / groups).saturating_sub(1).max(1);
        let mut frame: Vec<(String, Style)> = Vec::new();
        for (index, state) in states {
            let head = header(state, elapsed, last);
            let head = head.replacen("[+] ", &format!("[+] {}: ", self.label(*index)), 1);
            frame.push((head, Style::Plain));
            let mut rows = build_rows(state, state.now, !last);
            if !last && rows.len() > share {
                rows = fit(build_rows(state, state.now, false), share);
            }
            frame.extend(rows.iter().map(|r| (layout(r, width), r.style)));
        }
        let buf = paint(&frame, self.drawn, self.color, width);
        self.drawn = frame.len();
        self.last_draw = Some(Instant::now());
        let mut out = self
            .out
            .lock()
            .map_err(|_| io::Error::other("output lock"))?;
        out.write_all(buf.as_bytes())?;
        out.flush()
    }
}
