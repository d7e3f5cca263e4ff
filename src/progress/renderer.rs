//! One output for the events of one or many concurrent builds.
//!
//! A single build renders exactly as [`Progress`] does. With several builds
//! (`Client::build_all`, bake) every build keeps its own fold and `#N`
//! numbering: in plain mode each line is prefixed with `[name] `; in tty mode
//! each build is a group under its own header line in one redrawn frame.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::event::{Event, EventKind};
use super::{Mode, Progress, Summary, tty};

type SharedOut = Arc<Mutex<Box<dyn Write + Send>>>;

/// Renders builds' [`Event`]s into one writer.
pub struct Renderer {
    mode: Mode,
    out: SharedOut,
    /// Set once a second build starts: from then on lines carry prefixes.
    multi: Arc<AtomicBool>,
    builds: Vec<Option<Slot>>,
    group: Option<tty::Group>,
}

struct Slot {
    label: String,
    progress: Progress,
    summary: Option<Summary>,
}

/// Build indices past this are ignored: an index comes from an [`Event`],
/// which any program can make, and sizes a table here.
const MAX_BUILDS: usize = 4096;

impl Renderer {
    /// A display in `mode` writing to `out` (normally stderr; stdout for
    /// rawjson).
    pub fn new(mode: Mode, out: Box<dyn Write + Send>) -> Renderer {
        Renderer {
            mode,
            out: Arc::new(Mutex::new(out)),
            multi: Arc::new(AtomicBool::new(false)),
            builds: Vec::new(),
            group: None,
        }
    }

    /// Feeds one event.
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn apply(&mut self, event: &Event) -> io::Result<()> {
        match &event.kind {
            EventKind::Started { .. } if event.build >= MAX_BUILDS => Ok(()),
            EventKind::Started { name, marker } => {
                let started = self.builds.iter().flatten().count();
                if started >= 1 {
                    self.multi.store(true, Ordering::Relaxed);
                }
                let label = name
                    .clone()
                    .unwrap_or_else(|| format!("build {}", event.build));
                let mut progress = self.progress_for(&label);
                if let Some(m) = marker.clone() {
                    progress.mark(move |n| m.mark(n));
                }
                if self.builds.len() <= event.build {
                    self.builds.resize_with(event.build + 1, || None);
                }
                self.builds[event.build] = Some(Slot {
                    label,
                    progress,
                    summary: None,
                });
                if self.mode == Mode::Tty && self.multi.load(Ordering::Relaxed) {
                    let group = self
                        .group
                        .get_or_insert_with(|| tty::Group::new(self.out.clone()));
                    // The builds that started before the second one, too.
                    for (i, slot) in self.builds.iter().enumerate() {
                        if let Some(slot) = slot {
                            group.add(i, slot.label.clone());
                        }
                    }
                }
                Ok(())
            }
            EventKind::Placed(placement) => {
                let grouped = self.group.is_some();
                let Some(slot) = self.slot(event.build) else {
                    return Ok(());
                };
                // The grouped frame has no line for it; the end report has.
                if grouped {
                    return Ok(());
                }
                for line in super::placement_lines(placement) {
                    slot.progress.note(&line)?;
                }
                Ok(())
            }
            EventKind::Status(update) => {
                let grouped = self.group.is_some();
                let Some(slot) = self.slot(event.build) else {
                    return Ok(());
                };
                slot.progress.apply_quietly(update, grouped)?;
                self.redraw_group(false)
            }
            EventKind::Finished => {
                let grouped = self.group.is_some();
                let Some(slot) = self.slot(event.build) else {
                    return Ok(());
                };
                if slot.summary.is_none() {
                    slot.summary = Some(if grouped {
                        slot.progress.finish_state()
                    } else {
                        slot.progress.finish()?
                    });
                }
                self.redraw_group(false)
            }
        }
    }

