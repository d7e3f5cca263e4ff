//! BuildKit's gateway API, as a client drives it: the LLB bridge
//! (`moby.buildkit.v1.frontend.LLBBridge`) on the daemon's own connection.
//!
//! A `Control.Solve` with no definition and no frontend registers a build
//! with the daemon's gateway forwarder and waits; the client then runs the
//! frontend itself through the bridge — [`Bridge::solve`] with its options
//! and inputs, [`Bridge::evaluate`] or [`Bridge::read_file`] on a result
//! — and hands one result back with [`Bridge::give_back`], which the
//! Control.Solve then exports. Every bridge call names the build by its ref
//! in the gRPC metadata `buildkit-controlapi-buildid` (upstream:
//! client/build.go, frontend/gateway/grpcclient/client.go).
//!
//! This module knows the wire only; when a build takes this path and what
//! it does between the calls is `solve`'s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

use crate::connect::MAX_MESSAGE_SIZE;
use crate::daemon::Daemon;
use crate::proto::google::rpc;
use crate::proto::moby::buildkit::v1::frontend::llb_bridge_client::LlbBridgeClient;
use crate::proto::moby::buildkit::v1::frontend::{
    EvaluateRequest, FileRange, PingRequest, ReadFileRequest, ReturnRequest, SolveRequest, result,
};

mod subrequest;

pub(crate) use subrequest::unsupported_subrequest;

/// The gRPC metadata key naming the build a bridge call belongs to
/// (upstream client/buildid/metadata.go).
const BUILD_ID_KEY: &str = "buildkit-controlapi-buildid";

/// How long a bridge call may wait for the daemon to register the build:
/// the Control.Solve that registers it is sent first, but the two race.
/// The daemon itself waits 3 s for a registration before "no such job".
const REGISTRATION: Duration = Duration::from_secs(15);

/// How much of a file one ReadFile call asks for.
const READ_CHUNK: usize = 4 << 20;

/// The bridge of one gateway build.
#[derive(Clone, Debug)]
pub(crate) struct Bridge {
    client: LlbBridgeClient<Channel>,
    build_ref: AsciiMetadataValue,
}

/// One frontend solve through the bridge.
#[derive(Clone, Debug, Default)]
pub(crate) struct FrontendRequest {
    /// `dockerfile.v0`, or `gateway.v0` with a `source` option.
    pub frontend: String,
    /// The frontend's options: the same map a direct Solve sends as its
    /// frontend attributes.
    pub opts: BTreeMap<String, String>,
    /// Named inputs (`context:NAME=input:KEY`), each an LLB definition as
    /// the daemon encoded it.
    pub inputs: BTreeMap<String, Bytes>,
}

/// A reference to a result inside the build that solved it, and the
/// definition that produces it anywhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ref {
    /// Valid only within this gateway build; empty for an empty result.
    pub id: String,
    /// The `pb.Definition`, verbatim.
    pub def: Bytes,
}

/// The refs of a frontend's result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Refs {
    /// None: a subrequest answers in metadata only.
    #[default]
    None,
    /// A single-platform build.
    Single(Ref),
    /// A multi-platform build, by platform (`linux/arm64`).
    Platforms(BTreeMap<String, Ref>),
}

/// What a frontend solve returned.
#[derive(Clone, Debug, Default)]
pub(crate) struct FrontendResult {
    /// The encoded result, returned to the daemon as it came.
    pub raw: Bytes,
    pub refs: Refs,
    /// `containerimage.config`, `result.json`, ...
    pub metadata: BTreeMap<String, Bytes>,
}

impl FrontendResult {
    fn decode(raw: Bytes) -> Result<FrontendResult, tonic::Status> {
        let result = crate::proto::moby::buildkit::v1::frontend::Result::decode(raw.clone())
            .map_err(|e| tonic::Status::internal(format!("undecodable gateway result: {e}")))?;
        let one = |r: crate::proto::moby::buildkit::v1::frontend::Ref| Ref {
            id: r.id,
            def: r.def,
        };
        let refs = match result.result {
            None => Refs::None,
            Some(result::Result::Ref(r)) => Refs::Single(one(r)),
            Some(result::Result::Refs(map)) => Refs::Platforms(
                map.refs
                    .into_iter()
                    .map(|(platform, r)| (platform, one(r)))
                    .collect(),
            ),
        };
        Ok(FrontendResult {
            raw,
            refs,
            metadata: result.metadata.into_iter().collect(),
        })
    }

    /// The ids of every ref, for evaluating them.
    pub(crate) fn ref_ids(&self) -> Vec<&str> {
        match &self.refs {
            Refs::None => Vec::new(),
            Refs::Single(r) => vec![r.id.as_str()],
            Refs::Platforms(map) => map.values().map(|r| r.id.as_str()).collect(),
        }
        .into_iter()
        .filter(|id| !id.is_empty())
        .collect()
    }
}

