//! Named builders: a file that gives a pool of nodes a name, in buildx's
//! builder/node model (a builder is a set of nodes; a node has an endpoint,
//! the platforms it builds and its TLS files), written in HCL like bake
//! files:
//!
//! ```hcl
//! builder "ci" {
//!   node "r1" {
//!     endpoint  = "docker:///run/rbuild/docker.sock"
//!     platforms = ["linux/amd64"]
//!   }
//!   node "arm" {
//!     endpoint   = "tcp://10.0.0.7:1234"
//!     platforms  = ["linux/arm64"]
//!     cacert     = "certs/ca.pem"   # relative paths: from this file's directory
//!     cert       = "certs/cert.pem"
//!     key        = "certs/key.pem"
//!     servername = "buildkitd"
//!   }
//!   node "far" {
//!     endpoint           = "ssh://ci@builder.example"
//!     ssh_remote_command = "rbuild dial-stdio --addr docker:///var/run/docker.sock"
//!     ssh_command        = "ssh -F ci/ssh_config"
//!   }
//! }
//! ```
//!
//! The TLS keys are buildx's `remote` driver options; the `ssh_` keys set
//! [`SshOptions`] for an `ssh://` node, over
//! the environment's. A node's name is its routing identity: renaming it
//! moves its builds, reordering does not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Node;
use crate::connect::{Address, ConnectOptions, SshOptions, TlsConfig};

/// Why a builders file gives no pool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read builders file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid HCL or has unknown keys.
    #[error("builders file {}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's error, with its position.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A node's endpoint is not an address.
    #[error("builders file {}: builder {builder:?} node {node:?}: {detail}", path.display())]
    Node {
        /// The file.
        path: PathBuf,
        /// The builder.
        builder: String,
        /// The node.
        node: String,
        /// What is wrong with it.
        detail: String,
    },
    /// No builder of that name in the file.
    #[error("no builder named {name:?} in {} (it has: {})", path.display(), known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The file.
        path: PathBuf,
        /// The builders it has.
        known: Vec<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    builder: BTreeMap<String, BuilderDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuilderDef {
    #[serde(default)]
    node: BTreeMap<String, NodeDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeDef {
    endpoint: String,
    #[serde(default)]
    platforms: Vec<String>,
    cacert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    servername: Option<String>,
    ssh_command: Option<String>,
    ssh_remote_command: Option<String>,
}

/// A parsed builders file.
pub struct Builders {
    path: PathBuf,
    file: File,
}

impl std::fmt::Debug for Builders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builders")
            .field("path", &self.path)
            .field("builders", &self.names())
            .finish()
    }
}

/// Where the builders file is looked for: `RBUILD_BUILDERS`, else
/// `$XDG_CONFIG_HOME/rbuild/builders.hcl`, else
/// `~/.config/rbuild/builders.hcl`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RBUILD_BUILDERS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("rbuild").join("builders.hcl"))
}

