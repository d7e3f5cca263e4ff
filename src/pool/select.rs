//! Which daemons a build goes to, chosen the way CI lines name them: an
//! address given by the caller, a builder given by the caller, then the
//! environment (`BUILDX_BUILDER`, `BUILDKIT_HOST` with commas for a pool),
//! then the local default. A builder name is looked up in the builders file
//! first, then in the buildx store; several nodes are a pool.
//!
//! Everything a program passes explicitly wins over the environment, as a
//! flag wins over its environment variable.

use std::path::PathBuf;

use super::Node;
use super::config::{self, Builders, ConfigError};
use crate::connect::builder::{BuilderError, resolve_nodes};
use crate::connect::{Address, AddressError, ConnectOptions};

/// buildx's name for the daemon the local Docker context points at: no
/// store lookup, the addresses (or the local default) decide.
pub const DEFAULT_BUILDER: &str = "default";

/// What the caller chose, before the environment fills in the rest.
///
/// ```
/// use rbuild::pool::{Nodes, Selection};
/// let nodes = Selection::default()
///     .addr("unix:///run/buildkit/buildkitd.sock".parse()?)
///     .resolve()?;
/// assert!(matches!(nodes, Nodes::One(..)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Selection {
    addrs: Vec<Address>,
    builder: Option<String>,
    connect: ConnectOptions,
}

/// One daemon, or several.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Nodes {
    /// Talk to this daemon alone (boxed: the options dwarf a pool's list).
    One(Address, Box<ConnectOptions>),
    /// Place each build on one of these.
    Pool(Vec<Node>),
}

