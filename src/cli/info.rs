//! `rbuild info`: first contact with a daemon, or with every node of a pool.

use std::io::Write;

use clap::{Args, ValueEnum};
use rbuild::DaemonInfo;
use rbuild::pool::{Health, NodeStatus, Pool};

use super::GlobalArgs;
use rbuild::pool::Nodes;

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub async fn run(global: &GlobalArgs, args: InfoArgs) -> anyhow::Result<u8> {
    if let Nodes::Pool(nodes) = global.nodes()? {
        return pool(Pool::new(nodes)?, args).await;
    }
    let client = super::connect(global).await?;
    let info = client.info().await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?,
        Format::Text => write_text(&mut out, client.address(), &info)?,
    }
    Ok(0)
}

/// Every node, healthy or not; exit 1 when none is healthy (nothing could
/// build).
async fn pool(pool: Pool, args: InfoArgs) -> anyhow::Result<u8> {
    let nodes = pool.status().await;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&nodes)?)?,
        Format::Text => {
            for (i, node) in nodes.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                write_node(&mut out, node)?;
            }
        }
    }
    let healthy = nodes.iter().any(|n| n.health == Health::Healthy);
    Ok(if healthy { 0 } else { 1 })
}

fn write_node(out: &mut impl Write, node: &NodeStatus) -> std::io::Result<()> {
    if node.name != node.address {
        writeln!(out, "Node:     {}", node.name)?;
    }
    writeln!(out, "Address:  {}", node.address)?;
    match &node.health {
        Health::Healthy => writeln!(out, "Health:   healthy")?,
        Health::Unhealthy(reason) => writeln!(out, "Health:   unhealthy: {reason}")?,
    }
    if !node.platforms.is_empty() {
        writeln!(out, "Platforms (configured): {}", node.platforms.join(", "))?;
    }
    let Some(info) = &node.info else {
        return Ok(());
    };
    match &info.version {
        Some(v) => writeln!(out, "BuildKit: {} {} {}", v.package, v.version, v.revision)?,
        None => writeln!(out, "BuildKit: (older than v0.11, no version reported)")?,
    }
    match node.running_builds {
        Some(n) => writeln!(out, "Running:  {n} build(s)")?,
        None => writeln!(out, "Running:  (the daemon does not say)")?,
    }
    writeln!(out, "Workers:  {}", info.workers.len())?;
    for w in &info.workers {
        writeln!(out, "  {}: {}", w.id, w.platforms.join(", "))?;
    }
    Ok(())
}

fn write_text(
    out: &mut impl Write,
    addr: &rbuild::Address,
    info: &DaemonInfo,
) -> std::io::Result<()> {
    writeln!(out, "Address:  {addr}")?;
    match &info.version {
        Some(v) => writeln!(out, "BuildKit: {} {} {}", v.package, v.version, v.revision)?,
        None => writeln!(
            out,
            "BuildKit: (daemon older than v0.11, no version reported)"
        )?,
    }
    writeln!(out, "Workers:  {}", info.workers.len())?;
    for w in &info.workers {
        writeln!(out)?;
        writeln!(out, "  ID:        {}", w.id)?;
        writeln!(out, "  Platforms: {}", w.platforms.join(", "))?;
        writeln!(out, "  Labels:")?;
        for (k, v) in &w.labels {
            writeln!(out, "    {k} = {v}")?;
        }
    }
    Ok(())
}
