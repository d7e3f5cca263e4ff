//! Which daemons the global flags name: one (`--addr`, a one-node builder,
//! the local default) or a pool (`--addr` repeated, commas in
//! `BUILDKIT_HOST`, a builder with several nodes).

use std::path::PathBuf;

use anyhow::Context;
use rbuild::connect::builder::resolve_nodes;
use rbuild::pool::Node;
use rbuild::pool::config::{self, Builders};
use rbuild::{Address, ConnectOptions};

use super::GlobalArgs;

/// One daemon, or several.
pub enum Nodes {
    /// Talk to this daemon alone (boxed: the options dwarf a pool's list).
    One(Address, Box<ConnectOptions>),
    /// Place each build on one of these.
    Pool(Vec<Node>),
}

pub fn resolve(global: &GlobalArgs) -> anyhow::Result<Nodes> {
    let opts = global.connect_options();
    if let Some(name) = global.builder.as_deref().filter(|n| *n != "default") {
        return builder(name, opts);
    }
    Ok(match global.addr.as_slice() {
        [] => {
            let addr = Address::default_local();
            tracing::debug!(%addr, "no --addr or BUILDKIT_HOST: using the local default");
            Nodes::One(addr, Box::new(opts))
        }
        [one] => Nodes::One(one.clone(), Box::new(opts)),
        many => Nodes::Pool(many.iter().map(|a| node(a.clone(), &opts)).collect()),
    })
}

/// A pool node at `addr`; the --tls* flags apply to its tcp:// members only
/// (a socket takes no TLS).
fn node(addr: Address, opts: &ConnectOptions) -> Node {
    let mut connect = opts.clone();
    if !matches!(addr, Address::Tcp { .. }) {
        connect.tls = None;
    }
    Node::new(addr).connect_options(connect)
}

/// `--builder NAME`: the builders file first, then the buildx store.
fn builder(name: &str, opts: ConnectOptions) -> anyhow::Result<Nodes> {
    let explicit = std::env::var_os("RBUILD_BUILDERS").is_some_and(|p| !p.is_empty());
    if let Some(path) = config::default_path().filter(|p| explicit || p.exists()) {
        let builders = Builders::load(&path).map_err(|e| anyhow::anyhow!("--builder: {e}"))?;
        if builders.has(name) {
            let base = ConnectOptions {
                tls: None,
                ..opts.clone()
            };
            let mut nodes = builders
                .nodes(name, &base)
                .map_err(|e| anyhow::anyhow!("--builder: {e}"))?;
            for n in &mut nodes {
                // --tls* flags fill in for a tcp:// node that names no files.
                if n.connect.tls.is_none() && matches!(n.address, Address::Tcp { .. }) {
                    n.connect.tls = opts.tls.clone();
                }
            }
            tracing::debug!(builder = name, nodes = nodes.len(), file = %path.display(), "builder from the builders file");
            return Ok(one_or_pool(nodes));
        }
        if explicit {
            anyhow::bail!(
                "--builder: no builder named {name:?} in {} (it has: {})",
                path.display(),
                builders.names().join(", ")
            );
        }
    }
    let store = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .context("--builder: neither DOCKER_CONFIG nor HOME is set, so there is no buildx store")?;
    let found = resolve_nodes(name, &store).map_err(|e| anyhow::anyhow!("--builder: {e}"))?;
    tracing::debug!(
        builder = name,
        nodes = found.len(),
        "builder from the buildx store"
    );
    let nodes = found
        .into_iter()
        .map(|n| {
            let mut connect = opts.clone();
            // The store's TLS files unless --tls* flags are given.
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

fn one_or_pool(mut nodes: Vec<Node>) -> Nodes {
    if nodes.len() == 1 {
        let n = nodes.swap_remove(0);
        Nodes::One(n.address, Box::new(n.connect))
    } else {
        Nodes::Pool(nodes)
    }
}
