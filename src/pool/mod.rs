//! A pool of BuildKit daemons ("nodes", as buildx calls the members of a
//! builder): each build goes to one node, chosen by rendezvous hashing of
//! its routing key ([`route_key`]), so one project's builds land where its
//! local cache is warm and projects spread evenly.
//!
//! A node is tried when a build is placed on it: it must connect within its
//! connect timeout and pass a health check (`ListWorkers` answered within
//! that timeout, with at least one worker). One that does not is skipped,
//! and the next node in the key's hash order takes the build; the
//! [`Placement`] says which node built and why others were skipped. Each
//! node is connected and checked at most once per pool.
//!
//! A build for several platforms whose nodes build different ones is split
//! ([`Pool::build_with`]): each platform on a node that builds it natively
//! (its [`Node::platforms`], else its workers'), all at once, then the
//! index joining them is published under the build's tags; [`Placed::shares`]
//! says which node built which platforms.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rbuild::pool::{Node, Pool};
//! use rbuild::{Build, BuildOptions};
//!
//! let pool = Pool::new(vec![
//!     Node::new("docker:///run/rbuild/docker.sock".parse()?).name("r1"),
//!     Node::new("docker:///run/rbuild/r2/docker.sock".parse()?).name("r2"),
//! ])?;
//! let placed = pool
//!     .build_with(&Build::new("examples/app").cache("127.0.0.1:5000/app-cache"), BuildOptions::default())
//!     .await;
//! if let Some(p) = &placed.placement {
//!     println!("built on {}", p.node);
//! }
//! placed.result?;
//! # Ok(())
//! # }
//! ```

mod across;
mod builds;
pub mod config;
pub(crate) mod git;
mod info;
mod platforms;
mod publish;
mod route;
mod select;

pub use crate::outcome::PoolError;
pub(crate) use crate::progress::placement::shown;
pub use crate::progress::placement::{Placement, Skipped};
pub use builds::Placed;
pub use info::{Health, NodeStatus};
pub use route::{KeySource, RouteKey, route_key};
pub use select::{DEFAULT_BUILDER, Nodes, SelectError, Selection};

use std::path::PathBuf;

use tokio::sync::OnceCell;

use crate::client::{Client, ClientError, DaemonInfo};
use crate::connect::{Address, ConnectError, ConnectOptions};
use crate::docker_api::Engine;

/// One daemon of a pool, as configured.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its name in progress, reports and hashing (default: the address).
    pub name: String,
    /// Where it listens.
    pub address: Address,
    /// How to connect: timeout, TLS, keepalive.
    pub connect: ConnectOptions,
    /// The platforms it is configured for (`linux/arm64`), as buildx's
    /// `--platform` on a node; empty: whatever its workers report.
    pub platforms: Vec<String>,
}

impl Node {
    /// A node at `address`, named after it, with default connect options.
    pub fn new(address: Address) -> Node {
        Node {
            name: address.to_string(),
            address,
            connect: ConnectOptions::default(),
            platforms: Vec::new(),
        }
    }

    /// Names the node (its routing identity: renaming moves its builds).
    pub fn name(mut self, name: impl Into<String>) -> Node {
        self.name = name.into();
        self
    }

    /// Sets how the node is connected to.
    pub fn connect_options(mut self, opts: ConnectOptions) -> Node {
        self.connect = opts;
        self
    }

    /// Sets the platforms the node is configured for.
    pub fn platforms(mut self, platforms: Vec<String>) -> Node {
        self.platforms = platforms;
        self
    }

    /// `"name" (address)`, or the address alone when it is the name.
    pub fn shown(&self) -> String {
        shown(&self.name, &self.address.to_string())
    }
}

/// `node` passed over for `reason`.
fn passed_over(node: &Node, reason: &str) -> Skipped {
    Skipped {
        node: node.name.clone(),
        address: node.address.to_string(),
        reason: reason.to_string(),
    }
}

/// A connected, healthy node and what its health check returned.
#[derive(Clone, Debug)]
pub(crate) struct Ready {
    pub(crate) client: Client,
    pub(crate) info: Option<DaemonInfo>,
}

/// Several daemons; see the module docs.
#[derive(Debug)]
pub struct Pool {
    nodes: Vec<Node>,
    /// The engine `--load` goes to from a node that is another engine.
    local_engine: PathBuf,
    ready: Vec<OnceCell<Result<Ready, String>>>,
    /// The connection of a pool of one (a failed connect is not kept: its
    /// typed error goes to the caller).
    lone: OnceCell<Client>,
}

impl Pool {
    /// A pool of `nodes`; their names must be unique. `--load` from a node
    /// that is a Docker Engine other than the one `DOCKER_HOST` names
    /// streams into that local engine, as from a standalone buildkitd.
    ///
    /// # Errors
    ///
    /// [`PoolError::Empty`] when `nodes` is empty; [`PoolError::DuplicateName`] when two
    /// nodes share a name.
    pub fn new(nodes: Vec<Node>) -> Result<Pool, PoolError> {
        if nodes.is_empty() {
            return Err(PoolError::Empty);
        }
        for (i, n) in nodes.iter().enumerate() {
            if nodes[..i].iter().any(|m| m.name == n.name) {
                return Err(PoolError::DuplicateName(n.name.clone()));
            }
        }
        let ready = nodes.iter().map(|_| OnceCell::new()).collect();
        Ok(Pool {
            nodes,
            local_engine: crate::connect::docker_socket_from_env(),
            ready,
            lone: OnceCell::new(),
        })
    }

