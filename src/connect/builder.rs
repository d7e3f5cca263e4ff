//! `--builder NAME`: a buildx builder's endpoints, read from the buildx store
//! in the Docker config directory (`buildx/instances/NAME`, JSON as
//! `docker buildx create` writes it), so a pipeline's `--builder` keeps
//! pointing at the same daemons: one node is that daemon, several are a
//! [`Pool`](crate::pool::Pool).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Address, TlsConfig};

/// Why a builder name does not give an address.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuilderError {
    /// No such builder in the store.
    #[error("no buildx builder named {name:?} in {} (docker buildx ls lists them)", dir.display())]
    Unknown {
        /// The name.
        name: String,
        /// The store directory looked in.
        dir: PathBuf,
    },
    /// The store file cannot be read or parsed.
    #[error("buildx builder {name:?}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// The name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What went wrong: the OS error, or the JSON parser's.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The builder uses an endpoint rbuild cannot reach, or has no nodes.
    #[error("buildx builder {name:?}: {detail}")]
    Unsupported {
        /// The name.
        name: String,
        /// What is not supported, and what to use instead.
        detail: String,
    },
    /// The builder's driver is not one rbuild can reach (`kubernetes`,
    /// ...): connect to its daemon by address instead.
    #[error(
        "buildx builder {name:?}: the {driver} driver is not supported; connect to its daemon by address"
    )]
    UnsupportedDriver {
        /// The name.
        name: String,
        /// The driver.
        driver: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Instance {
    driver: String,
    #[serde(default)]
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Node {
    name: String,
    endpoint: String,
    #[serde(default)]
    platforms: Option<Vec<OciPlatform>>,
    #[serde(default)]
    driver_opts: Option<std::collections::BTreeMap<String, String>>,
}

/// buildx stores a node's `--platform` as OCI platform objects.
#[derive(Deserialize)]
struct OciPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: String,
}

/// One node of a buildx builder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuilderNode {
    /// The node's name in the store.
    pub name: String,
    /// Its address.
    pub address: Address,
    /// TLS files (a `remote` node with certificates).
    pub tls: Option<TlsConfig>,
    /// The platforms it was created for (`os/arch[/variant]`).
    pub platforms: Vec<String>,
}

/// The address (and TLS options, for a `remote` builder with certificates)
/// of builder `name` in the store under `config_dir`. A builder with several
/// nodes gives its first one ([`resolve_nodes`] gives them all).
///
/// # Errors
///
/// As [`resolve_nodes`].
pub fn resolve(
    name: &str,
    config_dir: &Path,
) -> Result<(Address, Option<TlsConfig>), BuilderError> {
    let first = resolve_nodes(name, config_dir)?.swap_remove(0);
    Ok((first.address, first.tls))
}

/// Every node of builder `name` in the store under `config_dir`; never empty.
///
/// # Errors
///
/// [`BuilderError::Unknown`] when the store has no builder `name`;
/// [`BuilderError::Unreadable`] when its file cannot be read or parsed;
/// [`BuilderError::UnsupportedDriver`] when its driver is not one rbuild can reach;
/// [`BuilderError::Unsupported`] when it has no nodes or a node's endpoint cannot be used.
pub fn resolve_nodes(name: &str, config_dir: &Path) -> Result<Vec<BuilderNode>, BuilderError> {
    let dir = config_dir.join("buildx").join("instances");
    let path = dir.join(name);
    let unsupported = |detail: String| BuilderError::Unsupported {
        name: name.to_string(),
        detail,
    };
    if name.contains('/') || !path.is_file() {
        return Err(BuilderError::Unknown {
            name: name.to_string(),
            dir,
        });
    }
    let unreadable = |source: Box<dyn std::error::Error + Send + Sync>| BuilderError::Unreadable {
        name: name.to_string(),
        path: path.clone(),
        source,
    };
    let text = std::fs::read(&path).map_err(|e| unreadable(e.into()))?;
    let instance: Instance = serde_json::from_slice(&text).map_err(|e| unreadable(e.into()))?;
    if instance.nodes.is_empty() {
        return Err(unsupported("it has no nodes".into()));
    }
    instance
        .nodes
        .iter()
        .map(|node| {
            let (address, tls) = node_address(name, &instance.driver, node, &unsupported)?;
            let platforms = node
                .platforms
                .iter()
                .flatten()
                .map(|p| {
                    let mut s = format!("{}/{}", p.os, p.architecture);
                    if !p.variant.is_empty() {
                        s = format!("{s}/{}", p.variant);
                    }
                    s
                })
                .collect();
            Ok(BuilderNode {
                name: node.name.clone(),
                address,
                tls,
                platforms,
            })
        })
        .collect()
}

