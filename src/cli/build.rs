//! `rbuild [build] PATH`: flags -> [`BuildPlan`], then one solve with live
//! progress, then the files the user asked for (metadata, image id).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rbuild::Client;
use rbuild::progress::{Mode, Progress};
use rbuild::solve::{BuildOutcome, SolveError, solve};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;
use super::flags;
use super::plan::plan;
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
    let (plan, rewritten) = plan(&args, &addr)?;
    tracing::debug!("plan ready");
    let client = Client::connect(addr, &global.connect_options()).await?;
    tracing::debug!("connected");

    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let mode = progress_mode(&args);
    let (tx, rx) = mpsc::channel(256);
    let marks = rewritten.as_ref().map(rbuild::dockerfile::progress_marks);
    let renderer = tokio::spawn(render(mode, rx, marks));
    let started = std::time::Instant::now();
    let result = solve(&client, &plan, tx, cancel.clone()).await;
    signals.abort();
    let summary = renderer.await.context("progress renderer stopped")??;
    tracing::debug!(?summary, "build finished");
    if let Some(path) = &args.report {
        let report = report::json(&summary, result.as_ref().ok(), &plan, started.elapsed());
        rbuild::output::write_atomically(path, report.to_string().as_bytes())
            .with_context(|| format!("cannot write --report {}", path.display()))?;
    }

    let outcome = match result {
        Ok(outcome) => outcome,
        Err(SolveError::Canceled) => {
            super::say(format_args!("build canceled"));
            return Ok(EXIT_CANCELED);
        }
        // Errors name lines of the Dockerfile the daemon saw; point them
        // back at the user's file when the refresh rewrite moved lines.
        Err(SolveError::Failed(msg)) => match &rewritten {
            Some(r) => return Err(anyhow::anyhow!(r.map_message(&msg))),
            None => return Err(SolveError::Failed(msg).into()),
        },
        Err(e) => return Err(e.into()),
    };
    for warning in &outcome.warnings {
        super::say(format_args!("WARNING: {warning}"));
    }
    // A step can fail without failing the build: a cache ref that does not
    // exist yet, a cache export with ignore-error=true.
    if let Some(failed) = &summary.failed_vertex {
        super::say(format_args!(
            "WARNING: {} failed, the build went on without it: {}",
            failed.name, failed.error
        ));
    }
    write_results(&args, &outcome)?;
    if mode != Mode::Quiet {
        super::say(format_args!("{}", report::line(&summary, &outcome, &plan)));
    }
    if mode == Mode::Quiet
        && let Some(id) = image_id(&outcome)
    {
        super::say_out(format_args!("{id}"));
    }
    Ok(0)
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

async fn render(
    mode: Mode,
    mut rx: mpsc::Receiver<rbuild::proto::moby::buildkit::v1::StatusResponse>,
    marks: Option<impl Fn(&str) -> Option<String> + Send + 'static>,
) -> anyhow::Result<rbuild::progress::Summary> {
    let out: Box<dyn std::io::Write + Send> = match mode {
        // rawjson is data for a program: it goes to stdout like buildx's.
        Mode::RawJson => Box::new(super::Lenient::new(std::io::stdout())),
        _ => Box::new(super::Lenient::new(std::io::stderr())),
    };
    let mut progress = Progress::new(mode, out);
    if let Some(marks) = marks {
        progress.mark(marks);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => progress.update(&msg)?,
                None => break,
            },
            _ = tick.tick() => progress.tick()?,
        }
    }
    Ok(progress.finish()?)
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

pub(super) fn image_id(outcome: &BuildOutcome) -> Option<&str> {
    let r = &outcome.exporter_response;
    r.get("containerimage.config.digest")
        .or_else(|| r.get("containerimage.digest"))
        .map(String::as_str)
}

fn write_results(args: &BuildArgs, outcome: &BuildOutcome) -> anyhow::Result<()> {
    if let Some(path) = &args.metadata_file {
        let mut json = flags::metadata_json(&outcome.exporter_response);
        if let Some(map) = json.as_object_mut() {
            map.insert(
                "rbuild.outputs".into(),
                flags::outputs_json(&outcome.outputs),
            );
        }
        let text = serde_json::to_string_pretty(&json)?;
        rbuild::output::write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write --metadata-file {}", path.display()))?;
    }
    if let Some(path) = &args.iidfile {
        let id = image_id(outcome)
            .context("--iidfile: the build produced no image (add -t or an image output)")?;
        rbuild::output::write_atomically(path, id.as_bytes())
            .with_context(|| format!("cannot write --iidfile {}", path.display()))?;
    }
    Ok(())
}
