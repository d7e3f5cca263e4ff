//! One HTTP/1.1 request and response on a connection opened for it, as the
//! Docker Engine client (`engine::http`, unix socket) makes them: no pool,
//! no idle keep-alive to go stale, and no spawned task to outlive a call.
//! (The registry client pools instead, for its TLS handshakes: see
//! `registry::transport`.)

use std::future::Future;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Sends `request` on `io` and hands the response to `read`, while the
/// connection is driven in this same future. Dropping the future (a timeout,
/// or `read` returning before the body ends) drops the connection, which is
/// how a large answer is abandoned.
///
/// hyper's failures (handshake, sending, the answer cut short) become the
/// caller's own error through `broken`; `peer` (`"engine"`)
/// only labels the debug log.
pub(crate) async fn exchange<S, B, T, E, Fut>(
    peer: &'static str,
    io: S,
    request: Request<B>,
    broken: impl Fn(hyper::Error) -> E,
    read: impl FnOnce(Response<Incoming>) -> Fut,
) -> Result<T, E>
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: Body + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    Fut: Future<Output = Result<T, E>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(&broken)?;
    let work = async {
        let response = sender.send_request(request).await.map_err(&broken)?;
        tracing::debug!(status = %response.status(), "{peer} response");
        read(response).await
    };
    tokio::pin!(conn);
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => out,
        driven = &mut conn => {
            // The connection ended first (the peer closed it, or it broke).
            // Whatever it delivered is still readable, and an answer cut
            // short fails in `work` with hyper's reason, so finish that.
            if let Err(e) = driven {
                tracing::debug!(error = %e, "{peer} connection ended");
            }
            work.await
        }
    }
}
