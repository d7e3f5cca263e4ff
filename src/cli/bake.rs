//! `rbuild bake [TARGET|GROUP...]`: bake files -> builds -> one
//! `Client::build_all` with one progress view; then each target's result.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rbuild::bake::{self, Definition, Override, Target};
use rbuild::progress::Mode;
use rbuild::{BuildError, BuildOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::GlobalArgs;
use super::build::{EXIT_CANCELED, cancel_on_signal, resolve_progress, user_error};
use super::build_args::ProgressArg;
use super::report;

#[derive(Debug, Args)]
pub struct BakeArgs {
    /// Targets or groups to build (default: the `default` group).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Bake file (HCL, JSON or compose), repeatable, later files overriding
    /// earlier ones; `-` reads stdin. Default: compose.yaml, compose.yml,
    /// docker-compose.yml, docker-compose.yaml, docker-bake.json,
    /// docker-bake.hcl, docker-bake.override.json, docker-bake.override.hcl
    /// in this directory, every one that exists.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Override a target attribute: PATTERN.KEY=VALUE (PATTERN may use `*`).
    #[arg(long = "set", value_name = "PATTERN.KEY=VALUE")]
    pub set: Vec<String>,

    /// Print the resolved definition as JSON (buildx's shape); build nothing.
    #[arg(long)]
    pub print: bool,

    /// List the targets or the variables; build nothing.
    #[arg(long, value_enum)]
    pub list: Option<ListWhat>,

    /// Push every target's image (its outputs become type=registry).
    #[arg(long)]
    pub push: bool,

    /// Load every target's image into the Docker Engine (type=docker).
    #[arg(long)]
    pub load: bool,

    /// Do not use the build cache for any target.
    #[arg(long)]
    pub no_cache: bool,

    /// Always look for newer base images.
    #[arg(long)]
    pub pull: bool,

    /// Provenance for every target: true, false or mode=min|max (shorthand
    /// for --set=*.attest=type=provenance,...).
    #[arg(long, value_name = "true|false|mode=...")]
    pub provenance: Option<String>,

    /// SBOM for every target: true, false or generator=IMAGE (shorthand for
    /// --set=*.attest=type=sbom,...).
    #[arg(long, value_name = "true|false|generator=...")]
    pub sbom: Option<String>,

    /// Shared registry cache for every target: each imports from and
    /// exports (mode=max) to REPO:TARGET.
    #[arg(long, value_name = "REPO")]
    pub cache: Option<String>,

    /// Also send registry credentials for HOST when the daemon asks, for every target
    /// (repeatable; `*`: every host, as buildx does).
    #[arg(long = "auth-host", value_name = "HOST")]
    pub auth_hosts: Vec<String>,

    /// Progress output: auto, tty, plain, rawjson, quiet.
    #[arg(long, env = "BUILDKIT_PROGRESS", value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Write each target's result metadata (buildx-compatible JSON keyed by
    /// target) to FILE.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Ask every target's frontend instead of building: check, outline,
    /// targets (sets each target's `call`); `,format=json` prints one JSON
    /// document for all targets.
    #[arg(long, value_name = "NAME[,format=json]")]
    pub call: Option<String>,

    /// Shorthand for --call=check.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub check: Option<String>,

    /// When the daemon's Dockerfile frontend lacks a target's call, ask again
    /// with a newer frontend image that the daemon pulls (default IMAGE:
    /// docker/dockerfile:1.8.1, pinned by digest).
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "IMAGE",
          default_missing_value = rbuild::subrequests::FALLBACK_FRONTEND)]
    pub call_fallback: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ListWhat {
    Targets,
    Variables,
}

