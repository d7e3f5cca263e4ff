//! `rbuild cache`: housekeeping for registry caches: list what a repository
//! holds, total it, and prune old BuildKit cache manifests (a dry run unless
//! `--yes`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use rbuild::progress::units::bytes;
use rbuild::registry::{
    Inventory, KeepReason, PruneOutcome, PrunePlan, PruneRule, Registry, RegistryError,
    RegistryOptions, Timestamp, TlsCheck, Usage, format_age, parse_duration, prune,
};
use serde::Serialize;

use super::GlobalArgs;

const GC_HINT: &str = "Deleting manifests frees no disk by itself: run the registry's garbage \
     collection (e.g. `registry garbage-collect /etc/docker/registry/config.yml`) to free the space.";

/// The `rbuild cache` subcommands; the long help is on `Command::Cache`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the tags of REPO: cache or image, digest, size, shared bytes, age.
    Ls {
        /// HOST[:PORT]/PATH, https://HOST/PATH or http://HOST/PATH.
        repo: String,
        /// Output: text, or json for scripts and CI dashboards.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Total REPO: tags, manifests, blobs, shared and unique bytes.
    Du {
        /// HOST[:PORT]/PATH, https://HOST/PATH or http://HOST/PATH.
        repo: String,
        /// Output: text, or json for scripts and CI dashboards.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Delete old cache manifests of REPO (never images); a dry run unless --yes.
    #[command(group(clap::ArgGroup::new("policy").required(true).args(["keep", "older_than"])))]
    Prune {
        /// HOST[:PORT]/PATH, https://HOST/PATH or http://HOST/PATH.
        repo: String,
        /// Keep the N newest cache manifests (those without a time count as oldest).
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Delete cache manifests older than DUR: 30s, 90m, 24h, 7d, 2w (without a time: kept).
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        older_than: Option<Duration>,
        /// Delete for real (the registry must allow deletes); without it, only print the plan.
        #[arg(long)]
        yes: bool,
        /// Output: text, or json for scripts and CI dashboards.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// How to reach the registry.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// PEM CA certificate(s) an HTTPS registry's certificate may chain to,
    /// besides the system's roots (which SSL_CERT_FILE replaces).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Tags per page when listing (default: the registry's own paging).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    page_size: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub async fn run(global: &GlobalArgs, cmd: CacheCommand) -> anyhow::Result<u8> {
    let connect = |repo: &str, args: RegistryArgs| -> anyhow::Result<Registry> {
        let options = RegistryOptions {
            connect_timeout: Duration::from_secs(global.connect_timeout.max(1)),
            ca_file: args.ca_file,
            page_size: args.page_size,
            ..RegistryOptions::default()
        };
        Ok(Registry::new(repo.parse()?, options))
    };
    match cmd {
        CacheCommand::Ls {
            repo,
            format,
            registry,
        } => ls(&connect(&repo, registry)?, format).await,
        CacheCommand::Du {
            repo,
            format,
            registry,
        } => du(&connect(&repo, registry)?, format).await,
        CacheCommand::Prune {
            repo,
            keep,
            older_than,
            yes,
            format,
            registry,
        } => {
            let policy = match (keep, older_than) {
                (Some(n), _) => PruneRule::KeepNewest(n),
                (None, Some(d)) => PruneRule::OlderThan(d),
                // clap's required group makes this unreachable from argv.
                (None, None) => anyhow::bail!("prune needs --keep N or --older-than DUR"),
            };
            prune(&connect(&repo, registry)?, policy, yes, format).await
        }
    }
}

/// The flag or variable that fixes a TLS failure, added to its message.
fn with_hint(err: RegistryError) -> anyhow::Error {
    let hint = match &err {
        RegistryError::Tls {
            check: Some(TlsCheck::CaCert),
            ..
        } => "give the registry's CA certificate with --ca-file FILE or SSL_CERT_FILE",
        RegistryError::Tls {
            check: Some(TlsCheck::ServerName),
            ..
        } => "the certificate must be valid for the host as written in REPO",
        RegistryError::TlsSetup { .. } => "check --ca-file and SSL_CERT_FILE",
        _ => return err.into(),
    };
    anyhow::anyhow!("{err} ({hint})")
}

async fn inventory(registry: &Registry) -> anyhow::Result<Inventory> {
    registry
        .inventory()
        .await
        .map_err(with_hint)
        .with_context(|| format!("cannot read {}", registry.repository()))
}

fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    created.map_or_else(|| "-".to_string(), |t| format_age(t.age(now)))
}

async fn ls(registry: &Registry, format: Format) -> anyhow::Result<u8> {
    let inv = inventory(registry).await?;
    let now = Timestamp::now();
    let rows = inv.tag_usage(now);
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(0);
    }
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let digest = r.digest.short().to_string();
            [
                r.tag.clone(),
                r.kind.as_str().into(),
                digest,
                bytes(r.size),
                bytes(r.shared),
                age(r.created, now),
            ]
        })
        .collect();
    write_table(
        &mut out,
        ["TAG", "KIND", "DIGEST", "SIZE", "SHARED", "AGE"],
        &table,
    )?;
    if rows.is_empty() {
        writeln!(out, "(no tags in {})", registry.repository())?;
    }
    Ok(0)
}

