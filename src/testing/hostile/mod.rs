//! A hostile daemon: a fake `Control` server that attaches to a real [`Session`] over the
//! real tunnel and then calls the session's services the way a compromised shared builder
//! could: paths outside the context, excluded files, writes outside an export's
//! destination, endless streams, oversized messages, credentials for hosts the build does
//! not use. A real BuildKit never does these, which is why a fake is the right tool here;
//! everything on the client's side is the production code.
//!
//! [`FakeDaemon::attach`] starts a session and returns the daemon's end: an HTTP/2 client
//! [`Channel`] to the session's services.

mod auth;
mod filesend;
mod filesync;
mod limits;

use std::pin::Pin;

use futures::Stream;
use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

use crate::proto::moby::buildkit::v1::control_client::ControlClient;
use crate::proto::moby::buildkit::v1::control_server::{Control, ControlServer};
use crate::proto::moby::buildkit::v1::*;
use crate::session::tunnel::TunnelIo;
use crate::session::{Session, SessionConfig};

/// The daemon's end of one attached session.
pub(crate) struct Attached {
    /// HTTP/2 to the session's services, through the tunnel.
    pub channel: Channel,
    /// The methods the session header announced.
    pub methods: Vec<String>,
}

/// A fake daemon on an in-memory connection.
pub(crate) struct FakeDaemon {
    control: ControlClient<Channel>,
    attached: mpsc::Receiver<Attached>,
}

impl FakeDaemon {
    pub async fn start() -> FakeDaemon {
        let (tx, attached) = mpsc::channel(4);
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let incoming = tokio_stream::once(Ok::<_, std::io::Error>(server_io));
            let server = Server::builder().add_service(ControlServer::new(Fake { attached: tx }));
            let _ = server.serve_with_incoming(incoming).await;
        });
        FakeDaemon {
            control: ControlClient::new(in_memory(client_io, "http://daemon.test").await),
            attached,
        }
    }

    /// Starts a session serving `config` and waits until this daemon is attached to it.
    pub async fn attach(&mut self, config: SessionConfig) -> (Session, Attached) {
        let session = Session::start(self.control.clone(), config)
            .await
            .expect("the session starts");
        let attached = self.attached.recv().await.expect("the daemon attached");
        (session, attached)
    }
}

/// A tonic channel over one in-memory connection.
async fn in_memory(io: tokio::io::DuplexStream, uri: &'static str) -> Channel {
    let mut io = Some(io);
    let connector = tower::service_fn(move |_: http::Uri| {
        let io = io.take().map(hyper_util::rt::TokioIo::new);
        async move { io.ok_or_else(|| std::io::Error::other("one connection only")) }
    });
    Endpoint::from_static(uri)
        .connect_with_connector(connector)
        .await
        .expect("in-memory connection")
}

struct Fake {
    attached: mpsc::Sender<Attached>,
}

type Boxed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn refused<T>() -> Result<T, Status> {
    Err(Status::unimplemented(
        "the fake daemon only attaches sessions",
    ))
}

#[tonic::async_trait]
impl Control for Fake {
    async fn disk_usage(
        &self,
        _: Request<DiskUsageRequest>,
    ) -> Result<Response<DiskUsageResponse>, Status> {
        refused()
    }

    type PruneStream = Boxed<UsageRecord>;
    async fn prune(&self, _: Request<PruneRequest>) -> Result<Response<Self::PruneStream>, Status> {
        refused()
    }

    async fn solve(&self, _: Request<SolveRequest>) -> Result<Response<SolveResponse>, Status> {
        refused()
    }

    type StatusStream = Boxed<StatusResponse>;
    async fn status(
        &self,
        _: Request<StatusRequest>,
    ) -> Result<Response<Self::StatusStream>, Status> {
        refused()
    }

    type SessionStream = Boxed<BytesMessage>;
    /// Plays the daemon's side of `Control.Session`: the request stream carries what the
    /// session's server writes, the response stream what the daemon's HTTP/2 client writes.
    async fn session(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let methods = request
            .metadata()
            .get_all("x-docker-expose-session-grpc-method")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let (out_tx, out_rx) = mpsc::channel(64);
        // The session's first bytes are its answer to our preface; nothing waits on them.
        let (first_tx, _first_rx) = oneshot::channel();
        let io = TunnelIo::new(request.into_inner(), out_tx, first_tx);
        let attached = self.attached.clone();
        tokio::spawn(async move {
            let mut io = Some(io);
            let connector = tower::service_fn(move |_: http::Uri| {
                let io = io.take().map(hyper_util::rt::TokioIo::new);
                async move { io.ok_or_else(|| std::io::Error::other("one tunnel only")) }
            });
            let channel = Endpoint::from_static("http://session.test")
                .connect_with_connector(connector)
                .await
                .expect("HTTP/2 through the tunnel");
            let _ = attached.send(Attached { channel, methods }).await;
        });
        let out = futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(out_rx), Ok);
        Ok(Response::new(Box::pin(out)))
    }

    async fn list_workers(
        &self,
        _: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        refused()
    }

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        refused()
    }

    type ListenBuildHistoryStream = Boxed<BuildHistoryEvent>;
    async fn listen_build_history(
        &self,
        _: Request<BuildHistoryRequest>,
    ) -> Result<Response<Self::ListenBuildHistoryStream>, Status> {
        refused()
    }
}

#[tokio::test]
async fn attaches_through_the_real_tunnel() {
    let mut daemon = FakeDaemon::start().await;
    let (session, attached) = daemon.attach(SessionConfig::default()).await;
    assert!(
        attached
            .methods
            .iter()
            .any(|m| m == "/moby.filesync.v1.Auth/Credentials"),
        "{:?}",
        attached.methods
    );
    let mut health = tonic_health::pb::health_client::HealthClient::new(attached.channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers");
    assert_eq!(reply.into_inner().status, 1, "SERVING");
    session.close().await;
}
