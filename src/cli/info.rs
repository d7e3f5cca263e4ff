//! `rbuild info`: first contact with a daemon.

use std::io::Write;

use clap::{Args, ValueEnum};
use rbuild::DaemonInfo;

use super::GlobalArgs;

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
    let client = super::connect(global).await?;
    let info = client.info().await?;
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?,
        Format::Text => write_text(&mut out, client.address(), &info)?,
    }
    Ok(0)
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
