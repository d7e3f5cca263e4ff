//! Conversions of daemon status messages, checked field by field.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn ts(seconds: i64, nanos: i32) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos })
}

#[test]
fn vertex_fields_and_empty_error() {
    let resp = api::StatusResponse {
        vertexes: vec![api::Vertex {
            digest: "sha256:a".into(),
            inputs: vec!["sha256:b".into()],
            name: "[1/2] FROM x".into(),
            cached: true,
            started: ts(10, 500_000_000),
            completed: None,
            error: String::new(),
            progress_group: Some(pb::ProgressGroup {
                id: "g".into(),
                name: "group".into(),
                weak: true,
            }),
        }],
        ..Default::default()
    };
    let u = StatusUpdate::from_proto(&resp);
    let v = &u.vertices[0];
    assert_eq!(v.digest, "sha256:a");
    assert_eq!(v.inputs, ["sha256:b"]);
    assert!(v.cached);
    assert_eq!(v.started, Some(UNIX_EPOCH + Duration::from_millis(10_500)));
    assert_eq!(v.completed, None);
    assert_eq!(v.error, None);
    assert_eq!(v.progress_group.as_ref().map(|g| g.weak), Some(true));
}

#[test]
fn hostile_numbers_and_timestamps_do_not_panic() {
    let resp = api::StatusResponse {
        statuses: vec![api::VertexStatus {
            id: "x".into(),
            current: -5,
            total: -1,
            timestamp: ts(i64::MAX, 0),
            started: ts(-62_135_596_800, 0), // Go's zero time
            completed: ts(1, -1),
            ..Default::default()
        }],
        logs: vec![api::VertexLog {
            stream: 7,
            msg: Bytes::from_static(b"\xff\xfe"),
            ..Default::default()
        }],
        warnings: vec![api::VertexWarning {
            short: Bytes::from_static(b"bad \xff"),
            ranges: vec![pb::Range {
                start: Some(pb::Position {
                    line: -3,
                    character: 4,
                }),
                end: None,
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let u = StatusUpdate::from_proto(&resp);
    let s = &u.statuses[0];
    assert_eq!((s.current, s.total), (0, None));
    assert_eq!(s.timestamp, None);
    assert!(s.started.is_some());
    assert_eq!(
        s.completed,
        Some(UNIX_EPOCH + Duration::new(0, 999_999_999))
    );
    assert_eq!(u.logs[0].stream, Stream::Other(7));
    assert_eq!(u.logs[0].data.as_ref(), b"\xff\xfe");
    assert_eq!(u.warnings[0].short, "bad \u{fffd}");
    assert_eq!(u.warnings[0].ranges[0].start.line, 0);
    assert_eq!(u.warnings[0].ranges[0].start.character, 4);
    assert_eq!(u.warnings[0].ranges[0].end, Position::default());
}

#[test]
fn log_streams_and_status_totals() {
    let resp = api::StatusResponse {
        statuses: vec![api::VertexStatus {
            id: "sha256:l".into(),
            vertex: "v".into(),
            current: 1_000,
            total: 2_000,
            ..Default::default()
        }],
        logs: vec![
            api::VertexLog {
                vertex: "v".into(),
                stream: 1,
                msg: Bytes::from_static(b"out"),
                timestamp: ts(3, 0),
            },
            api::VertexLog {
                stream: 2,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let u = StatusUpdate::from_proto(&resp);
    assert_eq!(
        (u.statuses[0].current, u.statuses[0].total),
        (1_000, Some(2_000))
    );
    assert_eq!(u.logs[0].stream, Stream::Stdout);
    assert_eq!(u.logs[1].stream.number(), 2);
    assert_eq!(
        u.logs[0].timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(3))
    );
}

#[test]
fn warning_source_and_url() {
    let resp = api::StatusResponse {
        warnings: vec![api::VertexWarning {
            vertex: "v".into(),
            level: 1,
            short: Bytes::from_static(b"JSONArgsRecommended: use JSON (line 3)"),
            detail: vec![Bytes::from_static(b"why")],
            url: "https://example.invalid/rule".into(),
            info: Some(pb::SourceInfo {
                filename: "Dockerfile".into(),
                data: Bytes::from_static(b"FROM x\n"),
                definition: None,
                language: "Dockerfile".into(),
            }),
            ranges: vec![],
        }],
        ..Default::default()
    };
    let w = &StatusUpdate::from_proto(&resp).warnings[0];
    assert_eq!(w.detail, ["why"]);
    assert_eq!(w.url.as_deref(), Some("https://example.invalid/rule"));
    let src = w.source.as_ref().expect("source info was sent");
    assert_eq!(src.filename, "Dockerfile");
    assert_eq!(src.language.as_deref(), Some("Dockerfile"));
}

#[test]
fn canceled_suffix() {
    assert!(is_canceled("failed to x: context canceled"));
    assert!(!is_canceled("exit code: 1"));
}