pub async fn run(global: &GlobalArgs, args: BakeArgs) -> anyhow::Result<u8> {
    let files = bake_files(&args.files)?;
    let def = Definition::load(&files, |k| std::env::var(k).ok())?;
    if let Some(what) = args.list {
        list(&def, what);
        return Ok(0);
    }
    let mut overrides = args
        .set
        .iter()
        .map(|s| s.parse::<Override>())
        .collect::<Result<Vec<_>, _>>()?;
    for (flag, key) in [(args.no_cache, "no-cache"), (args.pull, "pull")] {
        if flag {
            overrides.push(Override {
                pattern: "*".into(),
                key: key.into(),
                value: "true".into(),
            });
        }
    }
    let call = super::call::spec(args.call.as_deref(), args.check.as_deref())?;
    if let Some(c) = &call.call {
        // buildx: `--call X` is `--set *.call=X`, check spelled lint.
        overrides.push(Override {
            pattern: "*".into(),
            key: "call".into(),
            value: c.name().to_string(),
        });
    }
    for (kind, value) in [("provenance", &args.provenance), ("sbom", &args.sbom)] {
        if let Some(value) = value {
            overrides.push(Override {
                pattern: "*".into(),
                key: "attest".into(),
                value: attest_shorthand(kind, value),
            });
        }
    }
    let mut chosen = def.resolve(&args.targets, &overrides)?;
    if args.push || args.load {
        // --push and --load replace the targets' outputs, as the
        // `--set *.output=type=registry|docker` they stand for (newer buildx
        // keeps other outputs and adds push=true instead).
        for (_, t) in &mut chosen {
            t.output.clear();
            if args.push {
                t.output.push("type=registry".into());
            }
            if args.load {
                t.output.push("type=docker".into());
            }
        }
    }
    if args.print {
        super::say_out(format_args!("{}", print_json(&chosen, &args.targets)));
        return Ok(0);
    }
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let with_defaults = super::plan::default_attestations()?;
    let cache_env = rbuild::cache::CacheEnv::from_env();
    let mut builds: Vec<rbuild::Build> = Definition::builds(&chosen, &cwd)?
        .into_iter()
        .map(|b| {
            let b = b
                .default_attestations(with_defaults)
                .cache_env(cache_env.clone());
            let b = match &args.call_fallback {
                Some(image) => b.call_fallback(image),
                None => b,
            };
            args.auth_hosts.iter().fold(b, |b, h| b.auth_host(h))
        })
        .collect();
    if let Some(repo) = &args.cache {
        let last = repo.rsplit('/').next().unwrap_or(repo);
        if repo.contains('@') || last.contains(':') {
            anyhow::bail!(
                "--cache {repo:?}: give a repository without a tag; each target uses REPO:TARGET"
            );
        }
        builds = builds
            .into_iter()
            .map(|b| {
                let name = b.name().unwrap_or("default").to_string();
                b.cache(format!("{repo}:{name}"))
            })
            .collect();
    }
    for b in &builds {
        b.validate().map_err(|e| {
            anyhow::anyhow!("target {:?}: {}", b.name().unwrap_or(""), target_error(e))
        })?;
    }
    let print = super::call::BakePrint {
        spec: call,
        resolved: serde_json::from_str(&print_json(&chosen, &args.targets)).unwrap_or_default(),
        targets: chosen
            .iter()
            .map(|(n, t)| super::call::BakeTarget::of(n, t))
            .collect(),
    };
    execute(global, &args, &builds, print).await
}

async fn execute(
    global: &GlobalArgs,
    args: &BakeArgs,
    builds: &[rbuild::Build],
    print: super::call::BakePrint,
) -> anyhow::Result<u8> {
    let pool = super::pool(global).await?;
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let mode = resolve_progress(args.progress);
    let out: Box<dyn std::io::Write + Send> = match mode {
        Mode::RawJson => Box::new(super::Lenient::new(std::io::stdout())),
        _ => Box::new(super::Lenient::new(std::io::stderr())),
    };
    let (tx, rx) = mpsc::channel(1024);
    let renderer = tokio::spawn(rbuild::progress::render(mode, out, rx));
    let placed = {
        let options = BuildOptions::default().events(tx).cancel(cancel.clone());
        pool.build_all(builds, options).await
    };
    // A lone daemon is no news.
    let single = pool.is_single();
    let mut placements: Vec<Vec<rbuild::pool::Placement>> = Vec::new();
    let mut progress: Vec<Vec<usize>> = Vec::new();
    let mut results = Vec::new();
    for p in placed {
        placements.push(match single {
            true => Vec::new(),
            false => p.placements().into_iter().cloned().collect(),
        });
        progress.push(p.progress);
        results.push(p.result);
    }
    signals.abort();
    let summaries = renderer.await.context("progress renderer stopped")??;
    // A target split over nodes has one summary per platform.
    let target_summaries: Vec<Option<rbuild::progress::Summary>> = progress
        .iter()
        .map(|slots| {
            let parts: Vec<_> = slots
                .iter()
                .filter_map(|&i| summaries.get(i).cloned().flatten())
                .collect();
            (!parts.is_empty()).then(|| report::combined(parts.into_iter()))
        })
        .collect();
    let rows: Vec<super::github::Row<'_>> = builds
        .iter()
        .zip(&results)
        .enumerate()
        .filter_map(|(i, (b, r))| {
            Some(super::github::Row {
                name: b.name().unwrap_or("default"),
                summary: target_summaries.get(i)?.as_ref()?,
                ok: r.is_ok(),
                upload: r
                    .as_ref()
                    .ok()
                    .map(|r| (r.upload.files_sent, r.upload.bytes_sent)),
            })
        })
        .collect();
    super::github::step_summary(&rows);

    let mut failed = 0;
    let mut canceled = false;
    let mut metadata = serde_json::Map::new();
    let mut answers = Vec::new();
    let mut warnings = Vec::new();
    for ((build, result), placement) in builds.iter().zip(results).zip(&placements) {
        let name = build.name().unwrap_or("default");
        match result {
            Ok(r) => {
                for w in &r.warnings {
                    super::say(format_args!("WARNING: [{name}] {w}"));
                }
                warnings.extend(super::call::metadata_warnings(&r));
                super::call::annotate_build(&r, build.dockerfile_file().as_ref());
                if let Some(answer) = r.call {
                    metadata.insert(name.to_string(), answer.metadata_json());
                    answers.push((name.to_string(), answer));
                    continue;
                }
                if mode != Mode::Quiet {
                    super::say(format_args!(
                        "[{name}] {}",
                        report::line(&r, &placement.iter().collect::<Vec<_>>())
                    ));
                }
                metadata.insert(
                    name.to_string(),
                    r.metadata_json_with(super::plan::metadata_provenance()),
                );
            }
            Err(BuildError::Canceled) => {
                super::say(format_args!("[{name}] build canceled"));
                canceled = true;
            }
            Err(BuildError::Dependency {
                name: ctx,
                index,
                reason,
            }) => {
                failed += 1;
                let dep = builds.get(index).and_then(|b| b.name()).unwrap_or("?");
                super::say(format_args!(
                    "error: target {name:?}: context {ctx:?} needs target {dep:?}, but {reason}"
                ));
            }
            Err(e @ BuildError::CallUnsupported { .. }) => {
                failed += 1;
                let e = super::call::unsupported_hint(e);
                super::say(format_args!("error: target {name:?}: {e}"));
            }
            Err(e) => {
                failed += 1;
                if let Some(file) = build.dockerfile_file() {
                    super::github::annotate(&e, &file);
                }
                let e = target_error(e);
                super::say(format_args!(
                    "error: target {name:?}: {}",
                    rbuild::error_chain(e.as_ref())
                ));
            }
        }
    }
    if let Some(all) = super::call::merged_warnings(warnings) {
        metadata.insert("buildx.build.warnings".into(), all);
    }
    if let Some(path) = &args.metadata_file {
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(metadata))?;
        rbuild::output::write_atomically(path, text.as_bytes())
            .with_context(|| format!("cannot write --metadata-file {}", path.display()))?;
    }
    let called = print.answers(answers);
    Ok(if canceled {
        EXIT_CANCELED
    } else if failed > 0 {
        1
    } else {
        called
    })
}

