//! `rbuild check [PATH]`: the Dockerfile's steps, which of them fetch from
//! outside the build, the refresh policy each would get, and for each
//! fetching step its upstreams as they are now and whether the next build
//! re-runs it ([`super::check_upstreams`]). Reads the file and asks the
//! upstreams (`git ls-remote`, HTTP `HEAD`); no daemon is contacted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::check_upstreams;
use super::flags;
use super::plan::{DockerfileInput, locate_dockerfile};
use anyhow::{Context, bail};
use clap::Args;
use rbuild::dockerfile::{self, DetectedStep, PolicySource, Refresh, RefreshOptions};
use rbuild::report::LastKeys;

/// Longest step text shown in the table; the line number finds the rest.
const STEP_WIDTH: usize = 56;
/// Wide enough for `upstream, else every 24h (--refresh-upstream)`.
const POLICY_WIDTH: usize = 45;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Build context directory whose Dockerfile is checked.
    #[arg(value_name = "PATH", default_value = ".")]
    pub context: PathBuf,

    /// The Dockerfile (default: PATH/Dockerfile); `-` reads it from stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Show the policy `rbuild build --refresh-every DURATION` would give the
    /// steps that fetch from outside (30s, 90m, 6h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = dockerfile::parse_duration)]
    pub refresh_every: Option<Duration>,

    /// Show the policy `rbuild build --refresh-upstream` would give them.
    #[arg(long)]
    pub refresh_upstream: bool,

    /// Build-time variable, as the build gets it (expands `$VAR` in upstream URLs).
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,

    /// A previous `rbuild build --report` file: NEXT BUILD compares each step's
    /// key now with the one that build used.
    #[arg(long, value_name = "FILE")]
    pub last_report: Option<PathBuf>,

    /// Also write what check shows as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let (name, text) = read_dockerfile(args.file.as_deref(), &args.context)?;
    let build_args: BTreeMap<String, String> =
        flags::build_args(&args.build_args, |k| std::env::var(k).ok())?
            .into_iter()
            .collect();
    let steps = dockerfile::analyze_with(&text, &build_args).with_context(|| name.clone())?;
    let last = match &args.last_report {
        Some(path) => Some(LastKeys::read(path).context("--last-report")?),
        None => None,
    };
    let (every, upstream) = (args.refresh_every, args.refresh_upstream);
    let sources = steps.iter().flat_map(|s| s.sources(every, upstream, true));
    let resolved = rbuild::upstream::resolve(sources, rbuild::upstream::DEFAULT_TIMEOUT).await;
    let options = RefreshOptions {
        every,
        force: false,
        upstream,
        build_args,
        resolved,
    };
    let refreshed = dockerfile::prepare_with(&text, &options, SystemTime::now())
        .with_context(|| name.clone())?
        .map(|r| r.refreshed)
        .unwrap_or_default();
    let rows = check_upstreams::rows(&steps, &options, &refreshed, last.as_ref());
    let mut out = std::io::stdout().lock();
    write_table(&mut out, &steps, every, upstream)?;
    check_upstreams::write(&mut out, &rows)?;
    if let Some(path) = &args.report {
        let json = check_upstreams::json(&name, &rows);
        rbuild::output::write_atomically(path, json.to_string().as_bytes())
            .with_context(|| format!("cannot write --report {}", path.display()))?;
    }
    Ok(0)
}

/// The Dockerfile's display name and text: `-` is stdin, else FILE, else
/// PATH/Dockerfile. Not UTF-8 is an error (BuildKit rejects it too).
pub(super) fn read_dockerfile(
    file: Option<&Path>,
    context: &Path,
) -> anyhow::Result<(String, String)> {
    let (name, bytes) = match locate_dockerfile(file, context)? {
        DockerfileInput::Stdin(data) => ("Dockerfile (stdin)".to_string(), data),
        DockerfileInput::File(path) => {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if size > dockerfile::MAX_DOCKERFILE_BYTES as u64 {
                bail!(
                    "Dockerfile {} is larger than {} bytes",
                    path.display(),
                    dockerfile::MAX_DOCKERFILE_BYTES
                );
            }
            let data = std::fs::read(&path)
                .with_context(|| format!("cannot read Dockerfile {}", path.display()))?;
            (path.display().to_string(), data)
        }
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name} is not UTF-8 text (byte {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok((name, text))
}

fn write_table(
    out: &mut impl Write,
    steps: &[DetectedStep],
    refresh_every: Option<Duration>,
    upstream: bool,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<7} {:<STEP_WIDTH$}  {:<POLICY_WIDTH$}  FETCHES FROM OUTSIDE",
        "LINE", "STEP", "REFRESH"
    )?;
    let (mut fetching, mut refreshed) = (0, 0);
    for (i, step) in steps.iter().enumerate() {
        if step.is_from() && i > 0 {
            writeln!(out)?;
        }
        let lines = if step.end_line > step.line {
            format!("{}-{}", step.line, step.end_line)
        } else {
            step.line.to_string()
        };
        let policy = policy_text(step, refresh_every, upstream);
        if policy.starts_with("every") || policy.starts_with("upstream") {
            refreshed += 1;
        }
        let step_text = shorten(
            &rbuild::upstream::redact_urls(&step.instruction),
            STEP_WIDTH,
        );
        let row = if step.fetches.is_empty() {
            format!("{lines:<7} {step_text:<STEP_WIDTH$}  {policy}")
        } else {
            fetching += 1;
            let fetches = step.fetches.join(", ");
            format!("{lines:<7} {step_text:<STEP_WIDTH$}  {policy:<POLICY_WIDTH$}  {fetches}")
        };
        writeln!(out, "{}", row.trim_end())?;
    }
    writeln!(out)?;
    write!(
        out,
        "{fetching} of {} steps fetch from outside; {refreshed} refreshed",
        steps.len()
    )?;
    if refresh_every.is_none() && !upstream && fetching > 0 {
        write!(out, " (try --refresh-upstream)")?;
    }
    writeln!(out)
}