fn write_table<const N: usize>(
    out: &mut impl Write,
    head: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = head.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(head.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct DuReport<'a> {
    repository: String,
    #[serde(flatten)]
    usage: &'a Usage,
}

async fn du(registry: &Registry, format: Format) -> anyhow::Result<u8> {
    let usage = inventory(registry).await?.usage();
    let mut out = std::io::stdout().lock();
    if format == Format::Json {
        let report = DuReport {
            repository: registry.repository().to_string(),
            usage: &usage,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(0);
    }
    let sized = |n: u64| format!("{} ({n} bytes)", bytes(n));
    writeln!(out, "Repository: {}", registry.repository())?;
    writeln!(
        out,
        "Tags:       {} ({} cache, {} image, {} other)",
        usage.tags, usage.cache_tags, usage.image_tags, usage.other_tags
    )?;
    writeln!(out, "Manifests:  {}", usage.manifests)?;
    writeln!(out, "Blobs:      {}", usage.blobs)?;
    writeln!(out, "Total:      {}", sized(usage.total_bytes))?;
    writeln!(
        out,
        "Shared:     {}  referenced by more than one tag",
        sized(usage.shared_bytes)
    )?;
    writeln!(
        out,
        "Unique:     {}  referenced by one tag: reclaimable if that tag went",
        sized(usage.unique_bytes)
    )?;
    Ok(0)
}

/// After `--yes`: what happened and the repository re-read.
#[derive(Serialize)]
struct After {
    outcome: PruneOutcome,
    usage: Usage,
    /// What the same policy would reclaim now (0 unless something failed).
    reclaim_bytes: u64,
}

#[derive(Serialize)]
struct PruneReport<'a> {
    repository: String,
    dry_run: bool,
    plan: &'a PrunePlan,
    before: Usage,
    after: Option<After>,
}

async fn prune(
    registry: &Registry,
    policy: PruneRule,
    yes: bool,
    format: Format,
) -> anyhow::Result<u8> {
    let inv = inventory(registry).await?;
    let now = Timestamp::now();
    let plan = prune::plan(&inv, policy, now);
    let mut report = PruneReport {
        repository: registry.repository().to_string(),
        dry_run: !yes,
        plan: &plan,
        before: inv.usage(),
        after: None,
    };
    if yes && !plan.delete.is_empty() {
        let outcome = registry
            .prune(&inv, &plan)
            .await
            .map_err(with_hint)
            .with_context(|| format!("cannot prune {}", registry.repository()))?;
        let after = inventory(registry).await?;
        report.after = Some(After {
            reclaim_bytes: prune::plan(&after, policy, Timestamp::now()).reclaim_bytes,
            usage: after.usage(),
            outcome,
        });
    }
    let failed = report
        .after
        .as_ref()
        .is_some_and(|a| !a.outcome.failed.is_empty());
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        Format::Text => write_prune(&mut out, &report, now)?,
    }
    Ok(if failed { 1 } else { 0 })
}

