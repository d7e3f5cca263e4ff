//! Recorded `--progress rawjson` streams read back into `StatusResponse`s, so
//! tests can replay what a real daemon sent through the renderers, with ticks
//! placed as the CLI would place them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use prost_types::Timestamp;
use serde_json::Value;

use super::{Mode, Progress, Summary};
use crate::proto::moby::buildkit::v1::{
    StatusResponse, Vertex, VertexLog, VertexStatus, VertexWarning,
};
use crate::proto::pb;

/// One message per line, as `rawjson` writes them.
pub(crate) fn parse(text: &str) -> Vec<StatusResponse> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| message(&serde_json::from_str(l).expect("a rawjson line is JSON")))
        .collect()
}

/// Replays `msgs` through plain progress. The CLI ticks every 100ms; a
/// message is taken to arrive at the latest daemon time it carries, and the
/// first tick falls `phase_ms` after the first timestamp.
pub(crate) fn plain(msgs: &[StatusResponse], phase_ms: u64) -> (String, Summary) {
    let sink = super::fixture::Sink::default();
    let mut p = Progress::new(Mode::Plain, Box::new(sink.clone()));
    let mut next_tick: Option<i128> = None;
    let mut arrival: i128 = i128::MIN;
    for m in msgs {
        arrival = arrival.max(latest(m).unwrap_or(i128::MIN));
        if arrival > i128::MIN {
            let next = next_tick.get_or_insert(arrival + i128::from(phase_ms) * 1_000_000);
            while *next <= arrival {
                p.tick().expect("writing to memory");
                *next += 100_000_000;
            }
        }
        p.update(m).expect("writing to memory");
    }
    let summary = p.finish().expect("writing to memory");
    (sink.text(), summary)
}

/// The latest time in a message, in nanoseconds since the epoch.
fn latest(m: &StatusResponse) -> Option<i128> {
    let vertices = m.vertexes.iter().flat_map(|v| [&v.started, &v.completed]);
    let statuses = m.statuses.iter().flat_map(|s| [&s.timestamp, &s.completed]);
    let logs = m.logs.iter().map(|l| &l.timestamp);
    vertices
        .chain(statuses)
        .chain(logs)
        .flatten()
        .map(|t| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos))
        .max()
}

fn message(j: &Value) -> StatusResponse {
    let list = |key: &str| {
        j.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    StatusResponse {
        vertexes: list("vertexes").iter().map(vertex).collect(),
        statuses: list("statuses").iter().map(status).collect(),
        logs: list("logs").iter().map(log).collect(),
        warnings: list("warnings").iter().map(warning).collect(),
    }
}

fn vertex(j: &Value) -> Vertex {
    Vertex {
        digest: text(j, "digest"),
        inputs: j
            .get("inputs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        name: text(j, "name"),
        cached: j.get("cached").and_then(Value::as_bool).unwrap_or(false),
        started: time(j, "started"),
        completed: time(j, "completed"),
        error: text(j, "error"),
        progress_group: j.get("progressGroup").map(|g| pb::ProgressGroup {
            id: text(g, "id"),
            name: text(g, "name"),
            weak: g.get("weak").and_then(Value::as_bool).unwrap_or(false),
        }),
    }
}

fn status(j: &Value) -> VertexStatus {
    VertexStatus {
        id: text(j, "id"),
        vertex: text(j, "vertex"),
        name: text(j, "name"),
        current: number(j, "current"),
        total: number(j, "total"),
        timestamp: time(j, "timestamp"),
        started: time(j, "started"),
        completed: time(j, "completed"),
    }
}

fn log(j: &Value) -> VertexLog {
    VertexLog {
        vertex: text(j, "vertex"),
        timestamp: time(j, "timestamp"),
        stream: number(j, "stream"),
        msg: base64(j, "data"),
    }
}

fn warning(j: &Value) -> VertexWarning {
    VertexWarning {
        vertex: text(j, "vertex"),
        level: number(j, "level"),
        short: base64(j, "short"),
        detail: j
            .get("detail")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|d| decode(d.as_str().unwrap_or(""))).collect())
            .unwrap_or_default(),
        url: text(j, "url"),
        info: None,
        ranges: Vec::new(),
    }
}

fn text(j: &Value, key: &str) -> String {
    j.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn number(j: &Value, key: &str) -> i64 {
    j.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn time(j: &Value, key: &str) -> Option<Timestamp> {
    let s = j.get(key)?.as_str()?;
    // Go writes its zero time for a missing non-pointer time.
    (s != "0001-01-01T00:00:00Z").then(|| s.parse().expect("an RFC 3339 time"))
}

fn base64(j: &Value, key: &str) -> Bytes {
    decode(j.get(key).and_then(Value::as_str).unwrap_or(""))
}

fn decode(s: &str) -> Bytes {
    Bytes::from(STANDARD.decode(s).expect("base64 as Go writes []byte"))
}
