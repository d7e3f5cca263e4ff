//! The hand-written gRPC service for `moby.filesync.v1.FileSend`, shaped like what
//! tonic-build generates for a bidi method, but with a raw codec: the `local` exporter sends
//! fsutil `Packet`s where the proto declares `BytesMessage` (Go's untyped `SendMsg` allows
//! it), so each call decodes its messages once it knows its target.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, StdError};
use tonic::server::{Grpc, NamedService, StreamingService};
use tonic::{Request, Response, Status, Streaming};

use super::{FileSendService, Outbound};
use crate::connect::MAX_MESSAGE_SIZE;

/// The one method's wire path.
pub(super) const DIFF_COPY_PATH: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// Passes message bodies through as they are, in both directions.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        // Splits the frame off tonic's buffer without copying.
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl NamedService for FileSendService {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl<B> tower::Service<http::Request<B>> for FileSendService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != DIFF_COPY_PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let method = DiffCopy(self.clone());
        Box::pin(async move {
            // Raised like the session server's other services: the 4 MiB default is below
            // what a newer daemon may send in one message.
            let mut grpc = Grpc::new(RawCodec)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE);
            Ok(grpc.streaming(method, req).await)
        })
    }
}

/// The bidi handler `Grpc::streaming` drives.
struct DiffCopy(FileSendService);

impl StreamingService<Bytes> for DiffCopy {
    type Response = Bytes;
    type ResponseStream = Outbound;
    type Future = BoxFuture<Response<Outbound>, Status>;

    fn call(&mut self, request: Request<Streaming<Bytes>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.diff_copy(request).await })
    }
}
