//! A failed Solve as a typed error: BuildKit attaches the failed vertex and
//! its Dockerfile range to the gRPC status (util/grpcerrors: each typed
//! error's proto goes into the status details as an Any), so the failing
//! step is data rather than text to re-parse.

use prost::Message;

use crate::cache::CacheFailure;
use crate::daemon::status_message;
use crate::outcome::{BuildError, SourceLocation, StepFailure};
use crate::progress::Summary;
use crate::progress::state::State;
use crate::proto::errdefs;
use crate::proto::google::rpc;
use crate::request::BuildPlan;

/// What the status details say about the failure.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Details {
    /// The failed vertex's digest.
    pub vertex: Option<String>,
    /// The first source range the frontend attached.
    pub location: Option<SourceLocation>,
}

impl Details {
    /// Reads `grpc-status-details-bin`; anything undecodable is ignored
    /// (the message still says what happened).
    pub(crate) fn decode(raw: &[u8]) -> Details {
        let mut details = Details::default();
        let Ok(status) = rpc::Status::decode(raw) else {
            return details;
        };
        for any in status.details {
            // "type.googleapis.com/errdefs.Vertex" (protobuf), or
            // "github.com/moby/buildkit/errdefs.Vertex+json": BuildKit
            // releases built on gogo (the engine's 0.13) register their
            // types with typeurl, which encodes them as Go JSON.
            let name = any.type_url.rsplit('/').next().unwrap_or_default();
            if let Some(name) = name.strip_suffix("+json") {
                details.read_json(name, &any.value);
                continue;
            }
            match name {
                "errdefs.Vertex" if details.vertex.is_none() => {
                    if let Ok(v) = errdefs::Vertex::decode(any.value.as_slice())
                        && !v.digest.is_empty()
                    {
                        details.vertex = Some(v.digest);
                    }
                }
                "errdefs.Source" if details.location.is_none() => {
                    if let Ok(s) = errdefs::Source::decode(any.value.as_slice()) {
                        details.location = location(&s);
                    }
                }
                _ => {}
            }
        }
        details
    }
}