/// Why the selection names no daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// An address and a builder were both given: which one is meant?
    #[error("both an address and a builder ({builder:?}) are given; give one of them")]
    AddrAndBuilder {
        /// The builder given.
        builder: String,
    },
    /// `BUILDKIT_HOST` holds something that is not an address list.
    #[error("BUILDKIT_HOST: {0}")]
    Env(#[source] AddressError),
    /// The builders file names the builder but cannot be used.
    #[error(transparent)]
    BuildersFile(#[from] ConfigError),
    /// An explicitly chosen builders file has no such builder.
    #[error("no builder named {name:?} in {} (it has: {})", path.display(), known.join(", "))]
    NotInBuildersFile {
        /// The name asked for.
        name: String,
        /// The file.
        path: PathBuf,
        /// The builders it has.
        known: Vec<String>,
    },
    /// Neither `DOCKER_CONFIG` nor `HOME` is set, so there is no buildx
    /// store to look the builder up in.
    #[error("neither DOCKER_CONFIG nor HOME is set, so there is no buildx store to find {0:?} in")]
    NoStore(String),
    /// The buildx store has no usable builder of that name.
    #[error(transparent)]
    Store(#[from] BuilderError),
}

impl Selection {
    /// The local default, unless the environment says otherwise; connect
    /// with `connect`.
    pub fn new(connect: ConnectOptions) -> Selection {
        Selection {
            connect,
            ..Selection::default()
        }
    }

    /// Build on `addr`; several are a pool.
    pub fn addr(mut self, addr: Address) -> Selection {
        self.addrs.push(addr);
        self
    }

    /// Build on the builder `name` (of the builders file or the buildx
    /// store); [`DEFAULT_BUILDER`] is the addresses' or the local default.
    pub fn builder(mut self, name: impl Into<String>) -> Selection {
        self.builder = Some(name.into());
        self
    }

    /// The connect options every node starts from (a builders-file or
    /// store node may bring its own TLS files).
    pub fn connect_options(&self) -> &ConnectOptions {
        &self.connect
    }

    /// The daemons this selection names.
    ///
    /// # Errors
    ///
    /// [`SelectError`] when an address and a builder are both given,
    /// `BUILDKIT_HOST` does not parse, or a builder cannot be found or read.
    pub fn resolve(&self) -> Result<Nodes, SelectError> {
        let env_builder = std::env::var("BUILDX_BUILDER")
            .ok()
            .filter(|b| !b.is_empty());
        let builder = self.builder.clone().filter(|b| b != DEFAULT_BUILDER);
        match (&self.addrs[..], builder) {
            ([], Some(name)) => return self.named(&name),
            ([], None) if self.builder.is_some() => {}
            ([], None) => {
                if let Some(name) = env_builder.filter(|b| b != DEFAULT_BUILDER) {
                    return self.named(&name);
                }
            }
            (_, Some(name)) => return Err(SelectError::AddrAndBuilder { builder: name }),
            (addrs, None) => return Ok(self.of(addrs)),
        }
        let env: Vec<Address> = match std::env::var("BUILDKIT_HOST") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|a| a.trim().parse())
                .collect::<Result<_, _>>()
                .map_err(SelectError::Env)?,
            _ => Vec::new(),
        };
        if env.is_empty() {
            let addr = Address::default_local();
            tracing::debug!(%addr, "no address or builder given: the local default");
            return Ok(Nodes::One(addr, Box::new(self.connect.clone())));
        }
        Ok(self.of(&env))
    }

    fn of(&self, addrs: &[Address]) -> Nodes {
        match addrs {
            [one] => Nodes::One(one.clone(), Box::new(self.connect.clone())),
            many => Nodes::Pool(many.iter().map(|a| self.node(a.clone())).collect()),
        }
    }

    /// A pool node at `addr`; TLS options apply to its tcp:// members only
    /// (a socket takes no TLS).
    fn node(&self, addr: Address) -> Node {
        let mut connect = self.connect.clone();
        if !matches!(addr, Address::Tcp { .. }) {
            connect.tls = None;
        }
        Node::new(addr).connect_options(connect)
    }

    /// A builder by name: the builders file first, then the buildx store.
    fn named(&self, name: &str) -> Result<Nodes, SelectError> {
        let explicit = std::env::var_os("RBUILD_BUILDERS").is_some_and(|p| !p.is_empty());
        if let Some(path) = config::default_path().filter(|p| explicit || p.exists()) {
            let builders = Builders::load(&path)?;
            if builders.has(name) {
                let base = ConnectOptions {
                    tls: None,
                    ..self.connect.clone()
                };
                let mut nodes = builders.nodes(name, &base)?;
                for n in &mut nodes {
                    // The caller's TLS fills in for a tcp:// node that
                    // names no files.
                    if n.connect.tls.is_none() && matches!(n.address, Address::Tcp { .. }) {
                        n.connect.tls = self.connect.tls.clone();
                    }
                }
                tracing::debug!(builder = name, nodes = nodes.len(), file = %path.display(), "builder from the builders file");
                return Ok(one_or_pool(nodes));
            }
            if explicit {
                return Err(SelectError::NotInBuildersFile {
                    name: name.to_string(),
                    path,
                    known: builders.names(),
                });
            }
        }
        let store = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .ok_or_else(|| SelectError::NoStore(name.to_string()))?;
        let found = resolve_nodes(name, &store)?;
        tracing::debug!(
            builder = name,
            nodes = found.len(),
            "builder from the buildx store"
        );
        let nodes = found
            .into_iter()
            .map(|n| {
                let mut connect = self.connect.clone();
                // The store's TLS files unless the caller gave its own.
                if connect.tls.is_none() {
                    connect.tls = n.tls;
                }
                Node::new(n.address)
                    .name(n.name)
                    .connect_options(connect)
                    .platforms(n.platforms)
            })
            .collect();
        Ok(one_or_pool(nodes))
    }
}

fn one_or_pool(mut nodes: Vec<Node>) -> Nodes {
    if nodes.len() == 1 {
        let n = nodes.swap_remove(0);
        Nodes::One(n.address, Box::new(n.connect))
    } else {
        Nodes::Pool(nodes)
    }
}