    /// Call every 100 ms or so (see [`Progress::tick`]).
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn tick(&mut self) -> io::Result<()> {
        if self.group.is_some() {
            return self.redraw_group(true);
        }
        for slot in self.builds.iter_mut().flatten() {
            if slot.summary.is_none() {
                slot.progress.tick()?;
            }
        }
        Ok(())
    }

    /// Ends the display: builds that did not finish are finished, a grouped
    /// frame is drawn one last time with each build's failed steps and
    /// warnings after it. Returns each build's summary by build index
    /// (`None` for an index that never started).
    ///
    /// # Errors
    ///
    /// The I/O error from writing to the output.
    pub fn finish(&mut self) -> io::Result<Vec<Option<Summary>>> {
        let grouped = self.group.is_some();
        for slot in self.builds.iter_mut().flatten() {
            if slot.summary.is_none() {
                slot.summary = Some(if grouped {
                    slot.progress.finish_state()
                } else {
                    slot.progress.finish()?
                });
            }
        }
        if let Some(group) = &mut self.group {
            let states = self
                .builds
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, &s.as_ref()?.progress.state)))
                .collect::<Vec<_>>();
            group.finish(&states)?;
        }
        Ok(self
            .builds
            .iter()
            .map(|s| s.as_ref().and_then(|s| s.summary.clone()))
            .collect())
    }

    fn slot(&mut self, build: usize) -> Option<&mut Slot> {
        self.builds.get_mut(build)?.as_mut()
    }

    fn redraw_group(&mut self, force: bool) -> io::Result<()> {
        let Some(group) = &mut self.group else {
            return Ok(());
        };
        let states = self
            .builds
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, &s.as_ref()?.progress.state)))
            .collect::<Vec<_>>();
        group.draw(&states, force)
    }

    /// A fold and renderer for one build, writing through the shared output.
    fn progress_for(&self, label: &str) -> Progress {
        let writer = Prefixed {
            out: self.out.clone(),
            prefix: format!("[{label}] "),
            multi: self.multi.clone(),
            line: Vec::new(),
            // Only plain lines are prefixed: rawjson lines are data, and
            // the tty frame cannot be split into lines.
            prefixes: self.mode == Mode::Plain,
        };
        Progress::new(self.mode, Box::new(writer))
    }
}

/// Renders events from `rx` until every sender is gone, ticking every
/// 100 ms; returns the summaries by build index.
///
/// # Errors
///
/// The I/O error from writing to the output; rendering stops at the first one.
pub async fn render(
    mode: Mode,
    out: Box<dyn Write + Send>,
    mut rx: mpsc::Receiver<Event>,
) -> io::Result<Vec<Option<Summary>>> {
    let mut display = Renderer::new(mode, out);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(event) => display.apply(&event)?,
                None => break,
            },
            _ = tick.tick() => display.tick()?,
        }
    }
    display.finish()
}

/// Writes whole lines to the shared output, with the build's prefix once
/// several builds share it, so concurrent builds never split a line.
struct Prefixed {
    out: SharedOut,
    prefix: String,
    multi: Arc<AtomicBool>,
    line: Vec<u8>,
    prefixes: bool,
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.prefixes {
            let mut out = self
                .out
                .lock()
                .map_err(|_| io::Error::other("output lock"))?;
            return out.write(buf);
        }
        self.line.extend_from_slice(buf);
        while let Some(end) = self.line.iter().position(|&b| b == b'\n') {
            let rest = self.line.split_off(end + 1);
            let line = std::mem::replace(&mut self.line, rest);
            let mut out = self
                .out
                .lock()
                .map_err(|_| io::Error::other("output lock"))?;
            if self.multi.load(Ordering::Relaxed) && line != b"\n" {
                out.write_all(self.prefix.as_bytes())?;
            }
            out.write_all(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut out = self
            .out
            .lock()
            .map_err(|_| io::Error::other("output lock"))?;
        out.flush()
    }
}
