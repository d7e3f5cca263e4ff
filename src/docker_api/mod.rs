//! A small Docker Engine API client: the image operations `--load` needs.
//!
//! BuildKit's `docker` exporter hands the client an image tarball; putting it
//! into the engine, tagging it, and noticing that the engine already holds it
//! are plain Engine API calls (moby's `api/server/router/image`). They go over
//! the engine's unix socket as HTTP/1.1, one connection per request: a local
//! socket is cheap to reopen and no pool means no stale keep-alive to handle.
//!
//! Paths are unversioned, so the engine answers with its own current API
//! version: Engine 29 refuses clients older than 1.44, and the fields read
//! here (`Id`, `RepoTags`, `Size`, `message`) are stable across versions.
//!
//! With the containerd image store (the default for new installs of Engine
//! 29, and on in the test stack) an image's `Id` is the digest of its target
//! descriptor, the manifest or the index, not the config digest; see
//! [`Engine::find_by_config_digest`].

mod exec;
mod export_scan;
mod http;
mod http1;
mod images;
mod load;
mod lookup;
mod tarstream;

use std::path::{Path, PathBuf};

use ::http::Method;
use serde::Deserialize;

pub use images::ImageSummary;

/// The engine socket Docker itself uses when `DOCKER_HOST` is unset.
// Owned by the engine client: `connect` needs the engine anyway (its
// docker-container transport runs an exec), so the engine must not need
// `connect` back.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// How many images [`Engine::find_by_config_digest`] may export, by default,
/// while looking for a config digest in the containerd store: each costs the
/// engine some 30 ms before its first byte (Engine 26.1).
pub const DEFAULT_SCAN_IMAGES: usize = 200;

/// How many export bytes that lookup may read by default; most exports are
/// settled within their first few hundred KiB.
pub const DEFAULT_SCAN_BYTES: u64 = 256 << 20;

