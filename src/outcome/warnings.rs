//! The frontend's warnings in buildx's metadata-file form
//! (`buildx.build.warnings`, written when `BUILDX_METADATA_WARNINGS` is
//! set): BuildKit's `client.VertexWarning` as Go's encoding/json writes it
//! — bytes as base64, zero fields left out (upstream client/graph.go;
//! buildx util/progress/printer.go de-duplicates them ignoring the vertex).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::BuildResult;
use crate::progress::status::{Position, SourceRange, Warning};

impl BuildResult {
    /// [`BuildResult::frontend_warnings`] as buildx writes them into the
    /// metadata file, each once (warnings that differ only in their vertex
    /// are one); `None` when there are none (buildx then writes no key).
    pub fn warnings_json(&self) -> Option<Value> {
        let mut seen: Vec<Warning> = Vec::new();
        let mut out = Vec::new();
        for w in &self.frontend_warnings {
            let key = Warning {
                vertex: String::new(),
                ..w.clone()
            };
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            out.push(vertex_warning(w));
        }
        (!out.is_empty()).then_some(Value::Array(out))
    }
}

fn b64(data: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(data))
}

fn vertex_warning(w: &Warning) -> Value {
    let mut m = Map::new();
    if !w.vertex.is_empty() {
        m.insert("vertex".into(), w.vertex.clone().into());
    }
    if w.level != 0 {
        m.insert("level".into(), w.level.into());
    }
    if !w.short.is_empty() {
        m.insert("short".into(), b64(w.short.as_bytes()));
    }
    if !w.detail.is_empty() {
        let detail = w.detail.iter().map(|d| b64(d.as_bytes())).collect();
        m.insert("detail".into(), Value::Array(detail));
    }
    if let Some(url) = w.url.as_deref().filter(|u| !u.is_empty()) {
        m.insert("url".into(), url.into());
    }
    if let Some(source) = &w.source {
        let mut s = Map::new();
        if !source.filename.is_empty() {
            s.insert("filename".into(), source.filename.clone().into());
        }
        if !source.data.is_empty() {
            s.insert("data".into(), b64(&source.data));
        }
        if let Some(language) = source.language.as_deref().filter(|l| !l.is_empty()) {
            s.insert("language".into(), language.into());
        }
        m.insert("sourceInfo".into(), Value::Object(s));
    }
    if !w.ranges.is_empty() {
        let ranges = w.ranges.iter().map(range).collect();
        m.insert("range".into(), Value::Array(ranges));
    }
    Value::Object(m)
}

fn range(r: &SourceRange) -> Value {
    json!({ "start": position(&r.start), "end": position(&r.end) })
}

fn position(p: &Position) -> Value {
    let mut m = Map::new();
    if p.line != 0 {
        m.insert("line".into(), p.line.into());
    }
    if p.character != 0 {
        m.insert("character".into(), p.character.into());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::progress::status::SourceInfo;

    #[test]
    fn warnings_take_buildx_metadata_form_once_each() {
        let w = Warning {
            vertex: "sha256:aa".into(),
            level: 1,
            short: "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)".into(),
            detail: vec!["The 'as' keyword should match the case of the 'from' keyword".into()],
            url: Some("https://docs.docker.com/go/dockerfile/rule/from-as-casing/".into()),
            source: Some(SourceInfo {
                filename: "Dockerfile".into(),
                language: Some("Dockerfile".into()),
                data: Bytes::from_static(b"FROM a as b\n"),
            }),
            ranges: vec![SourceRange {
                start: Position {
                    line: 1,
                    character: 0,
                },
                end: Position {
                    line: 1,
                    character: 0,
                },
            }],
        };
        let again = Warning {
            vertex: "sha256:bb".into(),
            ..w.clone()
        };
        let mut result = BuildResult {
            frontend_warnings: vec![w, again],
            ..BuildResult::default()
        };
        let json = result.warnings_json().unwrap();
        assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
        let one = &json[0];
        assert_eq!(one["vertex"], "sha256:aa");
        assert_eq!(one["level"], 1);
        assert_eq!(one["short"], b64(w_short().as_bytes()));
        assert_eq!(one["sourceInfo"]["data"], "RlJPTSBhIGFzIGIK");
        assert_eq!(one["range"][0]["start"], json!({"line": 1}));
        result.frontend_warnings.clear();
        assert_eq!(result.warnings_json(), None);
    }

    fn w_short() -> &'static str {
        "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)"
    }
}