/// A target's error as the user should read it: as the build command's,
/// except where the fix is in the bake file rather than a flag.
fn target_error(e: BuildError) -> anyhow::Error {
    use rbuild::buildspec::InvalidBuild;
    match e {
        BuildError::Invalid(InvalidBuild::PushWithoutName) => {
            anyhow::anyhow!("pushing needs an image name: give the target tags")
        }
        e => user_error(e),
    }
}

/// The files named, or the default ones that exist here.
fn bake_files(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let found: Vec<PathBuf> = bake::DEFAULT_FILES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    if !found.is_empty() {
        return Ok(found);
    }
    anyhow::bail!(
        "no bake file here (looked for {}); pass -f FILE",
        bake::DEFAULT_FILES.join(", ")
    )
}

fn list(def: &Definition, what: ListWhat) {
    match what {
        ListWhat::Targets => {
            for (name, members) in &def.groups {
                super::say_out(format_args!("{name}\tgroup: {}", members.join(", ")));
            }
            for name in def.targets.keys() {
                super::say_out(format_args!("{name}\ttarget"));
            }
        }
        ListWhat::Variables => {
            for (name, value) in &def.variables {
                super::say_out(format_args!("{name}\t{value}"));
            }
        }
    }
}

/// buildx's `--print` shape: the requested group and every chosen target
/// with its context and Dockerfile defaults filled in.
fn print_json(chosen: &[(String, Target)], asked: &[String]) -> String {
    let names: Vec<&str> = chosen.iter().map(|(n, _)| n.as_str()).collect();
    let mut targets = serde_json::Map::new();
    for (name, t) in chosen {
        let mut t = t.clone();
        t.context.get_or_insert_with(|| ".".to_string());
        if t.dockerfile_inline.is_none() {
            t.dockerfile.get_or_insert_with(|| "Dockerfile".to_string());
        }
        targets.insert(name.clone(), serde_json::to_value(&t).unwrap_or_default());
    }
    // buildx names the group `default` and lists what was asked for.
    let listed: Vec<&str> = if asked.is_empty() {
        names
    } else {
        asked.iter().map(String::as_str).collect()
    };
    let json = serde_json::json!({
        "group": { "default": { "targets": listed } },
        "target": targets,
    });
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

/// buildx bake's `--provenance`/`--sbom` as an `attest` entry: a boolean
/// turns the kind on or off, anything else is its options.
fn attest_shorthand(kind: &str, value: &str) -> String {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => format!("type={kind}"),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => format!("type={kind},disabled=true"),
        options => format!("type={kind},{options}"),
    }
}
