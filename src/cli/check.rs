//! `rbuild check [PATH]`: the Dockerfile's steps, which of them fetch from
//! outside the build, and the refresh policy each would get. Reads the file
//! only; no daemon is contacted.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::plan::{DockerfileInput, locate_dockerfile};
use anyhow::{Context, bail};
use clap::Args;
use rbuild::dockerfile::{self, DetectedStep, PolicySource};

/// Longest step text shown in the table; the line number finds the rest.
const STEP_WIDTH: usize = 56;
/// Wide enough for `every 24h (directive, line 120)`.
const POLICY_WIDTH: usize = 30;

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
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let (name, text) = read_dockerfile(args.file.as_deref(), &args.context)?;
    let steps = dockerfile::analyze(&text).with_context(|| name.clone())?;
    let mut out = std::io::stdout().lock();
    write_table(&mut out, &steps, args.refresh_every)?;
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
        let policy = policy_text(step, refresh_every);
        if policy.starts_with("every") {
            refreshed += 1;
        }
        let step_text = shorten(&step.instruction);
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
    if refresh_every.is_none() && fetching > 0 {
        write!(out, " (try --refresh-every 24h)")?;
    }
    writeln!(out)
}

fn policy_text(step: &DetectedStep, refresh_every: Option<Duration>) -> String {
    match step.policy(refresh_every) {
        Some(p) => {
            let from = match p.source {
                PolicySource::Directive { line } => format!("directive, line {line}"),
                PolicySource::Flag => "--refresh-every".to_string(),
            };
            format!("{} ({from})", p.refresh)
        }
        None if !step.fetches.is_empty() => "not refreshed".to_string(),
        None => "-".to_string(),
    }
}

/// At most `STEP_WIDTH` characters, cut on a character boundary.
fn shorten(s: &str) -> String {
    if s.chars().count() <= STEP_WIDTH {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(STEP_WIDTH - 3).collect();
    cut.push_str("...");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_fetches_and_policies() {
        let text = "FROM a\nRUN git clone https://x\n# rbuild:refresh=never\nRUN apk add curl\n\
                    # rbuild:refresh=6h\nCOPY . /src\nRUN make\n";
        let steps = dockerfile::analyze(text).unwrap();
        let mut out = Vec::new();
        write_table(&mut out, &steps, Some(Duration::from_secs(86_400))).unwrap();
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
            rows.last(),
            Some(&"2 of 5 steps fetch from outside; 2 refreshed")
        );
    }

    #[test]
    fn without_the_flag_detected_steps_are_not_refreshed() {
        let steps = dockerfile::analyze("FROM a\nRUN curl https://x\n").unwrap();
        let mut out = Vec::new();
        write_table(&mut out, &steps, None).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("  not refreshed"), "{out}");
        assert!(
            out.ends_with(
                "1 of 2 steps fetch from outside; 0 refreshed (try --refresh-every 24h)\n"
            )
        );
        assert_eq!(shorten(&"é".repeat(100)).chars().count(), STEP_WIDTH);
    }
}