impl Bridge {
    /// The bridge for build `build_ref` on `daemon`'s connection.
    pub(crate) fn new(daemon: &Daemon, build_ref: &str) -> Result<Bridge, tonic::Status> {
        let build_ref = build_ref
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("build ref is not ASCII"))?;
        Ok(Bridge {
            client: LlbBridgeClient::new(daemon.channel())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            build_ref,
        })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert(BUILD_ID_KEY, self.build_ref.clone());
        request
    }

    /// The first call: waits for the daemon to register the build. (The
    /// capabilities it answers with are not needed: every call here exists
    /// since BuildKit 0.13.)
    pub(crate) async fn ping(&self) -> Result<(), tonic::Status> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(20);
        loop {
            match self.client.clone().ping(self.request(PingRequest {})).await {
                Ok(_) => return Ok(()),
                Err(status) if not_registered(&status) && started.elapsed() < REGISTRATION => {
                    tracing::debug!(error = %status.message(), "gateway build not registered yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
                Err(status) => return Err(status),
            }
        }
    }

    /// Runs a frontend; its refs are built lazily, when evaluated or
    /// exported.
    pub(crate) async fn solve(
        &self,
        request: &FrontendRequest,
    ) -> Result<FrontendResult, tonic::Status> {
        let message = SolveRequest {
            frontend: request.frontend.clone(),
            frontend_opt: request.opts.clone().into_iter().collect(),
            allow_result_return: true,
            allow_result_array_ref: true,
            frontend_inputs: request.inputs.clone().into_iter().collect(),
            evaluate: false,
        };
        let response = self
            .client
            .clone()
            .solve(self.request(message))
            .await?
            .into_inner();
        FrontendResult::decode(response.result)
    }

    /// Builds ref `id` now.
    pub(crate) async fn evaluate(&self, id: &str) -> Result<(), tonic::Status> {
        self.client
            .clone()
            .evaluate(self.request(EvaluateRequest { r#ref: id.into() }))
            .await?;
        Ok(())
    }

    /// Reads file `path` of ref `id` (building it first), in chunks of
    /// [`READ_CHUNK`] (a message's limit is 16 MiB), up to `limit` bytes;
    /// `Ok(None)` when the file is larger.
    pub(crate) async fn read_file(
        &self,
        id: &str,
        path: &str,
        limit: u64,
    ) -> Result<Option<Bytes>, tonic::Status> {
        let mut data = bytes::BytesMut::new();
        loop {
            let offset = data.len() as u64;
            if offset > limit {
                return Ok(None);
            }
            let chunk = self
                .client
                .clone()
                .read_file(self.request(ReadFileRequest {
                    r#ref: id.into(),
                    file_path: path.into(),
                    range: Some(FileRange {
                        offset: i64::try_from(offset).unwrap_or(i64::MAX),
                        length: READ_CHUNK as i64,
                    }),
                }))
                .await?
                .into_inner()
                .data;
            let short = chunk.len() < READ_CHUNK;
            data.extend_from_slice(&chunk);
            if short {
                return Ok((data.len() as u64 <= limit).then(|| data.freeze()));
            }
        }
    }

    /// Hands `result` back for the build's exporters: the Control.Solve
    /// then exports it and returns.
    pub(crate) async fn give_back(&self, result: &FrontendResult) -> Result<(), tonic::Status> {
        self.client
            .clone()
            .r#return(self.request(ReturnRequest {
                result: Some(result.raw.clone()),
                error: None,
            }))
            .await?;
        Ok(())
    }

    /// Ends the build with `status` as its error (details included): the
    /// Control.Solve then fails with it.
    pub(crate) async fn fail(&self, status: &tonic::Status) -> Result<(), tonic::Status> {
        // The details trailer is an encoded google.rpc.Status already.
        let details = rpc::Status::decode(status.details())
            .map(|s| s.details)
            .unwrap_or_default();
        let error = rpc::Status {
            code: status.code() as i32,
            message: status.message().to_string(),
            details,
        };
        self.client
            .clone()
            .r#return(self.request(ReturnRequest {
                result: None,
                error: Some(error),
            }))
            .await?;
        Ok(())
    }
}

/// The daemon does not know the build yet (upstream solver/errdefs/jobs.go;
/// v0.13 says "no such job" too, or "no buildid found" without metadata).
fn not_registered(status: &tonic::Status) -> bool {
    status.message().contains("no such job")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::moby::buildkit::v1::frontend as pb;

    #[test]
    fn a_result_is_read_and_kept_byte_for_byte() {
        let def = Bytes::from_static(b"\x0a\x03abc\x12\x05extra");
        let mut refs = std::collections::HashMap::new();
        refs.insert(
            "linux/arm64".to_string(),
            pb::Ref {
                id: "r1".into(),
                def: def.clone(),
            },
        );
        let encoded = pb::Result {
            result: Some(result::Result::Refs(pb::RefMap { refs })),
            metadata: [("refs.platforms".to_string(), Bytes::from_static(b"{}"))]
                .into_iter()
                .collect(),
        }
        .encode_to_vec();
        // A field this proto does not declare (attestations, 12) stays in the raw bytes.
        let mut raw = encoded.clone();
        raw.extend_from_slice(b"\x62\x00");
        let result = FrontendResult::decode(Bytes::from(raw.clone())).unwrap();
        assert_eq!(result.raw, raw);
        let Refs::Platforms(map) = &result.refs else {
            panic!("{:?}", result.refs)
        };
        assert_eq!(map["linux/arm64"].def, def);
        assert_eq!(result.ref_ids(), ["r1"]);
        assert!(result.metadata.contains_key("refs.platforms"));
    }
}