fn keep_reason(reason: &KeepReason) -> String {
    match reason {
        KeepReason::NotCache => "not a cache".into(),
        KeepReason::Newest => "among the newest".into(),
        KeepReason::Newer => "newer than the limit".into(),
        KeepReason::NoAge => "no creation time".into(),
        KeepReason::SharesDigest(t) => format!("same manifest as kept {t}"),
        KeepReason::ReferencedBy(t) => format!("referenced by kept {t}"),
    }
}

/// `1 manifest`, `2 manifests`.
fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn write_prune(
    out: &mut impl Write,
    report: &PruneReport<'_>,
    now: Timestamp,
) -> std::io::Result<()> {
    let plan = report.plan;
    let policy = match plan.policy {
        PruneRule::KeepNewest(n) => format!("keep the {n} newest cache manifests"),
        PruneRule::OlderThan(d) => format!("delete cache manifests older than {}", format_age(d)),
    };
    writeln!(out, "Prune plan for {} ({policy}):", report.repository)?;
    write_plan_table(out, plan, now)?;
    if plan.delete.is_empty() {
        return writeln!(out, "Nothing to delete.");
    }
    let sized = |n: u64| format!("{} ({n} bytes)", bytes(n));
    let manifests = count(plan.delete.len(), "manifest");
    let tags = count(plan.delete.iter().map(|d| d.tags.len()).sum(), "tag");
    let Some(after) = &report.after else {
        let reclaim = sized(plan.reclaim_bytes);
        writeln!(
            out,
            "Would delete {manifests} ({tags}) and reclaim {reclaim}."
        )?;
        writeln!(out, "Dry run: nothing was deleted; add --yes to delete.")?;
        return writeln!(out, "{GC_HINT}");
    };
    let deleted = after.outcome.deleted.len();
    writeln!(out, "Deleted {deleted} of {manifests} ({tags}).")?;
    for failure in &after.outcome.failed {
        writeln!(
            out,
            "  failed {}: {}",
            failure.digest.short(),
            failure.error
        )?;
    }
    let (before_reclaim, after_reclaim) = (sized(plan.reclaim_bytes), sized(after.reclaim_bytes));
    writeln!(
        out,
        "Reclaimable: before {before_reclaim}, after {after_reclaim}."
    )?;
    let (before_total, after_total) = (
        sized(report.before.total_bytes),
        sized(after.usage.total_bytes),
    );
    writeln!(
        out,
        "Referenced by tags: before {before_total}, after {after_total}."
    )?;
    writeln!(out, "{GC_HINT}")
}

fn write_plan_table(out: &mut impl Write, plan: &PrunePlan, now: Timestamp) -> std::io::Result<()> {
    let mut rows: Vec<[String; 7]> = Vec::new();
    for d in &plan.delete {
        rows.push([
            "delete".into(),
            d.tags.join(","),
            "cache".into(),
            d.digest.short().into(),
            bytes(d.size),
            age(d.created, now),
            String::new(),
        ]);
    }
    for k in &plan.keep {
        rows.push([
            "keep".into(),
            k.tag.clone(),
            k.kind.as_str().into(),
            k.digest.short().into(),
            bytes(k.size),
            age(k.created, now),
            keep_reason(&k.reason),
        ]);
    }
    let head = ["ACTION", "TAG", "KIND", "DIGEST", "SIZE", "AGE", "WHY KEPT"];
    write_table(out, head, &rows)
}
