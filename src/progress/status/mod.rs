//! `Control.Status` responses as plain Rust events.
//!
//! This module owns the one place where progress protobuf types are read, so the
//! progress fold and renderers never see them. The shapes follow BuildKit's
//! `client/graph.go` (`SolveStatus`, `Vertex`, `VertexStatus`, `VertexLog`,
//! `VertexWarning`).
//!
//! Everything here is daemon input: conversion never fails. A missing or
//! out-of-range timestamp becomes `None`, negative byte counts become 0, text
//! that is not UTF-8 is converted lossily, empty strings become `None` where
//! "absent" is what they mean.

use std::time::SystemTime;

use bytes::Bytes;

use crate::proto::moby::buildkit::v1 as api;
use crate::proto::pb;

/// One `StatusResponse`: an incremental update, merged by the progress fold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Steps that started, finished or changed since the last update.
    pub vertices: Vec<VertexUpdate>,
    /// Progress of sub-tasks (transfers, layers) of known steps.
    pub statuses: Vec<StatusItem>,
    /// Output the steps wrote, in arrival order.
    pub logs: Vec<LogChunk>,
    /// Warnings raised since the last update.
    pub warnings: Vec<Warning>,
}

/// The latest state of one build step (an LLB vertex), keyed by `digest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VertexUpdate {
    /// The vertex digest; statuses, logs and warnings name the step by it.
    pub digest: String,
    /// Digests of the vertices this one depends on.
    pub inputs: Vec<String>,
    /// As the daemon names it, e.g. `[2/3] RUN echo hi`.
    pub name: String,
    /// Whether the daemon reused the step's result from its cache.
    pub cached: bool,
    /// When the step (last) started, on the daemon's clock; `None` until it
    /// starts.
    pub started: Option<SystemTime>,
    /// When it finished, on the daemon's clock; `None` while it runs.
    pub completed: Option<SystemTime>,
    /// `None` when the step has not failed.
    pub error: Option<String>,
    /// The group the step is shown under, if it belongs to one.
    pub progress_group: Option<ProgressGroup>,
}

/// Vertices sharing a group are shown as one step (`pb.ProgressGroup`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgressGroup {
    /// The key the members share.
    pub id: String,
    /// Shown as the name of the group's one step.
    pub name: String,
    /// A weak member alone does not reveal the group.
    pub weak: bool,
}

/// A sub-task of a vertex, keyed by `(vertex, id)`: a transfer or a layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusItem {
    /// Shown to users, e.g. `transferring context:` or a layer digest.
    pub id: String,
    /// The digest of the step this sub-task belongs to.
    pub vertex: String,
    /// A secondary label, often empty; the displays show `id`.
    pub name: String,
    /// Progress so far, usually bytes (0 when the daemon sends a negative
    /// count).
    pub current: u64,
    /// `None` when the daemon does not know the total (it sends 0).
    pub total: Option<u64>,
    /// When the daemon produced this update.
    pub timestamp: Option<SystemTime>,
    /// When the sub-task started; `None` until then (the fold shows an item
    /// only from its start).
    pub started: Option<SystemTime>,
    /// When the sub-task finished; `None` while it runs.
    pub completed: Option<SystemTime>,
}

/// Where a log chunk was written by the step's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (1 on the wire).
    Stdout,
    /// Standard error (2 on the wire).
    Stderr,
    /// Any other number the daemon sends; kept so nothing is lost.
    Other(i64),
}

impl Stream {
    /// The number on the wire (1 stdout, 2 stderr).
    pub fn number(self) -> i64 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
            Stream::Other(n) => n,
        }
    }
}

/// Raw output of a step. Chunks may end mid-line (and mid-character).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogChunk {
    /// The digest of the step that wrote it.
    pub vertex: String,
    /// Which of the process's streams it came from.
    pub stream: Stream,
    /// When the daemon captured it, on its clock; `None` if missing or out
    /// of range.
    pub timestamp: Option<SystemTime>,
    /// The bytes as written, not necessarily UTF-8.
    pub data: Bytes,
}

/// A build warning, e.g. from the Dockerfile linter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warning {
    /// The digest of the step it concerns; may name no known step.
    pub vertex: String,
    /// The level the frontend gave it (the Dockerfile linter sends 1);
    /// passed through, not interpreted.
    pub level: i64,
    /// One line; the Dockerfile frontend already appends `(line N)`.
    pub short: String,
    /// Further paragraphs explaining it, each one string.
    pub detail: Vec<String>,
    /// A page that documents the rule; `None` when the frontend gives none.
    pub url: Option<String>,
    /// The file the warning points into, if the frontend sent it.
    pub source: Option<SourceInfo>,
    /// The spans of `source` it points at; empty when none.
    pub ranges: Vec<SourceRange>,
}