    /// A pool of one daemon already connected: `client`, named after its
    /// address.
    pub fn of_client(client: Client) -> Pool {
        let node = Node::new(client.address().clone());
        Pool {
            nodes: vec![node],
            local_engine: crate::connect::docker_socket_from_env(),
            ready: vec![OnceCell::new()],
            lone: OnceCell::new_with(Some(client)),
        }
    }

    /// The engine socket `--load` goes to from other engines (default: the
    /// one `DOCKER_HOST` names).
    pub fn with_local_engine(mut self, socket: impl Into<PathBuf>) -> Pool {
        self.local_engine = socket.into();
        self
    }

    /// The nodes, as configured.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A pool of one node behaves as that daemon alone: no health check
    /// before building, its own connect error, no placement news.
    pub fn is_single(&self) -> bool {
        self.nodes.len() == 1
    }

    /// The nodes in the order a build with routing key `key` tries them.
    pub fn ranked(&self, key: &str) -> Vec<&Node> {
        route::order(key, self.nodes.iter().map(|n| n.name.as_str()))
            .into_iter()
            .map(|i| &self.nodes[i])
            .collect()
    }

    /// The node for `key`: the first in its hash order that connects and is
    /// healthy.
    ///
    /// # Errors
    ///
    /// [`PoolError::Unreachable`] when a pool's only node cannot be connected to;
    /// [`PoolError::NoNode`] when every node was tried and none is reachable and healthy
    /// (it lists why each was skipped).
    pub async fn place(&self, key: &RouteKey) -> Result<(Client, Placement), PoolError> {
        if self.is_single() {
            let node = &self.nodes[0];
            let client = self
                .lone
                .get_or_try_init(|| Client::connect(node.address.clone(), &node.connect))
                .await?
                .clone();
            let placement = Placement {
                node: node.name.clone(),
                address: node.address.to_string(),
                key: key.clone(),
                skipped: Vec::new(),
                platforms: Vec::new(),
            };
            return Ok((client, placement));
        }
        let mut skipped = Vec::new();
        for i in route::order(&key.value, self.nodes.iter().map(|n| n.name.as_str())) {
            let node = &self.nodes[i];
            match self.ready(i).await {
                Ok(ready) => {
                    tracing::debug!(node = %node.name, key = %key, "placed");
                    let placement = Placement {
                        node: node.name.clone(),
                        address: node.address.to_string(),
                        key: key.clone(),
                        skipped,
                        platforms: Vec::new(),
                    };
                    return Ok((ready.client.clone(), placement));
                }
                Err(reason) => {
                    tracing::debug!(node = %node.name, %reason, "node skipped");
                    skipped.push(passed_over(node, reason));
                }
            }
        }
        Err(PoolError::NoNode {
            key: key.to_string(),
            skipped,
        })
    }

    /// Node `i` connected and checked, once.
    pub(crate) async fn ready(&self, i: usize) -> &Result<Ready, String> {
        self.ready[i].get_or_init(|| self.check(i)).await
    }

    async fn check(&self, i: usize) -> Result<Ready, String> {
        let node = &self.nodes[i];
        let client = Client::connect(node.address.clone(), &node.connect)
            .await
            .map_err(|e| connect_reason(&e))?;
        let client = match &node.address {
            Address::Docker(socket) if !same_socket(socket, &self.local_engine) => {
                client.with_load_engine(Engine::new(self.local_engine.clone()))
            }
            _ => client,
        };
        let info = client.info().await.map_err(|e| health_reason(&e))?;
        if info.workers.is_empty() {
            return Err("health check: the daemon reports no workers".into());
        }
        Ok(Ready {
            client,
            info: Some(info),
        })
    }
}

/// `/var/run/docker.sock` and `/run/docker.sock` are one engine on most
/// machines (`/var/run` links to `/run`).
fn same_socket(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A connect error without the address (the placement names the node).
fn connect_reason(e: &ConnectError) -> String {
    match e {
        ConnectError::Timeout { secs, .. } => format!("no answer within {secs}s"),
        ConnectError::NoSocket { path, .. } => format!("no socket at {path}"),
        ConnectError::Io { source, .. } => format!("cannot connect: {source}"),
        ConnectError::Ssh { problem, .. } => problem.to_string(),
        other => other.to_string(),
    }
}

fn health_reason(e: &ClientError) -> String {
    match e {
        // TCP connects while the daemon is hung (the kernel accepts), and
        // HTTP/2 does not wait for the server's preface: its silence shows
        // here, as the connect timeout.
        ClientError::Timeout { call, secs, .. } => {
            format!("no answer within {secs}s (health check: {call})")
        }
        ClientError::Rpc { call, message, .. } => format!("health check: {call} failed: {message}"),
        ClientError::Connect(e) => connect_reason(e),
    }
}
