//! The second part of `rbuild check`: for each fetching step its upstreams
//! as they are now, the key the next build gives it, and whether that
//! build re-runs it. "Re-runs" is only certain against the key a build
//! used: `--last-report` (a `rbuild build --report` file) gives it; without
//! one, check says what the key depends on.

use std::io::Write;

use rbuild::dockerfile::{self, DetectedStep, Refresh, RefreshOptions, RefreshedStep};
use rbuild::report::{CheckReport, CheckStep, LastKeys, UpstreamReport};
use serde_json::Value;

use super::check::{policy_text, shorten};

/// Widths of the UPSTREAM and NOW columns.
const UPSTREAM_WIDTH: usize = 52;
const NOW_WIDTH: usize = 26;

/// One fetching step in the upstream table.
pub struct Row {
    line: usize,
    step: String,
    policy: String,
    fetches: Vec<String>,
    upstreams: Vec<dockerfile::UpstreamState>,
    key: Option<String>,
    next: String,
}

/// A row for each fetching step (and each `ADD` of a URL).
pub fn rows(
    steps: &[DetectedStep],
    options: &RefreshOptions,
    refreshed: &[RefreshedStep],
    last: Option<&LastKeys>,
) -> Vec<Row> {
    steps
        .iter()
        .filter(|s| !s.fetches.is_empty() || s.checked_by_buildkit())
        .map(|s| {
            let r = refreshed.iter().find(|r| r.line == s.line);
            let shown = rbuild::upstream::redact_urls(&s.instruction);
            Row {
                line: s.line,
                policy: policy_text(s, options.every, options.upstream),
                fetches: s.fetches.clone(),
                upstreams: dockerfile::upstream_states(s, &options.resolved),
                key: r.map(|r| r.key.clone()),
                next: next_build(s, r, last.map(|l| l.key(s.line, &shown))),
                step: shown,
            }
        })
        .collect()
}

/// Whether the next build re-runs the step. `last` is `Some` with a
/// report: `Some(key)` the step's key in it, `None` not in it.
fn next_build(
    step: &DetectedStep,
    r: Option<&RefreshedStep>,
    last: Option<Option<&str>>,
) -> String {
    if step.checked_by_buildkit() {
        return "BuildKit checks it: re-runs when the content changed".into();
    }
    let Some(r) = r else {
        return match step.directive {
            Some((_, Refresh::Never)) => "cached (refresh=never)".into(),
            _ => "cached: not refreshed, goes stale".into(),
        };
    };
    let upstream = matches!(r.refresh, Refresh::Upstream { .. });
    let exact = upstream && r.window.is_empty();
    match last {
        Some(Some(old)) if old == r.key => "cached: same key as the last build".into(),
        Some(Some(_)) if exact => "re-runs: its upstream moved since the last build".into(),
        Some(Some(_)) if upstream => format!(
            "re-runs: upstream not looked up, window {} (see NOW)",
            r.window
        ),
        Some(Some(_)) => format!("re-runs: new window {}", r.window),
        Some(None) => "runs: not in the last build's report".into(),
        None if exact => "runs once per upstream state (see NOW)".into(),
        None if upstream => format!("runs once in window {}: upstream not looked up", r.window),
        None => format!("runs once in window {}", r.window),
    }
}

pub fn write(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<7} {:<UPSTREAM_WIDTH$}  {:<NOW_WIDTH$}  NEXT BUILD",
        "LINE", "UPSTREAM (looked up now)", "NOW"
    )?;
    for row in rows {
        for (i, u) in row.upstreams.iter().enumerate() {
            let line = if i == 0 {
                row.line.to_string()
            } else {
                String::new()
            };
            let now = match &u.identity {
                Some(id) => shorten(&short(id), NOW_WIDTH),
                None => "not looked up".to_string(),
            };
            let next = if i == 0 { row.next.as_str() } else { "" };
            let upstream = shorten(&u.upstream, UPSTREAM_WIDTH);
            let text = format!("{line:<7} {upstream:<UPSTREAM_WIDTH$}  {now:<NOW_WIDTH$}  {next}");
            writeln!(out, "{}", text.trim_end())?;
            if let Some(problem) = &u.problem {
                writeln!(out, "{:<7}   why: {problem}", "")?;
            }
        }
    }
    Ok(())
}

/// `commit 4ee0f5a0b7d9`, `etag "abc"`, `modified DATE`.
fn short(id: &rbuild::upstream::Identity) -> String {
    use rbuild::upstream::Identity;
    match id {
        Identity::Commit(_) => format!("commit {}", id.short()),
        Identity::ETag(t) => format!("etag {t}"),
        Identity::Modified { .. } => format!("modified {}", id.short()),
    }
}