/// The file a warning points into.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceInfo {
    /// The file's name as the frontend knows it, e.g. `Dockerfile`.
    pub filename: String,
    /// The file's language, e.g. `Dockerfile`; `None` when not sent.
    pub language: Option<String>,
    /// The whole file as the frontend saw it.
    pub data: Bytes,
}

/// A span of a warning's source file, `start` to `end`; a position the
/// frontend left out is all zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceRange {
    /// Where the span begins.
    pub start: Position,
    /// Where it ends.
    pub end: Position,
}

/// A place in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// 1-based, as the frontend sends it; 0 means unknown.
    pub line: u32,
    /// The character within the line; 0 when the frontend gives none.
    pub character: u32,
}

/// BuildKit reports a step stopped by cancellation with this error suffix
/// (Go's `context.Canceled`), and progressui shows it as `CANCELED`.
pub fn is_canceled(error: &str) -> bool {
    error.ends_with("context canceled")
}

impl StatusUpdate {
    pub(crate) fn from_proto(resp: &api::StatusResponse) -> Self {
        StatusUpdate {
            vertices: resp.vertexes.iter().map(VertexUpdate::from_proto).collect(),
            statuses: resp.statuses.iter().map(StatusItem::from_proto).collect(),
            logs: resp.logs.iter().map(LogChunk::from_proto).collect(),
            warnings: resp.warnings.iter().map(Warning::from_proto).collect(),
        }
    }
}

impl VertexUpdate {
    pub(crate) fn from_proto(v: &api::Vertex) -> Self {
        VertexUpdate {
            digest: v.digest.clone(),
            inputs: v.inputs.clone(),
            name: v.name.clone(),
            cached: v.cached,
            started: time(v.started.as_ref()),
            completed: time(v.completed.as_ref()),
            error: non_empty(&v.error),
            progress_group: v.progress_group.as_ref().map(ProgressGroup::from_proto),
        }
    }
}

impl ProgressGroup {
    pub(crate) fn from_proto(g: &pb::ProgressGroup) -> Self {
        ProgressGroup {
            id: g.id.clone(),
            name: g.name.clone(),
            weak: g.weak,
        }
    }
}

impl StatusItem {
    pub(crate) fn from_proto(s: &api::VertexStatus) -> Self {
        StatusItem {
            id: s.id.clone(),
            vertex: s.vertex.clone(),
            name: s.name.clone(),
            current: u64::try_from(s.current).unwrap_or(0),
            total: u64::try_from(s.total).ok().filter(|&t| t > 0),
            timestamp: time(s.timestamp.as_ref()),
            started: time(s.started.as_ref()),
            completed: time(s.completed.as_ref()),
        }
    }
}

impl LogChunk {
    pub(crate) fn from_proto(l: &api::VertexLog) -> Self {
        LogChunk {
            vertex: l.vertex.clone(),
            stream: match l.stream {
                1 => Stream::Stdout,
                2 => Stream::Stderr,
                n => Stream::Other(n),
            },
            timestamp: time(l.timestamp.as_ref()),
            data: l.msg.clone(),
        }
    }
}

impl Warning {
    pub(crate) fn from_proto(w: &api::VertexWarning) -> Self {
        Warning {
            vertex: w.vertex.clone(),
            level: w.level,
            short: String::from_utf8_lossy(&w.short).into_owned(),
            detail: w
                .detail
                .iter()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect(),
            url: non_empty(&w.url),
            source: w.info.as_ref().map(|i| SourceInfo {
                filename: i.filename.clone(),
                language: non_empty(&i.language),
                data: i.data.clone(),
            }),
            ranges: w.ranges.iter().map(SourceRange::from_proto).collect(),
        }
    }
}

impl SourceRange {
    pub(crate) fn from_proto(r: &pb::Range) -> Self {
        SourceRange {
            start: r
                .start
                .as_ref()
                .map(Position::from_proto)
                .unwrap_or_default(),
            end: r.end.as_ref().map(Position::from_proto).unwrap_or_default(),
        }
    }
}

impl Position {
    pub(crate) fn from_proto(p: &pb::Position) -> Self {
        Position {
            line: u32::try_from(p.line).unwrap_or(0),
            character: u32::try_from(p.character).unwrap_or(0),
        }
    }
}

/// google.protobuf.Timestamp's valid range: 0001-01-01 to 9999-12-31 (UTC).
const TIMESTAMP_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

/// A timestamp outside the protobuf range (or the platform's) is dropped
/// rather than clamped, so durations computed from it are "unknown", not
/// wildly wrong, and later time arithmetic cannot overflow.
fn time(ts: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let ts = ts?;
    if !TIMESTAMP_SECONDS.contains(&ts.seconds) {
        tracing::debug!(?ts, "dropping out-of-range status timestamp");
        return None;
    }
    match SystemTime::try_from(*ts) {
        Ok(t) => Some(t),
        Err(err) => {
            tracing::debug!(?ts, %err, "dropping unrepresentable status timestamp");
            None
        }
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests;
