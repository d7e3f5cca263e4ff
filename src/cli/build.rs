//! `rbuild [build] PATH`: flags -> [`rbuild::Build`], then `Client::build_with`
//! with live progress, then the files the user asked for (metadata, image id).

use std::io::IsTerminal;

use anyhow::Context;
use rbuild::progress::Mode;
use rbuild::{BuildError, BuildOptions, BuildResult};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;
pub use super::build_args::{BuildArgs, ProgressArg};
use super::flags;
use super::plan::build_from_flags;
use super::report;

/// Exit code of a build stopped by SIGINT/SIGTERM, as shells report it.
pub const EXIT_CANCELED: u8 = 130;

pub async fn run(global: &GlobalArgs, args: BuildArgs) -> anyhow::Result<u8> {
    // Everything the user typed is checked before the daemon is contacted.
    for warning in args.legacy.check()? {
        super::say(format_args!("WARNING: {warning}"));
    }
    let build = build_from_flags(&args)?;
    if args.print_request {
        let (addr, _) = global.endpoint()?;
        let engine = matches!(addr, rbuild::Address::Docker(_));
        let preview = build.preview(engine).map_err(user_error)?;
        super::say_out(format_args!("{}", serde_json::to_string_pretty(&preview)?));
        return Ok(0);
    }
    build.validate().map_err(user_error)?;
    tracing::debug!("plan ready");
    let pool = super::pool(global).await?;
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
    let (placement, result) = {
        // Dropped at the end of the block: the renderer ends with the
        // last sender.
        let options = BuildOptions::default().events(tx).cancel(cancel.clone());
        let placed = pool.build_with(&build, options).await;
        // A lone daemon is no news.
        let placements: Vec<rbuild::pool::Placement> = match pool.is_single() {
            true => Vec::new(),
            false => placed.placements().into_iter().cloned().collect(),
        };
        (placements, placed.result)
    };
    let placement: Vec<&rbuild::pool::Placement> = placement.iter().collect();
    signals.abort();
    let summaries = renderer.await.context("progress renderer stopped")??;
    // One per platform when a multi-platform build was split over nodes.
    let summary = report::combined(summaries.into_iter().flatten());
    tracing::debug!(?summary, "build finished");
    if let Some(path) = &args.report {
        let report = rbuild::report::BuildReport::new(
            &summary,
            result.as_ref().ok(),
            &build,
            started.elapsed(),
            &placement,
        );
        rbuild::output::write_atomically(path, serde_json::to_string(&report)?.as_bytes())
            .with_context(|| format!("cannot write --report {}", path.display()))?;
    }

    super::github::step_summary(&[super::github::Row {
        name: "build",
        summary: &summary,
        ok: result.is_ok(),
        upload: result
            .as_ref()
            .ok()
            .map(|r| (r.upload.files_sent, r.upload.bytes_sent)),
    }]);
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(BuildError::Canceled) => {
            super::say(format_args!("build canceled"));
            return Ok(EXIT_CANCELED);
        }
        Err(e @ BuildError::CallUnsupported { .. }) => {
            return Err(super::call::unsupported_hint(e));
        }
        Err(e) => {
            super::github::annotate(&e, &dockerfile_shown(&args));
            return Err(user_error(e));
        }
    };
    for warning in &outcome.warnings {
        super::say(format_args!("WARNING: {warning}"));
    }
    write_results(&args, &outcome)?;
    if let Some(answer) = &outcome.call {
        let spec = super::call::spec(args.call.as_deref(), args.check.as_deref())?;
        let shown = super::call::dockerfile_name(args.file.as_deref(), args.context.as_deref());
        return super::call::print(&spec, answer, &shown);
    }
    super::call::annotate_build(&outcome, Some(&dockerfile_shown(&args)));
    if mode != Mode::Quiet {
        super::say(format_args!("{}", report::line(&outcome, &placement)));
    }
    if mode == Mode::Quiet
        && args.progress != ProgressArg::None
        && let Some(id) = outcome.image_id()
    {
        super::say_out(format_args!("{id}"));
    }
    Ok(0)
}

/// The Dockerfile as the user named it, for annotations.
fn dockerfile_shown(args: &BuildArgs) -> std::path::PathBuf {
    match (&args.file, &args.context) {
        (Some(f), _) if f != std::path::Path::new("-") => f.clone(),
        (_, Some(ctx)) if ctx != std::path::Path::new("-") => ctx.join("Dockerfile"),
        _ => std::path::PathBuf::from("Dockerfile"),
    }
}