/// What check showed, as the library's report (`--report`).
pub fn report(dockerfile: &str, rows: &[Row]) -> CheckReport {
    CheckReport::new(
        dockerfile.to_string(),
        rows.iter()
            .map(|r| {
                CheckStep::new(
                    r.line,
                    r.step.clone(),
                    r.policy.clone(),
                    r.fetches.clone(),
                    r.upstreams.iter().map(UpstreamReport::of).collect(),
                    r.key.clone(),
                    r.next.clone(),
                )
            })
            .collect(),
    )
}

/// [`report`] as JSON.
pub fn json(dockerfile: &str, rows: &[Row]) -> Value {
    serde_json::to_value(report(dockerfile, rows)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild::upstream::{Identity, LookupError, Resolved, Source};
    use std::time::{Duration, UNIX_EPOCH};

    const TEXT: &str = "FROM a\nRUN git clone https://h/r /r\nRUN apt-get update\n\
                        RUN curl -o /f https://u:tok@h/f\nADD https://h/a.tgz /a\n";

    fn check(resolved: Resolved, last: Option<&LastKeys>) -> (String, Value) {
        let steps = dockerfile::analyze(TEXT).unwrap();
        let options = RefreshOptions {
            upstream: true,
            resolved,
            ..RefreshOptions::default()
        };
        let now = UNIX_EPOCH + Duration::from_secs(20_000 * 86_400);
        let refreshed = dockerfile::prepare_with(TEXT, &options, now)
            .unwrap()
            .unwrap()
            .refreshed;
        let rows = rows(&steps, &options, &refreshed, last);
        let mut out = Vec::new();
        write(&mut out, &rows).unwrap();
        (String::from_utf8(out).unwrap(), json("Dockerfile", &rows))
    }

    fn resolved(commit: char) -> Resolved {
        let mut r = Resolved::default();
        let git = Source::Git {
            url: "https://h/r".into(),
            reference: None,
        };
        r.insert(git, Ok(Identity::Commit(commit.to_string().repeat(40))));
        let file = Source::Http {
            url: "https://u:tok@h/f".into(),
        };
        r.insert(file, Err(LookupError::Credentials("HTTP 401".into())));
        r
    }

    #[test]
    fn upstreams_their_identity_and_the_next_build() {
        let (out, json) = check(resolved('a'), None);
        assert!(!out.contains("tok"), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].starts_with("LINE    UPSTREAM (looked up now)"),
            "{out}"
        );
        assert!(
            lines[2].starts_with("2       git https://h/r HEAD"),
            "{out}"
        );
        assert!(lines[2].contains("commit aaaaaaaaaaaa"), "{out}");
        assert!(
            lines[2].ends_with("runs once per upstream state (see NOW)"),
            "{out}"
        );
        assert!(lines[3].starts_with("3       apt-get update"), "{out}");
        assert!(
            lines[3].ends_with("runs once in window 20000: upstream not looked up"),
            "{out}"
        );
        assert_eq!(
            lines[4].trim(),
            "why: rbuild cannot look up what it fetches"
        );
        assert!(lines[5].starts_with("4       https://***@h/f"), "{out}");
        assert_eq!(lines[6].trim(), "why: needs credentials: HTTP 401");
        assert!(lines[7].starts_with("5       https://h/a.tgz"), "{out}");
        assert!(lines[7].ends_with("BuildKit checks it: re-runs when the content changed"));
        assert_eq!(
            json["steps"][0]["policy"],
            "upstream, else every 24h (--refresh-upstream)"
        );

        // Compared with what a build used: only the moved upstream re-runs.
        let report = serde_json::json!({"freshness": json["steps"].clone()});
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), report.to_string()).unwrap();
        let last = LastKeys::read(path.path()).unwrap();
        let (same, _) = check(resolved('a'), Some(&last));
        assert!(
            same.lines()
                .nth(2)
                .unwrap()
                .ends_with("cached: same key as the last build"),
            "{same}"
        );
        let (moved, _) = check(resolved('b'), Some(&last));
        let moved: Vec<&str> = moved.lines().collect();
        assert!(
            moved[2].ends_with("re-runs: its upstream moved since the last build"),
            "{moved:?}"
        );
        assert!(
            moved[3].ends_with("cached: same key as the last build"),
            "{moved:?}"
        );
    }
}