pub(super) fn policy_text(
    step: &DetectedStep,
    refresh_every: Option<Duration>,
    upstream: bool,
) -> String {
    match step.policy(refresh_every, upstream) {
        Some(p) => {
            let from = match p.source {
                PolicySource::Directive { line } => format!("directive, line {line}"),
                PolicySource::Flag => "--refresh-every".to_string(),
                PolicySource::UpstreamFlag => "--refresh-upstream".to_string(),
            };
            let refresh = match p.refresh {
                // The window it falls back to, as the build will use it.
                Refresh::Upstream { fallback: None } => Refresh::Upstream {
                    fallback: Some(p.refresh.fallback(refresh_every)),
                },
                r => r,
            };
            format!("{refresh} ({from})")
        }
        None if step.checked_by_buildkit() => "checked by BuildKit".to_string(),
        None if !step.fetches.is_empty() => "not refreshed".to_string(),
        None => "-".to_string(),
    }
}

/// At most `width` characters, cut on a character boundary.
pub(super) fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(width - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_fetches_and_policies() {
        let text = "FROM a\nRUN git clone https://x\n# rbuild:refresh=never\nRUN apk add curl\n\
                    # rbuild:refresh=6h\nCOPY . /src\nRUN make\n\
                    # rbuild:refresh=upstream\nRUN curl -o f https://y/f\n";
        let steps = dockerfile::analyze(text).unwrap();
        let mut out = Vec::new();
        write_table(&mut out, &steps, Some(Duration::from_secs(86_400)), false).unwrap();
        let out = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = out.lines().collect();
        assert!(rows[0].starts_with("LINE    STEP"), "{out}");
        assert!(rows[1].starts_with("1       FROM a"), "{out}");
        let columns = |row: &str| -> Vec<String> {
            row.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect()
        };
        let tail = |row: &str, n: usize| {
            let c = columns(row);
            c[c.len().saturating_sub(n)..].to_vec()
        };
        assert_eq!(
            tail(rows[2], 2),
            ["every 24h (--refresh-every)", "git clone"]
        );
        assert_eq!(
            tail(rows[3], 2),
            ["never (directive, line 3)", "apk add (unpinned)"]
        );
        assert_eq!(
            tail(rows[4], 2),
            ["COPY . /src", "every 6h (directive, line 5)"]
        );
        assert_eq!(tail(rows[5], 2), ["RUN make", "-"]);
        assert_eq!(
            tail(rows[6], 2),
            ["upstream, else every 24h (directive, line 8)", "curl URL"]
        );
        assert_eq!(
            rows.last(),
            Some(&"3 of 6 steps fetch from outside; 3 refreshed")
        );
    }

    #[test]
    fn without_the_flag_detected_steps_are_not_refreshed() {
        let steps = dockerfile::analyze("FROM a\nRUN curl https://x\n").unwrap();
        let mut out = Vec::new();
        write_table(&mut out, &steps, None, false).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("  not refreshed"), "{out}");
        assert!(
            out.ends_with(
                "1 of 2 steps fetch from outside; 0 refreshed (try --refresh-upstream)\n"
            )
        );
        assert_eq!(
            shorten(&"é".repeat(100), STEP_WIDTH).chars().count(),
            STEP_WIDTH
        );
        let mut out = Vec::new();
        write_table(&mut out, &steps, None, true).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("upstream, else every 24h (--refresh-upstream)"),
            "{out}"
        );
    }
}
