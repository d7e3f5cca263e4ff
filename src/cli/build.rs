//! `rbuild [build] PATH`: flags -> [`rbuild::Build`], then `Client::build_with`
//! with live progress, then the files the user asked for (metadata, image id).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rbuild::progress::Mode;
use rbuild::{BuildError, BuildOptions, BuildResult, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;
use super::flags;
use super::plan::build_from_flags;
use super::report;

/// Exit code of a build stopped by SIGINT/SIGTERM, as shells report it.
pub const EXIT_CANCELED: u8 = 130;

#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// Build context directory (a context named like a command: ./info).
    #[arg(value_name = "PATH")]
    pub context: Option<PathBuf>,

    /// The Dockerfile (default: PATH/Dockerfile); `-` reads it from stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Build this stage of the Dockerfile.
    #[arg(long)]
    pub target: Option<String>,

    /// Build-time variable; KEY alone takes its value from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,

    /// Image label.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Target platform(s), e.g. linux/amd64 (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', value_name = "OS/ARCH")]
    pub platform: Vec<String>,

    /// Do not use the build cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Always look for newer versions of base images.
    #[arg(long)]
    pub pull: bool,

    /// Network for RUN steps.
    #[arg(long, value_enum)]
    pub network: Option<Network>,

    /// Extra /etc/hosts entry for RUN steps.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,

    /// Extra named build context, a local directory: NAME=DIR.
    #[arg(long = "build-context", value_name = "NAME=DIR")]
    pub build_contexts: Vec<String>,

    /// Image name and tag (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,

    /// Push the tagged image to its registry (shorthand for -o type=registry).
    #[arg(long)]
    pub push: bool,

    /// Load the image into the Docker Engine (shorthand for -o type=docker).
    /// On an engine's own BuildKit the image is stored there directly.
    #[arg(long)]
    pub load: bool,

    /// Output (repeatable, all in one solve): type=image|registry|tar|oci|docker|local
    /// with dest=FILE|DIR|- and exporter options; a bare PATH means type=local, `-` a tar
    /// on stdout.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,

    /// Import build cache: type=registry,ref=REF | type=local,src=DIR | a bare REF.
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,

    /// Export build cache: type=registry,ref=REF[,mode=min|max,...] | type=local,dest=DIR |
    /// type=inline | a bare REF.
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,

    /// Secret for RUN --mount=type=secret (repeatable): id=ID,src=FILE | id=ID,env=VAR |
    /// type=env|file,id=ID[,src=...]; read before the build starts.
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,

    /// SSH agent for RUN --mount=type=ssh (repeatable): `default` (SSH_AUTH_SOCK),
    /// ID=SOCKET, or ID=KEYFILE[,KEYFILE] (unencrypted OpenSSH keys, served in-process).
    #[arg(long = "ssh", value_name = "ID[=SOCKET|KEYFILE,...]")]
    pub ssh: Vec<String>,

    /// Shared registry cache: import from REF and export all layers (mode=max) to it.
    #[arg(long, value_name = "REF")]
    pub cache: Option<String>,

    /// Write the build result metadata (buildx-compatible JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Write the end-of-build report (steps, cache hits, context upload, cache
    /// sources) as JSON to FILE, for CI dashboards; written for failed builds too.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the image id (config digest) to FILE.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Renew the cache of steps that fetch from outside (git clone, curl, apt-get update, ...)
    /// once per DURATION window (30s, 90m, 6h, 7d); `rbuild check` lists them. A
    /// `# rbuild:refresh=6h|never` comment above a step overrides it for that step.
    #[arg(long, value_name = "DURATION", value_parser = rbuild::dockerfile::parse_duration)]
    pub refresh_every: Option<Duration>,

    /// Start a new refresh window now for those steps (this build only).
    #[arg(long)]
    pub refresh: bool,

    /// Progress output: auto (tty on a terminal, else plain), tty, plain,
    /// rawjson, quiet.
    #[arg(long, env = "BUILDKIT_PROGRESS", value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Print only the image id (same as --progress quiet).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum ProgressArg {
    #[default]
    Auto,
    Tty,
    Plain,
    Rawjson,
    Quiet,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}

