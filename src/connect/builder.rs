//! `--builder NAME`: a buildx builder's endpoint, read from the buildx store
//! in the Docker config directory (`buildx/instances/NAME`, JSON as
//! `docker buildx create` writes it), so a pipeline's `--builder` keeps
//! pointing at the same daemon.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Address, TlsConfig};

/// Why a builder name does not give an address.
#[derive(Debug, thiserror::Error)]
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
    #[error("buildx builder {name:?}: cannot read {}: {detail}", path.display())]
    Unreadable {
        /// The name.
        name: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The builder uses a driver or endpoint rbuild cannot reach.
    #[error("buildx builder {name:?}: {detail}")]
    Unsupported {
        /// The name.
        name: String,
        /// What is not supported, and what to use instead.
        detail: String,
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
    driver_opts: Option<std::collections::BTreeMap<String, String>>,
}

/// The address (and TLS options, for a `remote` builder with certificates)
/// of builder `name` in the store under `config_dir`. A builder with several
/// nodes gives its first one.
pub fn resolve(
    name: &str,
    config_dir: &Path,
) -> Result<(Address, Option<TlsConfig>), BuilderError> {
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
    let unreadable = |detail: String| BuilderError::Unreadable {
        name: name.to_string(),
        path: path.clone(),
        detail,
    };
    let text = std::fs::read(&path).map_err(|e| unreadable(e.to_string()))?;
    let instance: Instance =
        serde_json::from_slice(&text).map_err(|e| unreadable(e.to_string()))?;
    let node = instance
        .nodes
        .first()
        .ok_or_else(|| unsupported("it has no nodes".into()))?;
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
    match instance.driver.as_str() {
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
        other => Err(unsupported(format!(
            "the {other} driver is not supported (use --addr with the daemon's address)"
        ))),
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
