//! Running a command in a container with its stdio attached: what
//! `docker exec -i` does, over the engine API. `docker-container://`
//! addresses run `buildctl dial-stdio` this way.

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::Full;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::http::{JSON_BODY_LIMIT, parse_json, path_escape, read_limited, request, status_error};
use super::{Engine, EngineError};

#[derive(serde::Deserialize)]
struct Created {
    #[serde(rename = "Id")]
    id: String,
}

impl Engine {
    /// Creates an exec instance of `cmd` in `container`, with stdin, stdout
    /// and stderr attached and no TTY (so the output is multiplexed).
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read.
    pub async fn exec_create(&self, container: &str, cmd: &[&str]) -> Result<String, EngineError> {
        let what = format!("creating `{}` in container {container}", cmd.join(" "));
        let body = serde_json::json!({
            "AttachStdin": true,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": false,
            "Cmd": cmd,
        });
        let path = format!("/containers/{}/exec", path_escape(container));
        let mut req = request(
            Method::POST,
            &path,
            Full::new(Bytes::from(body.to_string())),
            &what,
        )?;
        req.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        let (status, body) = self
            .exchange(&what, req, |response| async {
                let status = response.status();
                let body = read_limited(response.into_body(), JSON_BODY_LIMIT, &what).await?;
                Ok((status, body))
            })
            .await?;
        if status != StatusCode::CREATED {
            return Err(status_error(&what, status, &body));
        }
        Ok(parse_json::<Created>(&what, &body)?.id)
    }

    /// Starts exec `id` and takes over the connection: what is written goes
    /// to the process's stdin; what is read is its stdout and stderr in the
    /// engine's multiplexed framing (see `connect::stdio`).
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read (anything but `101 Switching Protocols` is a status error).
    pub async fn exec_start_attached(&self, id: &str) -> Result<Upgraded, EngineError> {
        let what = "starting the exec session";
        let stream = UnixStream::connect(self.socket())
            .await
            .map_err(|source| self.unreachable(source))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.broken(what, e))?;
        // Polled in the background until the 101 hands the socket over.
        let driver = tokio::spawn(conn.with_upgrades());
        let path = format!("/exec/{}/start", path_escape(id));
        let body = Bytes::from_static(br#"{"Detach":false,"Tty":false}"#);
        let mut req = request(Method::POST, &path, Full::new(body), what)?;
        let headers = req.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("Upgrade"),
        );
        headers.insert(header::UPGRADE, header::HeaderValue::from_static("tcp"));
        let response = sender
            .send_request(req)
            .await
            .map_err(|e| self.broken(what, e))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let status = response.status();
            let body = read_limited(response.into_body(), 64 << 10, what).await?;
            driver.abort();
            return Err(status_error(what, status, &body));
        }
        hyper::upgrade::on(response)
            .await
            .map_err(|e| self.broken(what, e))
    }
}
