//! CI-native output on GitHub Actions (`GITHUB_ACTIONS=true`): a failed
//! step becomes an `::error` annotation on its Dockerfile line, a warning
//! of the Dockerfile's checks a `::warning` on its line, and the
//! end-of-build report a table in `$GITHUB_STEP_SUMMARY`.

use std::io::Write;
use std::path::Path;

use rbuild::BuildError;
use rbuild::progress::Summary;

fn on_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Workflow command data must not hold `%`, CR or LF unescaped; property
/// values must not hold `:` or `,` either.
fn escape(s: &str, property: bool) -> String {
    let mut out = s
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// `::error file=F,line=N,endLine=M,title=STEP::MESSAGE` for a failed
/// step with a Dockerfile location (stdout, where the runner reads them).
pub(super) fn annotate(err: &BuildError, dockerfile: &Path) {
    if !on_actions() {
        return;
    }
    let Some(step) = err.step() else {
        return;
    };
    let mut props = Vec::new();
    if let Some(loc) = &step.location {
        props.push(format!(
            "file={}",
            escape(&dockerfile.display().to_string(), true)
        ));
        props.push(format!("line={}", loc.line));
        props.push(format!("endLine={}", loc.end_line));
    }
    if let Some(name) = &step.step {
        props.push(format!("title={}", escape(name, true)));
    }
    super::say_out(format_args!(
        "::error {}::{}",
        props.join(","),
        escape(&step.message, false)
    ));
}

/// `::warning title=T,file=F,line=N::MESSAGE` (stdout, where the runner
/// reads them); the file relative to `GITHUB_WORKSPACE` when it is inside.
pub(super) fn warning(title: &str, dockerfile: &Path, line: Option<u32>, message: &str) {
    if !on_actions() {
        return;
    }
    let mut props = Vec::new();
    if !title.is_empty() {
        props.push(format!("title={}", escape(title, true)));
    }
    props.push(format!(
        "file={}",
        escape(&in_workspace(dockerfile).display().to_string(), true)
    ));
    if let Some(line) = line {
        props.push(format!("line={line}"));
    }
    super::say_out(format_args!(
        "::warning {}::{}",
        props.join(","),
        escape(message, false)
    ));
}

/// `path` relative to the workspace the runner checked out, as an
/// annotation's file must be; as given when it is elsewhere.
fn in_workspace(path: &Path) -> std::path::PathBuf {
    let workspace =
        std::env::var_os("GITHUB_WORKSPACE").and_then(|w| Path::new(&w).canonicalize().ok());
    let full = path.canonicalize().ok();
    match (workspace, full) {
        (Some(w), Some(f)) if f.starts_with(&w) => {
            f.strip_prefix(&w).map(Path::to_path_buf).unwrap_or(f)
        }
        _ => std::path::PathBuf::from(super::call::clean(path)),
    }
}

/// One row of the summary table.
pub(super) struct Row<'a> {
    pub name: &'a str,
    pub summary: &'a Summary,
    pub ok: bool,
    /// Files and bytes of context sent, when the build got that far.
    pub upload: Option<(u64, u64)>,
}

/// Appends the report as a Markdown table to `$GITHUB_STEP_SUMMARY`.
pub(super) fn step_summary(rows: &[Row<'_>]) {
    use rbuild::progress::units::{bytes, secs};
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|_| on_actions()) else {
        return;
    };
    let mut text = String::from(
        "| build | status | steps | cached | executed | executed time | context sent |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let s = r.summary;
        let sent = r.upload.map_or("-".to_string(), |(files, b)| {
            format!("{files} files ({})", bytes(b))
        });
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}s | {sent} |\n",
            r.name.replace('|', "\\|"),
            if r.ok { "succeeded" } else { "failed" },
            s.total,
            s.cached,
            s.executed,
            secs(s.executed_time),
        ));
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        super::say(format_args!(
            "WARNING: cannot write the step summary to {}: {e}",
            Path::new(&path).display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape("50% done\nnext", false), "50%25 done%0Anext");
        assert_eq!(escape("[2/3] RUN a, b: c", true), "[2/3] RUN a%2C b%3A c");
    }
}