/// Why an engine call failed, by what the caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine's socket could not be opened: no socket, no permission, or
    /// nothing listening.
    #[error("cannot reach the Docker Engine at {}: {source} ({hint})", socket.display())]
    Unreachable {
        /// The unix socket that was tried.
        socket: PathBuf,
        /// What to check, by the kind of failure.
        hint: &'static str,
        /// The error from opening the socket.
        #[source]
        source: std::io::Error,
    },
    /// `DOCKER_HOST` names something other than an absolute `unix://` path
    /// (tcp, ssh, a relative path).
    #[error(
        "DOCKER_HOST={host} is not supported: rbuild talks to the engine over unix:///path/to/docker.sock"
    )]
    UnsupportedHost {
        /// The value of `DOCKER_HOST`, trimmed.
        host: String,
    },
    /// The HTTP/1.1 exchange failed after the socket opened (the engine
    /// closed the connection, or the answer was cut short).
    #[error("the connection to the Docker Engine at {} broke while {what}: {source}", socket.display())]
    Connection {
        /// The engine's unix socket.
        socket: PathBuf,
        /// The operation, for the message (`listing images`, ...).
        what: String,
        /// The transport's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The engine answered with a status that is not a success.
    #[error("{what}: the Docker Engine answered HTTP {status}: {message}")]
    Status {
        /// The operation, for the message (`listing images`, ...).
        what: String,
        /// The HTTP status code.
        status: u16,
        /// The `message` of the engine's JSON error body, or the raw body.
        message: String,
    },
    /// An error line in a streamed response that began with `200 OK`.
    #[error("{what}: the Docker Engine reported: {message}")]
    Reported {
        /// The operation, for the message.
        what: String,
        /// The error the stream carried.
        message: String,
    },
    /// The engine's answer could not be read or parsed: a body over its
    /// limit, JSON that does not fit, a stream that ends wrongly.
    #[error("{what}: unexpected response from the Docker Engine: {detail}")]
    BadResponse {
        /// The operation, for the message.
        what: String,
        /// What was wrong, with the start of the body where it helps.
        detail: String,
    },
    /// An image name or digest refused before it is sent to the engine.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The name or digest, as given.
        reference: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// A Docker Engine reached over its unix socket.
#[derive(Clone, Debug)]
pub struct Engine {
    socket: PathBuf,
    scan_images: usize,
    scan_bytes: u64,
}

impl Engine {
    /// An engine at `socket`, with the default scan budget
    /// ([`DEFAULT_SCAN_IMAGES`], [`DEFAULT_SCAN_BYTES`]). Nothing is opened
    /// until the first call.
    pub fn new(socket: PathBuf) -> Engine {
        Engine {
            socket,
            scan_images: DEFAULT_SCAN_IMAGES,
            scan_bytes: DEFAULT_SCAN_BYTES,
        }
    }

    /// The engine `DOCKER_HOST` names, or the default socket when it is unset.
    ///
    /// # Errors
    ///
    /// [`EngineError::UnsupportedHost`] when `DOCKER_HOST` is set to anything but an
    /// absolute `unix://` path.
    pub fn from_env() -> Result<Engine, EngineError> {
        let host = std::env::var("DOCKER_HOST").ok();
        Ok(Engine::new(socket_from_docker_host(host.as_deref())?))
    }

    /// Caps how many images [`Engine::find_by_config_digest`] exports and how
    /// many bytes it reads from them; past either it answers `None` (the
    /// caller takes its slow path), not an error.
    pub fn with_scan_budget(mut self, images: usize, bytes: u64) -> Engine {
        self.scan_images = images;
        self.scan_bytes = bytes;
        self
    }

    /// The unix socket every call opens.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /_ping`: `Ok` when the engine answers with a success status.
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read.
    pub async fn ping(&self) -> Result<(), EngineError> {
        let what = "pinging the engine";
        let (status, body) = self.call(Method::GET, "/_ping", what).await?;
        if !status.is_success() {
            return Err(http::status_error(what, status, &body));
        }
        Ok(())
    }

    /// Prunes the whole build cache (`docker builder prune --all`), as a fresh
    /// CI runner would start; returns the bytes reclaimed.
    ///
    /// # Errors
    ///
    /// [`EngineError::Unreachable`] when the engine's socket cannot be opened,
    /// [`EngineError::Connection`] when the exchange breaks, [`EngineError::Status`] when
    /// the engine answers with an error status, [`EngineError::BadResponse`] when its
    /// answer cannot be read.
    pub async fn prune_build_cache(&self) -> Result<u64, EngineError> {
        let what = "pruning the build cache";
        let (status, body) = self.call(Method::POST, "/build/prune?all=1", what).await?;
        if !status.is_success() {
            return Err(http::status_error(what, status, &body));
        }
        #[derive(Deserialize)]
        struct Report {
            #[serde(rename = "SpaceReclaimed", default)]
            space_reclaimed: u64,
        }
        let report: Report = http::parse_json(what, &body)?;
        Ok(report.space_reclaimed)
    }
}

/// `DOCKER_HOST` as the docker CLI reads it, restricted to unix sockets.
fn socket_from_docker_host(host: Option<&str>) -> Result<PathBuf, EngineError> {
    let host = match host.map(str::trim) {
        None | Some("") => return Ok(PathBuf::from(DEFAULT_DOCKER_SOCKET)),
        Some(h) => h,
    };
    match host.strip_prefix("unix://") {
        Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
        _ => Err(EngineError::UnsupportedHost {
            host: host.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fake_engine::FakeEngine;

    #[test]
    fn docker_host_selects_the_socket() {
        let default = PathBuf::from(DEFAULT_DOCKER_SOCKET);
        assert_eq!(socket_from_docker_host(None).unwrap(), default);
        assert_eq!(socket_from_docker_host(Some("")).unwrap(), default);
        assert_eq!(
            socket_from_docker_host(Some("unix:///run/x/docker.sock")).unwrap(),
            PathBuf::from("/run/x/docker.sock")
        );
        for bad in ["tcp://1.2.3.4:2375", "unix://relative.sock", "ssh://h"] {
            let err = socket_from_docker_host(Some(bad)).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[tokio::test]
    async fn a_missing_socket_is_named_with_what_to_check() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let err = Engine::new(socket.clone()).ping().await.unwrap_err();
        assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&socket.display().to_string()), "{text}");
        assert!(text.contains("DOCKER_HOST"), "{text}");
    }

    #[tokio::test]
    async fn ping_and_prune_read_the_engine_answers() {
        let fake = FakeEngine::start(vec![
            FakeEngine::reply(200, "OK"),
            FakeEngine::reply(200, r#"{"CachesDeleted":["a","b"],"SpaceReclaimed":12345}"#),
        ]);
        fake.engine.ping().await.unwrap();
        assert_eq!(fake.engine.prune_build_cache().await.unwrap(), 12345);
        let requests = fake.requests().await;
        assert!(
            requests[0].starts_with("GET /_ping HTTP/1.1"),
            "{requests:?}"
        );
        assert!(requests[1].starts_with("POST /build/prune?all=1 HTTP/1.1"));
    }

    #[tokio::test]
    async fn an_error_status_carries_the_engine_message() {
        let fake = FakeEngine::start(vec![FakeEngine::reply(
            500,
            r#"{"message":"builder is busy"}"#,
        )]);
        let err = fake.engine.prune_build_cache().await.unwrap_err();
        assert!(
            matches!(&err, EngineError::Status { status: 500, message, .. } if message == "builder is busy"),
            "{err:?}"
        );
    }
}