fn node_address(
    builder: &str,
    driver: &str,
    node: &Node,
    unsupported: &dyn Fn(String) -> BuilderError,
) -> Result<(Address, Option<TlsConfig>), BuilderError> {
    let socket = |endpoint: &str| {
        endpoint
            .strip_prefix("unix://")
            .map(PathBuf::from)
            .ok_or_else(|| {
                unsupported(format!(
                    "endpoint {endpoint:?} is not a unix:// engine socket"
                ))
            })
    };
    match driver {
        "remote" => {
            let addr: Address = node
                .endpoint
                .parse()
                .map_err(|e: super::AddressError| unsupported(e.to_string()))?;
            let opts = node.driver_opts.clone().unwrap_or_default();
            let file = |k: &str| opts.get(k).map(PathBuf::from);
            let tls =
                (opts.contains_key("cacert") || opts.contains_key("cert")).then(|| TlsConfig {
                    ca: file("cacert"),
                    cert: file("cert"),
                    key: file("key"),
                    server_name: opts.get("servername").cloned(),
                });
            Ok((addr, tls))
        }
        // buildx names the container after the node.
        "docker-container" => Ok((
            Address::DockerContainer {
                name: format!("buildx_buildkit_{}", node.name),
                engine: socket(&node.endpoint)?,
            },
            None,
        )),
        "docker" => Ok((Address::Docker(socket(&node.endpoint)?), None)),
        other => Err(BuilderError::UnsupportedDriver {
            name: builder.to_string(),
            driver: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str, json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let instances = dir.path().join("buildx/instances");
        std::fs::create_dir_all(&instances).unwrap();
        std::fs::write(instances.join(name), json).unwrap();
        dir
    }

    #[test]
    fn buildx_drivers_map_to_addresses() {
        let d = store(
            "rb",
            r#"{"Name":"rb","Driver":"docker-container","Nodes":[{"Name":"rb0","Endpoint":"unix:///run/x/docker.sock","Platforms":null,"DriverOpts":null,"Flags":null,"Files":null}],"Dynamic":false}"#,
        );
        let (addr, tls) = resolve("rb", d.path()).unwrap();
        assert_eq!(addr.to_string(), "docker-container://buildx_buildkit_rb0");
        assert!(tls.is_none());
        let d = store(
            "far",
            r#"{"Name":"far","Driver":"remote","Nodes":[{"Name":"far0","Endpoint":"tcp://10.0.0.9:1234","DriverOpts":{"cacert":"/c/ca.pem","cert":"/c/cert.pem","key":"/c/key.pem"}}]}"#,
        );
        let (addr, tls) = resolve("far", d.path()).unwrap();
        assert_eq!(addr.to_string(), "tcp://10.0.0.9:1234");
        assert_eq!(tls.unwrap().ca, Some(PathBuf::from("/c/ca.pem")));
        let d2 = store(
            "two",
            r#"{"Name":"two","Driver":"remote","Nodes":[{"Name":"a","Endpoint":"tcp://10.0.0.1:1234","Platforms":[{"architecture":"arm64","os":"linux","variant":"v8"}]},{"Name":"b","Endpoint":"unix:///run/b.sock","Platforms":null}]}"#,
        );
        let nodes = resolve_nodes("two", d2.path()).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].platforms, ["linux/arm64/v8"]);
        assert_eq!(nodes[1].address.to_string(), "unix:///run/b.sock");
        assert!(nodes[1].platforms.is_empty());
        let err = resolve("nope", d.path()).unwrap_err().to_string();
        assert!(err.contains("no buildx builder named \"nope\""), "{err}");
        let d = store(
            "k",
            r#"{"Name":"k","Driver":"kubernetes","Nodes":[{"Name":"k0","Endpoint":"kubernetes:///x"}]}"#,
        );
        assert!(
            resolve("k", d.path())
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
    }
}
