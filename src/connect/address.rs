//! Daemon addresses as users write them (`--addr`, `BUILDKIT_HOST`).
//!
//! The syntax follows buildctl's so an existing `BUILDKIT_HOST` keeps working,
//! plus `docker://SOCKET` for the BuildKit embedded in a Docker Engine,
//! `docker-container://NAME` for a buildkitd in a container (buildx's
//! docker-container driver) and `ssh://[USER@]HOST[:PORT][/SOCKET]` for a
//! daemon on another host, as BuildKit's ssh connection helper reads it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::docker_api::DEFAULT_DOCKER_SOCKET;

/// Where the BuildKit Control API is served.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A daemon on another host: the system's `ssh` client runs a command
    /// there (`buildctl dial-stdio` by default) whose stdin and stdout carry
    /// plain HTTP/2.
    Ssh {
        /// The login name (`ssh -l`); `None`: ssh's own choice.
        user: Option<String>,
        /// A host name or IP address; an IPv6 address without its brackets.
        host: String,
        /// The ssh port (`ssh -p`); `None`: ssh's own choice (22 or the
        /// user's ssh config).
        port: Option<u16>,
        /// The daemon's unix socket on that host, for the default remote
        /// command (`buildctl --addr unix://SOCKET dial-stdio`).
        socket: Option<PathBuf>,
    },
}

/// Where a rootful standalone buildkitd listens by default.
pub const DEFAULT_BUILDKITD_SOCKET: &str = "/run/buildkit/buildkitd.sock";

/// Why an address string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid address {input:?}: {reason}")]
#[non_exhaustive]
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
                 tcp://HOST:PORT, docker:///var/run/docker.sock, docker-container://NAME \
                 or ssh://USER@HOST",
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
            "ssh" => parse_ssh(input, rest),
            other => Err(AddressError::new(
                input,
                format!(
                    "unsupported scheme {other:?} (use unix://, tcp://, docker://, docker-container:// or ssh://)"
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

/// `ssh://[USER@]HOST[:PORT][/SOCKET]`. What BuildKit's helper refuses is
/// refused here too (a password, a query, a fragment), and the host and
/// user are checked so that ssh can only take them as a destination.
fn parse_ssh(input: &str, rest: &str) -> Result<Address, AddressError> {
    let fail = |reason: &str| AddressError::new(input, reason);
    if rest.contains('?') {
        return Err(fail("query parameters are not supported"));
    }
    if rest.contains('#') {
        return Err(fail("a #fragment is not supported"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let socket = (path.len() > 1).then(|| PathBuf::from(path));
    // The last @ ends the user, as in URLs: some directory logins hold one.
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, host_port)) => (Some(user), host_port),
        None => (None, authority),
    };
    if let Some(user) = user {
        if user.contains(':') {
            return Err(fail(
                "a password in the address is not supported (use a key: ssh-agent or an IdentityFile)",
            ));
        }
        if user.is_empty() || user.starts_with('-') || !user.chars().all(is_plain) {
            return Err(fail("expected ssh://USER@HOST with a plain user name"));
        }
    }
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| fail("an IPv6 address needs its closing ]"))?;
        let ipv6 = host.contains(':')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ":.%".contains(c));
        if !ipv6 {
            return Err(fail("expected an IPv6 address inside [ ]"));
        }
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(fail("expected :PORT after the ]")),
            },
        }
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(fail(
                    "put an IPv6 address in brackets: ssh://USER@[::1]:PORT",
                ));
            }
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        if host.is_empty() {
            return Err(fail(
                "the host is empty (expected ssh://[USER@]HOST[:PORT])",
            ));
        }
        let name = !host.starts_with('-')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !name {
            return Err(fail("expected a host name or an IP address"));
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(fail(&format!("{p:?} is not a port number"))),
        },
    };
    Ok(Address::Ssh {
        user: user.map(str::to_string),
        host: host.to_string(),
        port,
        socket,
    })
}

/// What a login name may hold: no spaces, control characters or URL
/// delimiters.
fn is_plain(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !"/[]".contains(c)
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
            Address::Ssh {
                user,
                host,
                port,
                socket,
            } => {
                f.write_str("ssh://")?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                match host.contains(':') {
                    true => write!(f, "[{host}]")?,
                    false => f.write_str(host)?,
                }
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                match socket {
                    Some(socket) => write!(f, "{}", socket.display()),
                    None => Ok(()),
                }
            }
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
            (
                "ssh://build-host",
                Address::Ssh {
                    user: None,
                    host: "build-host".into(),
                    port: None,
                    socket: None,
                },
            ),
            (
                "ssh://ci@10.0.0.7:2222/run/buildkit/buildkitd.sock",
                Address::Ssh {
                    user: Some("ci".into()),
                    host: "10.0.0.7".into(),
                    port: Some(2222),
                    socket: Some("/run/buildkit/buildkitd.sock".into()),
                },
            ),
            (
                "ssh://me@corp@[fe80::1%eth0]/",
                Address::Ssh {
                    user: Some("me@corp".into()),
                    host: "fe80::1%eth0".into(),
                    port: None,
                    socket: None,
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
            "ssh://h",
            "ssh://u@h.example:22",
            "ssh://u@[::1]:2222/run/bk.sock",
            "ssh://[::1]/s",
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
            ("ftp://me@host", "unsupported scheme"),
            ("ssh://", "host is empty"),
            ("ssh://me@", "host is empty"),
            ("ssh://me:secret@host", "password"),
            ("ssh://@host", "user name"),
            ("ssh://-oProxyCommand=x@host", "user name"),
            ("ssh://-oProxyCommand=x", "host name"),
            ("ssh://a b", "host name"),
            ("ssh://host:0", "not a port number"),
            ("ssh://host:ssh", "not a port number"),
            ("ssh://::1", "brackets"),
            ("ssh://[::1", "closing ]"),
            ("ssh://[::1]x", ":PORT"),
            ("ssh://[host]", "IPv6"),
            ("ssh://host?x=1", "query"),
            ("ssh://host#x", "fragment"),
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
