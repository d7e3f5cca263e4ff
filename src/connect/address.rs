//! Daemon addresses as users write them (`--addr`, `BUILDKIT_HOST`).
//!
//! The syntax follows buildctl's so an existing `BUILDKIT_HOST` keeps working,
//! plus `docker://SOCKET` for the BuildKit embedded in a Docker Engine and
//! `docker-container://NAME` for a buildkitd in a container (buildx's
//! docker-container driver).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::engine::DEFAULT_DOCKER_SOCKET;

/// Where the BuildKit Control API is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Address {
    /// A standalone buildkitd on a unix socket: plain HTTP/2 (h2c).
    Unix(PathBuf),
    /// A standalone buildkitd on TCP: plain HTTP/2 (h2c).
    Tcp {
        /// A host name or IP address; an IPv6 address without its brackets.
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// A Docker Engine on a unix socket: HTTP/1.1 `POST /grpc` upgraded to h2c.
    Docker(PathBuf),
    /// A buildkitd in container `name` of the engine at `engine`: the
    /// engine's exec API runs `buildctl dial-stdio` there and its stdio
    /// carries plain HTTP/2.
    DockerContainer {
        /// The container's name or ID.
        name: String,
        /// The engine's unix socket, from `DOCKER_HOST` or Docker's default.
        engine: PathBuf,
    },
}

/// Where a rootful standalone buildkitd listens by default.
pub const DEFAULT_BUILDKITD_SOCKET: &str = "/run/buildkit/buildkitd.sock";

/// Why an address string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid address {input:?}: {reason}")]
pub struct AddressError {
    /// The whole address string, as the user gave it.
    pub input: String,
    /// What is wrong with it and, where it helps, the expected form.
    pub reason: String,
}

impl AddressError {
    fn new(input: &str, reason: impl Into<String>) -> Self {
        Self {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = input.split_once("://").ok_or_else(|| {
            AddressError::new(
                input,
                "expected SCHEME://..., e.g. unix:///run/buildkit/buildkitd.sock, \
                 tcp://HOST:PORT, docker:///var/run/docker.sock or docker-container://NAME",
            )
        })?;
        match scheme {
            "unix" => Ok(Address::Unix(socket_path(input, rest)?)),
            "docker" => {
                // `docker://` alone means the engine Docker itself would use.
                if rest.is_empty() {
                    Ok(Address::Docker(docker_socket_from_env()))
                } else {
                    Ok(Address::Docker(socket_path(input, rest)?))
                }
            }
            "tcp" => parse_tcp(input, rest),
            "docker-container" => Ok(Address::DockerContainer {
                name: container_name(input, rest)?,
                engine: docker_socket_from_env(),
            }),
            other => Err(AddressError::new(
                input,
                format!(
                    "unsupported scheme {other:?} (use unix://, tcp://, docker:// or docker-container://)"
                ),
            )),
        }
    }
}

fn socket_path(input: &str, rest: &str) -> Result<PathBuf, AddressError> {
    if rest.is_empty() {
        return Err(AddressError::new(input, "the socket path is empty"));
    }
    if !rest.starts_with('/') {
        return Err(AddressError::new(
            input,
            "the socket path must be absolute (unix:///path/to.sock has three slashes)",
        ));
    }
    Ok(PathBuf::from(rest))
}

/// Docker's container name rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), which also
/// admits IDs. buildctl's `?context=` query is not supported: the engine is
/// the one `DOCKER_HOST` names.
fn container_name(input: &str, rest: &str) -> Result<String, AddressError> {
    let name = rest.trim_end_matches('/');
    if name.contains('?') {
        return Err(AddressError::new(
            input,
            "query parameters are not supported; set DOCKER_HOST to choose the engine",
        ));
    }
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(AddressError::new(
            input,
            "expected docker-container://NAME with a container name or ID",
        ));
    }
    Ok(name.to_string())
}

fn parse_tcp(input: &str, rest: &str) -> Result<Address, AddressError> {
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| AddressError::new(input, "expected tcp://HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(AddressError::new(input, "the host is empty"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| AddressError::new(input, format!("{port:?} is not a port number")))?;
    Ok(Address::Tcp {
        host: host.to_string(),
        port,
    })
}

/// The engine socket named by `DOCKER_HOST` when it is a unix socket, else
/// Docker's default socket.
pub fn docker_socket_from_env() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DOCKER_SOCKET))
}

impl Address {
    /// The address used when neither `--addr` nor `BUILDKIT_HOST` is given:
    /// a Docker Engine when its socket exists (the common CI runner), else a
    /// standalone buildkitd at its default path.
    pub fn default_local() -> Address {
        let docker = docker_socket_from_env();
        if docker.exists() {
            Address::Docker(docker)
        } else {
            Address::Unix(PathBuf::from(DEFAULT_BUILDKITD_SOCKET))
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Docker(p) => write!(f, "docker://{}", p.display()),
            Address::DockerContainer { name, .. } => write!(f, "docker-container://{name}"),
            Address::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_forms() {
        let cases = [
            (
                "unix:///run/buildkit/buildkitd.sock",
                Address::Unix("/run/buildkit/buildkitd.sock".into()),
            ),
            (
                "docker:///run/x/docker.sock",
                Address::Docker("/run/x/docker.sock".into()),
            ),
            (
                "tcp://127.0.0.1:1234",
                Address::Tcp {
                    host: "127.0.0.1".into(),
                    port: 1234,
                },
            ),
            (
                "tcp://[::1]:1234/",
                Address::Tcp {
                    host: "::1".into(),
                    port: 1234,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Address>().as_ref(), Ok(&want), "{input}");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "unix:///a/b.sock",
            "docker:///c.sock",
            "tcp://h:1",
            "tcp://[::1]:2",
            "docker-container://buildkitd_1",
        ] {
            let addr: Address = input.parse().unwrap();
            assert_eq!(addr.to_string(), input);
        }
    }

    #[test]
    fn refuses_bad_addresses_with_a_reason() {
        let cases = [
            ("/run/buildkit.sock", "expected SCHEME://"),
            ("unix://relative.sock", "must be absolute"),
            ("unix://", "empty"),
            ("tcp://host", "tcp://HOST:PORT"),
            ("tcp://host:99999", "not a port number"),
            ("tcp://:80", "host is empty"),
            ("ssh://me@host", "unsupported scheme"),
            ("docker-container://", "container name"),
            ("docker-container://-x", "container name"),
            ("docker-container://a/b", "container name"),
            ("docker-container://b?context=x", "DOCKER_HOST"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Address>().unwrap_err();
            assert!(err.to_string().contains(want), "{input}: {err}");
            assert!(err.to_string().contains(input), "{input}: {err}");
        }
    }
}