/// A library error as the user should read it: where the cause is one of
/// their flags, the flag is named.
pub(super) fn user_error(e: BuildError) -> anyhow::Error {
    use rbuild::buildspec::InvalidBuild;
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
        BuildError::Invalid(e @ InvalidBuild::AttestUnsupported { kind, .. }) => {
            anyhow::anyhow!("{e} (--{kind}=false)")
        }
        BuildError::Invalid(e @ InvalidBuild::AcrossNodes { .. }) => {
            let hint = match &e {
                InvalidBuild::AcrossNodes { reason } => split_hint(reason),
                _ => "",
            };
            anyhow::anyhow!("{e}{hint}")
        }
        e @ BuildError::MissingCacheBackend { .. } => {
            anyhow::anyhow!("{e} (point --addr or --builder at one)")
        }
        e @ BuildError::CacheExport { .. } => anyhow::anyhow!(
            "{e} (check that the cache is reachable; with ignore-error=true in --cache-to, \
             or with --cache, a failed cache export only warns)"
        ),
        e @ BuildError::DaemonSilent { .. } => {
            anyhow::anyhow!("{e} (--keepalive sets the ping interval)")
        }
        e @ BuildError::NoNode(_) => {
            anyhow::anyhow!(
                "{e} (check the nodes with `rbuild info`; --connect-timeout sets how long each may take)"
            )
        }
        e => e.into(),
    }
}

/// The flags that make a multi-platform build fit a split over nodes.
fn split_hint(reason: &rbuild::buildspec::SplitRefusal) -> &'static str {
    use rbuild::buildspec::SplitRefusal;
    match reason {
        SplitRefusal::ImageNotPushed => {
            " (--push or -o type=registry, or one node with --route-key)"
        }
        SplitRefusal::LocalOutput => {
            " (drop --load and file outputs, or pick one node with --addr)"
        }
        SplitRefusal::NothingPushed => {
            " (add --push with -t NAME, or -o type=cacheonly to only warm the cache)"
        }
        _ => "",
    }
}

fn progress_mode(args: &BuildArgs) -> Mode {
    if args.quiet {
        return Mode::Quiet;
    }
    resolve_progress(args.progress)
}

/// `auto` is tty on a terminal, else plain.
pub(super) fn resolve_progress(progress: ProgressArg) -> Mode {
    match progress {
        ProgressArg::Auto if std::io::stderr().is_terminal() => Mode::Tty,
        ProgressArg::Auto | ProgressArg::Plain => Mode::Plain,
        ProgressArg::Tty => Mode::Tty,
        ProgressArg::Rawjson => Mode::RawJson,
        ProgressArg::Quiet | ProgressArg::None => Mode::Quiet,
    }
}

/// SIGINT or SIGTERM cancels the build on the daemon.
pub(super) async fn cancel_on_signal(cancel: CancellationToken) {
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
        // A call's metadata is its answer, as buildx writes it.
        let mut json = match &outcome.call {
            Some(answer) => answer.metadata_json(),
            None => outcome.metadata_json_with(super::plan::metadata_provenance()),
        };
        if let (Some(warnings), Some(map)) = (
            super::call::metadata_warnings(outcome),
            json.as_object_mut(),
        ) {
            map.insert("buildx.build.warnings".into(), warnings);
        }
        let text = serde_json::to_string_pretty(&json)?;
        rbuild::output::write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write --metadata-file {}", path.display()))?;
    }
    if let Some(path) = &args.iidfile {
        let id = outcome
            .image_id()
            .context("--iidfile: the build produced no image (add -t or an image output)")?;
        rbuild::output::write_atomically(path, id.as_str().as_bytes())
            .with_context(|| format!("cannot write --iidfile {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rbuild::buildspec::{AttestKind, InvalidBuild, SplitRefusal};

    use super::*;

    fn shown(e: InvalidBuild) -> String {
        rbuild::error_chain(user_error(BuildError::Invalid(e)).as_ref())
    }

    #[test]
    fn the_cli_names_the_flags_the_library_leaves_out() {
        let load = shown(InvalidBuild::AcrossNodes {
            reason: SplitRefusal::LocalOutput,
        });
        assert!(
            load.contains("across nodes") && load.contains("--load"),
            "{load}"
        );
        for reason in [SplitRefusal::NothingPushed, SplitRefusal::ImageNotPushed] {
            let push = shown(InvalidBuild::AcrossNodes { reason });
            assert!(
                push.contains("across nodes") && push.contains("--push"),
                "{push}"
            );
        }
        let attest = shown(InvalidBuild::AttestUnsupported {
            kind: AttestKind::Provenance,
            reason: "this daemon cannot store it".into(),
        });
        assert!(
            attest.ends_with("; or turn it off (--provenance=false)"),
            "{attest}"
        );
        let cache = shown(InvalidBuild::Spec(
            rbuild::CacheEntry::shorthand("r/c,mode=max").unwrap_err(),
        ));
        assert!(cache.ends_with("(--cache-from/--cache-to)"), "{cache}");
    }
}