impl Details {
    fn read_json(&mut self, name: &str, value: &[u8]) {
        let Ok(json) = serde_json::from_slice::<serde_json::Value>(value) else {
            return;
        };
        match name {
            "errdefs.Vertex" if self.vertex.is_none() => {
                self.vertex = json["digest"]
                    .as_str()
                    .filter(|d| !d.is_empty())
                    .map(str::to_string);
            }
            "errdefs.Source" if self.location.is_none() => {
                let line = |p: &serde_json::Value| {
                    p["line"]
                        .as_u64()
                        .and_then(|l| u32::try_from(l).ok())
                        .unwrap_or(0)
                };
                let range = &json["ranges"][0];
                let start = line(&range["start"]);
                if start > 0 {
                    self.location = Some(SourceLocation {
                        file: json["info"]["filename"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        line: start,
                        end_line: line(&range["end"]).max(start),
                    });
                }
            }
            _ => {}
        }
    }
}

fn location(source: &errdefs::Source) -> Option<SourceLocation> {
    let range = source.ranges.first()?;
    let line = |p: &Option<crate::proto::pb::Position>| {
        p.as_ref()
            .map_or(0, |p| u32::try_from(p.line).unwrap_or_default())
    };
    let start = line(&range.start);
    if start == 0 {
        return None;
    }
    Some(SourceLocation {
        file: source
            .info
            .as_ref()
            .map(|i| i.filename.clone())
            .unwrap_or_default(),
        line: start,
        end_line: line(&range.end).max(start),
    })
}

/// The backend named by BuildKit's answer to a cache type it does not
/// have (control.go: `unknown cache exporter: "s3"`; the solver bridge:
/// `unknown cache importer: s3`), wherever it sits in a longer message.
pub(crate) fn missing_cache_backend(message: &str) -> Option<&str> {
    ["unknown cache exporter: ", "unknown cache importer: "]
        .iter()
        .find_map(|p| message.split_once(p).map(|(_, rest)| rest))
        .and_then(|rest| rest.split([' ', ':', ',']).next())
        .map(|name| name.trim_matches('"'))
        .filter(|name| !name.is_empty())
}

/// The image and the cause of a failed push (BuildKit's image exporter:
/// `failed to push NAME: CAUSE`), wherever it sits in a longer message.
pub(crate) fn push_failure(message: &str) -> Option<(&str, &str)> {
    const PUSH: &str = "failed to push ";
    let at = message.find(PUSH)?;
    if at > 0 && !message[..at].ends_with(": ") {
        return None;
    }
    let (image, cause) = message[at + PUSH.len()..].split_once(": ")?;
    (!image.is_empty() && !image.contains(' ')).then_some((image, cause))
}

/// The typed error for a Solve the daemon failed; `cache` holds the cache
/// imports and exports that failed.
pub(super) fn from_status(
    plan: &BuildPlan,
    status: &tonic::Status,
    summary: &Summary,
    state: &State,
    cache: &[(usize, CacheFailure)],
) -> BuildError {
    let mut message = plan.scrubber.text(&status_message(status)).into_owned();
    let details = Details::decode(status.details());
    tracing::debug!(?details, "solve failure details");
    // Exporters fail outside any Dockerfile line; a RUN step's message
    // quotes its command and is left alone.
    if details.location.is_none() {
        if let Some(failed) = super::cache_steps::failed_export(cache, &message) {
            return BuildError::CacheExport {
                target: failed.entry.target(),
                message: failed.error.clone(),
            };
        }
        if let Some((image, cause)) = push_failure(&message) {
            return BuildError::Push {
                image: image.to_string(),
                message: cause.to_string(),
            };
        }
    }
    let vertex = match &details.vertex {
        Some(digest) => state.vertex_report(digest),
        None => summary.failed_vertex.clone(),
    };
    // A pull or push refused for want of a login is explained here: the
    // daemon's message only says "unauthorized".
    for host in plan.auth_scope.withheld() {
        message.push_str(&format!(
            " ({})",
            crate::credentials::withheld_message(&host)
        ));
    }
    let mut location = details.location;
    // Line numbers are the rewritten Dockerfile's when the freshness
    // policy moved lines: point them back at the user's file.
    if let Some(r) = &plan.rewritten {
        message = r.map_message(&message);
        if let Some(l) = &mut location {
            l.line = map_line(r, l.line);
            l.end_line = map_line(r, l.end_line);
        }
    }
    if vertex.is_none() && location.is_none() {
        // Only outside a step: a failed RUN's message quotes its command.
        if let Some(backend) = missing_cache_backend(&message) {
            return BuildError::MissingCacheBackend {
                backend: backend.to_string(),
            };
        }
        if message.starts_with("unknown entitlement device") {
            // Device entitlements came with BuildKit v0.20.
            message.push_str(
                " (this daemon predates device entitlements: they need BuildKit v0.20 or later)",
            );
        }
        return BuildError::Daemon { message };
    }
    let (step, mut logs) = match vertex {
        Some(v) => (Some(v.name), v.logs),
        None => (None, Vec::new()),
    };
    logs.iter_mut().for_each(|l| plan.scrubber.string(l));
    BuildError::Step(Box::new(StepFailure {
        step,
        location,
        logs,
        message,
    }))
}

fn map_line(r: &crate::dockerfile::Rewritten, line: u32) -> u32 {
    u32::try_from(r.map_line(line as usize)).unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any(name: &str, value: Vec<u8>) -> prost_types::Any {
        prost_types::Any {
            type_url: format!("type.googleapis.com/{name}"),
            value,
        }
    }

    #[test]
    fn vertex_and_source_are_read_from_the_details() {
        let source = errdefs::Source {
            info: Some(crate::proto::pb::SourceInfo {
                filename: "Dockerfile".into(),
                ..Default::default()
            }),
            ranges: vec![crate::proto::pb::Range {
                start: Some(crate::proto::pb::Position {
                    line: 3,
                    character: 0,
                }),
                end: Some(crate::proto::pb::Position {
                    line: 4,
                    character: 0,
                }),
            }],
        };
        let status = rpc::Status {
            code: 2,
            message: "exit code: 1".into(),
            details: vec![
                any(
                    "errdefs.Vertex",
                    errdefs::Vertex {
                        digest: "sha256:v".into(),
                    }
                    .encode_to_vec(),
                ),
                any("errdefs.Source", source.encode_to_vec()),
                any("other.Thing", vec![1, 2, 3]),
            ],
        };
        let d = Details::decode(&status.encode_to_vec());
        // The engine's BuildKit 0.13 sends the same as Go JSON.
        let json = rpc::Status {
            details: vec![
                prost_types::Any {
                    type_url: "github.com/moby/buildkit/errdefs.Vertex+json".into(),
                    value: br#"{"digest":"sha256:v"}"#.to_vec(),
                },
                prost_types::Any {
                    type_url: "github.com/moby/buildkit/errdefs.Source+json".into(),
                    value: br#"{"info":{"filename":"Dockerfile"},"ranges":[{"start":{"line":3},"end":{"line":4}}]}"#.to_vec(),
                },
            ],
            ..Default::default()
        };
        assert_eq!(Details::decode(&json.encode_to_vec()), d);
        assert_eq!(d.vertex.as_deref(), Some("sha256:v"));
        assert_eq!(
            d.location,
            Some(SourceLocation {
                file: "Dockerfile".into(),
                line: 3,
                end_line: 4
            })
        );
        assert_eq!(Details::decode(b"\xff\xff garbage"), Details::default());
    }

    #[test]
    fn a_failed_push_names_the_image_and_what_to_check() {
        let refused = "failed to push 127.0.0.1:46051/app:1: failed to do request: Head \
                       \"https://127.0.0.1:46051/v2/app/blobs/sha256:3\": dial tcp: connect: \
                       connection refused";
        let (image, cause) = push_failure(refused).unwrap();
        assert_eq!(image, "127.0.0.1:46051/app:1");
        assert!(cause.ends_with("connection refused"));
        let e = BuildError::Push {
            image: image.into(),
            message: cause.into(),
        };
        assert!(
            e.to_string()
                .starts_with("pushing 127.0.0.1:46051/app:1 failed: failed to do")
                && e.to_string().ends_with(
                    "(check that the registry 127.0.0.1:46051 is up and reachable from the daemon)"
                ),
            "{e}"
        );
        let denied = BuildError::Push {
            image: "org/app:1".into(),
            message: "unexpected status: 401 Unauthorized".into(),
        };
        assert!(
            denied
                .to_string()
                .ends_with("(check the credentials for docker.io and that they may push there)"),
            "{denied}"
        );
        assert_eq!(
            push_failure("failed to solve: failed to push r/a:1: EOF"),
            Some(("r/a:1", "EOF"))
        );
        assert_eq!(push_failure("git: failed to push some refs"), None);
        assert_eq!(push_failure("exit code: 1"), None);
    }

    #[test]
    fn a_missing_cache_backend_is_named_with_the_daemons_that_have_it() {
        // Docker Engine 26's BuildKit, for --cache-to and --cache-from.
        let cases = [
            ("unknown cache exporter: \"s3\"", Some("s3")),
            ("unknown cache exporter: \"azblob\"", Some("azblob")),
            ("unknown cache importer: s3", Some("s3")),
            (
                "failed to solve: unknown cache importer: azblob: x",
                Some("azblob"),
            ),
            ("unknown cache exporter: ", None),
            ("exit code: 1", None),
        ];
        for (message, want) in cases {
            assert_eq!(missing_cache_backend(message), want, "{message}");
        }
        let e = BuildError::MissingCacheBackend {
            backend: "s3".into(),
        };
        assert_eq!(
            e.to_string(),
            "this daemon has no s3 cache backend: Docker Engine's built-in BuildKit lacks \
             s3 and azblob; a standalone buildkitd (v0.11 or later) has both"
        );
        assert!(!e.to_string().contains('\n'));
        let other = BuildError::MissingCacheBackend {
            backend: "nope".into(),
        };
        assert_eq!(other.to_string(), "this daemon has no nope cache backend");
    }
}