impl Builders {
    /// Reads and parses `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unreadable`] when the file cannot be read; then the errors of
    /// [`Builders::parse`].
    pub fn load(path: &Path) -> Result<Builders, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Builders::parse(path, &text)
    }

    /// Parses `text` as the file at `path` (relative TLS paths are taken
    /// from its directory).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when `text` is not valid HCL or not the builders file's
    /// shape.
    pub fn parse(path: &Path, text: &str) -> Result<Builders, ConfigError> {
        let file: File = hcl::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        Ok(Builders {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The builders' names.
    pub fn names(&self) -> Vec<String> {
        self.file.builder.keys().cloned().collect()
    }

    /// Whether the file defines builder `name`.
    pub fn has(&self, name: &str) -> bool {
        self.file.builder.contains_key(name)
    }

    /// The nodes of builder `name`, each connected with `base` (timeout,
    /// keepalive) and its own TLS files.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Unknown`] when the file has no builder `name`; [`ConfigError::Node`]
    /// when a node's endpoint is no valid address or it has TLS files for a non-`tcp://`
    /// endpoint.
    pub fn nodes(&self, name: &str, base: &ConnectOptions) -> Result<Vec<Node>, ConfigError> {
        let def = self
            .file
            .builder
            .get(name)
            .ok_or_else(|| ConfigError::Unknown {
                name: name.to_string(),
                path: self.path.clone(),
                known: self.names(),
            })?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut nodes = Vec::new();
        for (node_name, n) in &def.node {
            let fail = |detail: String| ConfigError::Node {
                path: self.path.clone(),
                builder: name.to_string(),
                node: node_name.clone(),
                detail,
            };
            let address: Address = n.endpoint.parse().map_err(|e| fail(format!("{e}")))?;
            let file = |p: &Option<PathBuf>| p.as_ref().map(|p| dir.join(p));
            let tls =
                (n.cacert.is_some() || n.cert.is_some() || n.key.is_some()).then(|| TlsConfig {
                    ca: file(&n.cacert),
                    cert: file(&n.cert),
                    key: file(&n.key),
                    server_name: n.servername.clone(),
                });
            if tls.is_some() && !matches!(address, Address::Tcp { .. }) {
                return Err(fail(
                    "TLS files apply only to a tcp:// endpoint".to_string(),
                ));
            }
            let ssh = match &address {
                Address::Ssh { socket, .. } => {
                    if let (Some(socket), Some(_)) = (socket, &n.ssh_remote_command) {
                        return Err(fail(format!(
                            "the endpoint names the socket {} and ssh_remote_command is set; \
                             put the daemon's address in ssh_remote_command instead",
                            socket.display()
                        )));
                    }
                    SshOptions {
                        command: n.ssh_command.clone().or(base.ssh.command.clone()),
                        remote_command: n
                            .ssh_remote_command
                            .clone()
                            .or(base.ssh.remote_command.clone()),
                    }
                }
                _ if n.ssh_command.is_some() || n.ssh_remote_command.is_some() => {
                    return Err(fail(
                        "ssh_command and ssh_remote_command apply only to an ssh:// endpoint"
                            .to_string(),
                    ));
                }
                _ => base.ssh.clone(),
            };
            let connect = ConnectOptions {
                tls,
                ssh,
                ..base.clone()
            };
            nodes.push(
                Node::new(address)
                    .name(node_name.clone())
                    .connect_options(connect)
                    .platforms(n.platforms.clone()),
            );
        }
        if nodes.is_empty() {
            return Err(ConfigError::Node {
                path: self.path.clone(),
                builder: name.to_string(),
                node: String::new(),
                detail: "the builder has no node blocks".into(),
            });
        }
        Ok(nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
builder "ci" {
  node "r1" {
    endpoint  = "docker:///run/rbuild/docker.sock"
    platforms = ["linux/amd64"]
  }
  node "far" {
    endpoint   = "tcp://10.0.0.7:1234"
    cacert     = "certs/ca.pem"
    servername = "bk"
  }
}
builder "solo" {
  node "only" { endpoint = "unix:///run/buildkit/buildkitd.sock" }
}
builder "far" {
  node "a" {
    endpoint           = "ssh://ci@[::1]:2222"
    ssh_remote_command = "rbuild dial-stdio"
    ssh_command        = "ssh -F /ci/ssh_config"
  }
  node "b" { endpoint = "ssh://ci@b/run/buildkit/buildkitd.sock" }
}
"#;

    #[test]
    fn builders_and_their_nodes() {
        let b = Builders::parse(Path::new("/etc/rbuild/builders.hcl"), FILE).unwrap();
        assert_eq!(b.names(), ["ci", "far", "solo"]);
        let nodes = b.nodes("ci", &ConnectOptions::default()).unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["far", "r1"]);
        let far = &nodes[0];
        assert_eq!(far.address.to_string(), "tcp://10.0.0.7:1234");
        let tls = far.connect.tls.as_ref().unwrap();
        assert_eq!(
            tls.ca.as_deref(),
            Some(Path::new("/etc/rbuild/certs/ca.pem"))
        );
        assert_eq!(tls.server_name.as_deref(), Some("bk"));
        assert_eq!(nodes[1].platforms, ["linux/amd64"]);
        assert!(nodes[1].connect.tls.is_none());
        let err = b.nodes("nope", &ConnectOptions::default()).unwrap_err();
        assert!(err.to_string().contains("it has: ci, far, solo"), "{err}");
        let nodes = b.nodes("far", &ConnectOptions::default()).unwrap();
        assert_eq!(nodes[0].address.to_string(), "ssh://ci@[::1]:2222");
        assert_eq!(
            nodes[0].connect.ssh,
            SshOptions {
                command: Some("ssh -F /ci/ssh_config".into()),
                remote_command: Some("rbuild dial-stdio".into()),
            }
        );
        assert_eq!(nodes[1].connect.ssh, SshOptions::default());
    }

    #[test]
    fn mistakes_name_the_file_and_the_node() {
        let p = Path::new("b.hcl");
        let err = Builders::parse(
            p,
            "builder \"x\" {\n node \"n\" { endpoint = \"ftp://x\" }\n}\n",
        )
        .unwrap()
        .nodes("x", &ConnectOptions::default())
        .unwrap_err()
        .to_string();
        assert!(err.contains("b.hcl") && err.contains("\"n\""), "{err}");
        let err = Builders::parse(
            p,
            "builder \"x\" {\n node \"n\" { endpont = \"tcp://h:1\" }\n}\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("b.hcl"), "{err}");
        let err = Builders::parse(
            p,
            "builder \"x\" {\n node \"n\" {\n endpoint = \"unix:///s\"\n cacert = \"c\"\n }\n}\n",
        )
        .unwrap()
        .nodes("x", &ConnectOptions::default())
        .unwrap_err()
        .to_string();
        assert!(err.contains("only to a tcp://"), "{err}");
        let nodes = |text: &str| {
            Builders::parse(p, text)
                .unwrap()
                .nodes("x", &ConnectOptions::default())
                .unwrap_err()
                .to_string()
        };
        let err = nodes(
            "builder \"x\" {\n node \"n\" {\n endpoint = \"tcp://h:1\"\n ssh_command = \"ssh\"\n }\n}\n",
        );
        assert!(err.contains("only to an ssh://"), "{err}");
        let err = nodes(
            "builder \"x\" {\n node \"n\" {\n endpoint = \"ssh://h/s.sock\"\n ssh_remote_command = \"rbuild dial-stdio\"\n }\n}\n",
        );
        assert!(err.contains("/s.sock") && err.contains("\"n\""), "{err}");
    }
}