pub async fn run(global: &GlobalArgs, args: BuildArgs) -> anyhow::Result<u8> {
    let addr = global.address();
    // Everything the user typed is checked before the daemon is contacted.
    let build = build_from_flags(&args)?;
    build.validate().map_err(user_error)?;
    tracing::debug!("plan ready");
    let client = Client::connect(addr, &global.connect_options()).await?;
    tracing::debug!("connected");

    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let mode = progress_mode(&args);
    let (tx, rx) = mpsc::channel(256);
    let out: Box<dyn std::io::Write + Send> = match mode {
        // rawjson is data for a program: it goes to stdout like buildx's.
        Mode::RawJson => Box::new(super::Lenient::new(std::io::stdout())),
        _ => Box::new(super::Lenient::new(std::io::stderr())),
    };
    let renderer = tokio::spawn(rbuild::progress::render(mode, out, rx));
    let started = std::time::Instant::now();
    let result = {
        // Dropped at the end of the block: the renderer ends with the
        // last sender.
        let options = BuildOptions::default().events(tx).cancel(cancel.clone());
        client.build_with(&build, &options).await
    };
    signals.abort();
    let summaries = renderer.await.context("progress renderer stopped")??;
    let summary = summaries.into_iter().next().flatten().unwrap_or_default();
    tracing::debug!(?summary, "build finished");
    if let Some(path) = &args.report {
        let report = report::json(&summary, result.as_ref().ok(), &build, started.elapsed());
        rbuild::build::write_atomically(path, report.to_string().as_bytes())
            .with_context(|| format!("cannot write --report {}", path.display()))?;
    }

    let outcome = match result {
        Ok(outcome) => outcome,
        Err(BuildError::Canceled) => {
            super::say(format_args!("build canceled"));
            return Ok(EXIT_CANCELED);
        }
        Err(e) => return Err(user_error(e)),
    };
    for warning in &outcome.warnings {
        super::say(format_args!("WARNING: {warning}"));
    }
    write_results(&args, &outcome)?;
    if mode != Mode::Quiet {
        super::say(format_args!("{}", report::line(&outcome)));
    }
    if mode == Mode::Quiet
        && let Some(id) = outcome.image_id()
    {
        super::say_out(format_args!("{id}"));
    }
    Ok(0)
}

/// A library error as the user should read it: where the cause is one of
/// their flags, the flag is named.
pub(super) fn user_error(e: BuildError) -> anyhow::Error {
    use rbuild::build::InvalidBuild;
    match e {
        BuildError::Invalid(InvalidBuild::Spec(e)) => flags::spec_error(e),
        // Their messages start with the field the flag is named after.
        BuildError::Invalid(InvalidBuild::Ssh(e)) => anyhow::anyhow!("--{e}"),
        BuildError::Invalid(InvalidBuild::Secret(e)) => anyhow::anyhow!("--{e}"),
        BuildError::Invalid(InvalidBuild::Dockerfile { message })
            if message.starts_with("no Dockerfile at") =>
        {
            anyhow::anyhow!("{message} (use -f to name another file)")
        }
        BuildError::Invalid(InvalidBuild::PushWithoutName) => anyhow::anyhow!(
            "pushing needs an image name: add -t REGISTRY/NAME[:TAG] or name= to the output"
        ),
        e @ BuildError::DaemonSilent { .. } => {
            anyhow::anyhow!("{e} (--keepalive sets the ping interval)")
        }
        e => e.into(),
    }
}

fn progress_mode(args: &BuildArgs) -> Mode {
    if args.quiet {
        return Mode::Quiet;
    }
    match args.progress {
        ProgressArg::Auto if std::io::stderr().is_terminal() => Mode::Tty,
        ProgressArg::Auto | ProgressArg::Plain => Mode::Plain,
        ProgressArg::Tty => Mode::Tty,
        ProgressArg::Rawjson => Mode::RawJson,
        ProgressArg::Quiet => Mode::Quiet,
    }
}

/// SIGINT or SIGTERM cancels the build on the daemon.
async fn cancel_on_signal(cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    tracing::debug!("signal received: canceling the build");
    cancel.cancel();
}

fn write_results(args: &BuildArgs, outcome: &BuildResult) -> anyhow::Result<()> {
    if let Some(path) = &args.metadata_file {
        let text = serde_json::to_string_pretty(&outcome.metadata_json())?;
        rbuild::build::write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write --metadata-file {}", path.display()))?;
    }
    if let Some(path) = &args.iidfile {
        let id = outcome
            .image_id()
            .context("--iidfile: the build produced no image (add -t or an image output)")?;
        rbuild::build::write_atomically(path, id.as_bytes())
            .with_context(|| format!("cannot write --iidfile {}", path.display()))?;
    }
    Ok(())
}
