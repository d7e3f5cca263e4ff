//! Builders for synthetic `StatusResponse`s in tests. Times are seconds after a
//! fixed base, so durations in rendered output are deterministic.

use bytes::Bytes;

use crate::proto::moby::buildkit::v1::{
    StatusResponse, Vertex, VertexLog, VertexStatus, VertexWarning,
};
use crate::proto::pb;

const BASE: i64 = 1_700_000_000;

pub(crate) fn ts(secs: f64) -> Option<prost_types::Timestamp> {
    let millis = (secs * 1000.0).round() as i64;
    Some(prost_types::Timestamp {
        seconds: BASE + millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub(crate) fn resp() -> Resp {
    Resp(StatusResponse::default())
}

pub(crate) struct Resp(StatusResponse);

impl Resp {
    pub fn vertex(mut self, v: Vtx) -> Self {
        self.0.vertexes.push(v.0);
        self
    }
    pub fn status(mut self, s: St) -> Self {
        self.0.statuses.push(s.0);
        self
    }
    pub fn log(mut self, vertex: &str, at: f64, data: &str) -> Self {
        self.0.logs.push(VertexLog {
            vertex: vertex.into(),
            timestamp: ts(at),
            stream: 1,
            msg: Bytes::copy_from_slice(data.as_bytes()),
        });
        self
    }
    pub fn warning(mut self, w: VertexWarning) -> Self {
        self.0.warnings.push(w);
        self
    }
    pub fn build(self) -> StatusResponse {
        self.0
    }
}

pub(crate) fn vtx(digest: &str, name: &str) -> Vtx {
    Vtx(Vertex {
        digest: digest.into(),
        name: name.into(),
        ..Default::default()
    })
}

#[derive(Clone)]
pub(crate) struct Vtx(Vertex);

impl Vtx {
    pub fn started(mut self, at: f64) -> Self {
        self.0.started = ts(at);
        self
    }
    pub fn completed(mut self, at: f64) -> Self {
        self.0.completed = ts(at);
        self
    }
    pub fn cached(mut self) -> Self {
        self.0.cached = true;
        self
    }
    pub fn error(mut self, e: &str) -> Self {
        self.0.error = e.into();
        self
    }
    pub fn group(mut self, id: &str, name: &str, weak: bool) -> Self {
        self.0.progress_group = Some(pb::ProgressGroup {
            id: id.into(),
            name: name.into(),
            weak,
        });
        self
    }
}

pub(crate) fn st(vertex: &str, id: &str) -> St {
    St(VertexStatus {
        id: id.into(),
        vertex: vertex.into(),
        ..Default::default()
    })
}

pub(crate) struct St(VertexStatus);

impl St {
    pub fn progress(mut self, current: i64, total: i64, at: f64) -> Self {
        self.0.current = current;
        self.0.total = total;
        self.0.timestamp = ts(at);
        self
    }
    pub fn started(mut self, at: f64) -> Self {
        self.0.started = ts(at);
        self
    }
    pub fn completed(mut self, at: f64) -> Self {
        self.0.completed = ts(at);
        self
    }
}

pub(crate) fn warn(vertex: &str, short: &str) -> VertexWarning {
    VertexWarning {
        vertex: vertex.into(),
        level: 1,
        short: Bytes::copy_from_slice(short.as_bytes()),
        ..Default::default()
    }
}

/// A `Write` whose bytes the test can read after the renderer took it.
#[derive(Clone, Default)]
pub(crate) struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Sink {
    pub fn text(&self) -> String {
        let buf = self.0.lock().expect("test sink lock");
        String::from_utf8_lossy(&buf).into_owned()
    }
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("test sink lock")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
