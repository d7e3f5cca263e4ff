//! `rawjson` progress: one JSON object per status message per line, in the
//! shape of BuildKit's `client.SolveStatus` (client/graph.go) as Go's
//! encoding/json writes it, so tools that read `buildctl --progress=rawjson`
//! can read rbuild's: camelCase names, `omitempty` fields left out, `[]byte`
//! as base64, times as RFC 3339 with nanoseconds.
//!
//! Deviation: a warning's `sourceInfo.definition` (the LLB of the source) is
//! not carried by [`crate::progress::status`] and so not written.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::progress::status::{
    LogChunk, ProgressGroup, SourceRange, StatusItem, StatusUpdate, VertexUpdate, Warning,
};

/// Go's zero `time.Time`, which it writes for a missing non-pointer time.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(crate) struct RawJson {
    out: Box<dyn Write + Send>,
}

impl RawJson {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        RawJson { out }
    }

    pub fn update(&mut self, update: &StatusUpdate) -> io::Result<()> {
        let mut line = serde_json::to_vec(&solve_status(update))?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

type Json = serde_json::Value;

#[derive(Serialize)]
struct SolveStatus {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    vertexes: Vec<Json>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    statuses: Vec<Json>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logs: Vec<Json>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Json>,
}

fn solve_status(u: &StatusUpdate) -> SolveStatus {
    SolveStatus {
        vertexes: u.vertices.iter().map(vertex).collect(),
        statuses: u.statuses.iter().map(status).collect(),
        logs: u.logs.iter().map(log).collect(),
        warnings: u.warnings.iter().map(warning).collect(),
    }
}

/// Builds an object, leaving out what Go's `omitempty` would.
#[derive(Default)]
struct Obj(serde_json::Map<String, Json>);

impl Obj {
    fn set(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.0.insert(key.to_string(), value.into());
        self
    }
    fn opt(self, key: &str, value: Option<impl Into<Json>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }
    fn str(self, key: &str, value: &str) -> Self {
        self.opt(key, (!value.is_empty()).then_some(value))
    }
    fn done(self) -> Json {
        Json::Object(self.0)
    }
}

fn vertex(v: &VertexUpdate) -> Json {
    Obj::default()
        .str("digest", &v.digest)
        .opt("inputs", (!v.inputs.is_empty()).then(|| v.inputs.clone()))
        .str("name", &v.name)
        .opt("started", v.started.map(rfc3339))
        .opt("completed", v.completed.map(rfc3339))
        .opt("cached", v.cached.then_some(true))
        .opt("error", v.error.clone())
        .opt("progressGroup", v.progress_group.as_ref().map(group))
        .done()
}

fn group(g: &ProgressGroup) -> Json {
    Obj::default()
        .str("id", &g.id)
        .str("name", &g.name)
        .opt("weak", g.weak.then_some(true))
        .done()
}

fn status(s: &StatusItem) -> Json {
    Obj::default()
        .set("id", s.id.clone())
        .str("vertex", &s.vertex)
        .str("name", &s.name)
        .opt("total", s.total)
        .set("current", s.current)
        .set("timestamp", time_or_zero(s.timestamp))
        .opt("started", s.started.map(rfc3339))
        .opt("completed", s.completed.map(rfc3339))
        .done()
}

fn log(l: &LogChunk) -> Json {
    let stream = l.stream.number();
    Obj::default()
        .str("vertex", &l.vertex)
        .opt("stream", (stream != 0).then_some(stream))
        .set("data", STANDARD.encode(&l.data))
        .set("timestamp", time_or_zero(l.timestamp))
        .done()
}

fn warning(w: &Warning) -> Json {
    let b64 = |s: &str| (!s.is_empty()).then(|| STANDARD.encode(s));
    let detail: Vec<String> = w.detail.iter().map(|d| STANDARD.encode(d)).collect();
    let source = w.source.as_ref().map(|s| {
        Obj::default()
            .str("filename", &s.filename)
            .opt(
                "data",
                (!s.data.is_empty()).then(|| STANDARD.encode(&s.data)),
            )
            .opt("language", s.language.clone())
            .done()
    });
    let ranges: Vec<Json> = w.ranges.iter().map(range).collect();
    Obj::default()
        .str("vertex", &w.vertex)
        .opt("level", (w.level != 0).then_some(w.level))
        .opt("short", b64(&w.short))
        .opt("detail", (!detail.is_empty()).then_some(detail))
        .opt("url", w.url.clone())
        .opt("sourceInfo", source)
        .opt("range", (!ranges.is_empty()).then_some(ranges))
        .done()
}

fn range(r: &SourceRange) -> Json {
    let pos = |p: crate::progress::status::Position| {
        Obj::default()
            .opt("line", (p.line != 0).then_some(p.line))
            .opt("character", (p.character != 0).then_some(p.character))
            .done()
    };
    Obj::default()
        .set("start", pos(r.start))
        .set("end", pos(r.end))
        .done()
}

fn time_or_zero(t: Option<SystemTime>) -> String {
    t.map_or_else(|| GO_ZERO_TIME.to_string(), rfc3339)
}

/// Go's `time.RFC3339Nano` in UTC: trailing zeros of the fraction dropped.
fn rfc3339(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let day = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        day / 3600,
        day % 3600 / 60,
        day % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`), valid for negative days too.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn times_match_go() {
        let t = |s: i64, n: u32| match u64::try_from(s) {
            Ok(s) => UNIX_EPOCH + Duration::new(s, n),
            Err(_) => UNIX_EPOCH - Duration::from_secs(s.unsigned_abs()) + Duration::new(0, n),
        };
        assert_eq!(rfc3339(t(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(t(1_700_000_000, 120_000_000)),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(rfc3339(t(951_782_400, 1)), "2000-02-29T00:00:00.000000001Z");
        assert_eq!(rfc3339(t(-1, 500_000_000)), "1969-12-31T23:59:59.5Z");
        assert_eq!(rfc3339(t(-62_135_596_800, 0)), GO_ZERO_TIME);
    }
}
