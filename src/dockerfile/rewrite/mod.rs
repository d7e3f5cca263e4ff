//! The in-memory rewrite served to the frontend instead of the user's file
//! (which is never touched).
//!
//! Before each refreshed step it declares `ARG RBUILD_REFRESH=<value>`:
//! - `<value>` is `<period>.<window>`, `window = floor(unix_secs / period)`:
//!   every runner in the same window computes the same cache key, so the
//!   first runner of a new window rebuilds the step and the others reuse its
//!   layers from the registry cache. Windows are aligned to the Unix epoch
//!   (UTC midnight for `24h`).
//! - A step keyed by its upstream (`upstream` policy) gets `up.<hash>` of
//!   its upstreams' identities instead (`exact`): no window, so it changes
//!   only when an upstream does; what could not be looked up appends the
//!   step's fallback window (`up.<hash>.24h.<window>`, or `24h.<window>`).
//! - `--refresh` uses `<period>.f<unix_secs>` instead: a window of its own
//!   for this build only (runners forcing in the same second agree). Other
//!   builds keep the current window's layers until the next window starts.
//!   Steps marked `never` are not forced.
//! - A FROM with a directive gets the ARG right after it: it renews every
//!   RUN of that stage. On COPY/ADD and other non-RUN steps the ARG renews
//!   the RUN steps after them (BuildKit keys those on content, not env).
//!
//! Line numbers: an ARG needs a line of its own. When the gap between the
//! previous instruction and the step has a free line (the directive comment
//! itself, else a blank line, else another comment) the ARG replaces it, and
//! every line keeps its number. Otherwise the ARG is inserted and
//! [`Rewritten::map_line`] / [`Rewritten::map_message`] map the frontend's
//! line numbers back to the user's file.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use super::exact::UpstreamState;
use super::split::{self, LineKind};
use super::{DetectedStep, DockerfileError, Refresh, analyze_split, exact, format_duration};
use crate::upstream::Resolved;

/// The ARG the rewrite declares; one name for every step, so the name does
/// not depend on line numbers (a new line above a step must not rebuild it).
pub const REFRESH_ARG: &str = "RBUILD_REFRESH";

/// A step whose cache this build renews on schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshedStep {
    /// 1-based line of the step in the user's file.
    pub line: usize,
    /// The instruction as [`DetectedStep::instruction`] shows it.
    pub instruction: String,
    /// What it fetches (`git clone, curl URL`), or `directive` alone.
    pub reason: String,
    /// `Every(period)`; with `--refresh` and no period, `Every(ZERO)`;
    /// `Upstream` with the fallback window in force, for a step keyed by
    /// its upstreams.
    pub refresh: Refresh,
    /// The window index, or `forced` with `--refresh`; empty for a step
    /// keyed by its upstreams alone.
    pub window: String,
    /// For a step keyed by its upstreams: each one as looked up now.
    pub upstreams: Vec<UpstreamState>,
    /// The `RBUILD_REFRESH` value the step gets (its cache key's part).
    pub key: String,
}

/// What the rewrite is for: the flags' policies and what the upstreams
/// are now.
#[derive(Clone, Debug, Default)]
pub struct RefreshOptions {
    /// `--refresh-every`: the window of fetching steps without directive,
    /// and the fallback of upstream steps.
    pub every: Option<Duration>,
    /// `--refresh`: a new window now.
    pub force: bool,
    /// `--refresh-upstream`: fetching steps without directive are keyed by
    /// their upstreams.
    pub upstream: bool,
    /// The build's arguments, to expand `$VAR`s in upstream URLs.
    pub build_args: BTreeMap<String, String>,
    /// The upstreams looked up for this build.
    pub resolved: Resolved,
}

/// A Dockerfile rewritten for a build.
#[derive(Clone, Debug)]
pub struct Rewritten {
    /// The Dockerfile to send to the frontend, with the `ARG` lines added.
    pub text: String,
    /// The steps this build renews, in file order; never empty.
    pub refreshed: Vec<RefreshedStep>,
    /// Rewritten line (index + 1) -> the user's line.
    line_map: Vec<usize>,
    original_lines: usize,
}

impl Rewritten {
    /// The user's line for a line of the rewritten file (1-based; 0 stays
    /// 0, "unknown"). An inserted ARG line maps to the step it serves.
    pub fn map_line(&self, line: usize) -> usize {
        match line {
            0 => 0,
            n if n <= self.line_map.len() => self.line_map[n - 1],
            n => n.saturating_sub(self.line_map.len() - self.original_lines),
        }
    }

    /// True when every line kept its number (no mapping needed).
    pub fn keeps_lines(&self) -> bool {
        self.line_map.iter().enumerate().all(|(i, l)| *l == i + 1)
    }

    /// An error or warning text with each `line N` (as BuildKit writes them:
    /// "dockerfile parse error on line 5", "(line 5)") mapped back.
    pub fn map_message(&self, message: &str) -> String {
        if self.keeps_lines() {
            return message.to_string();
        }
        let re = &*LINE_PATTERN;
        re.replace_all(message, |c: &regex::Captures<'_>| {
            let n: usize = c[2].parse().unwrap_or(0);
            format!("{}{}", &c[1], self.map_line(n))
        })
        .into_owned()
    }
}

/// `line N` in the daemon's messages, compiled once: every error and
/// warning of a rewritten Dockerfile is mapped with it.
static LINE_PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    regex::Regex::new(r"(?i)(\blines? |Dockerfile:)(\d{1,9})").expect("valid regex")
});

/// The rewrite for one build by time windows alone, or `None` when no
/// step is refreshed (build the user's file as is). `now` is injected so
/// tests pick the window.
///
/// # Errors
///
/// As [`prepare_with`].
pub fn prepare(
    text: &str,
    refresh_every: Option<Duration>,
    force: bool,
    now: SystemTime,
) -> Result<Option<Rewritten>, DockerfileError> {
    let options = RefreshOptions {
        every: refresh_every,
        force,
        ..RefreshOptions::default()
    };
    prepare_with(text, &options, now)
}

/// The rewrite for one build, or `None` when no step is refreshed. A step
/// keyed by its upstreams whose sources `options.resolved` lacks falls
/// back to its window.
///
/// # Errors
///
/// The errors of [`analyze`](crate::dockerfile::analyze); [`DockerfileError::Clock`] when
/// `now` is before the Unix epoch.
pub fn prepare_with(
    text: &str,
    options: &RefreshOptions,
    now: SystemTime,
) -> Result<Option<Rewritten>, DockerfileError> {
    if options.every.is_none() && !options.force && !options.upstream && !text.contains("rbuild:") {
        return Ok(None);
    }
    let (s, steps) = analyze_split(text, &options.build_args)?;
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| DockerfileError::Clock)?
        .as_secs();
    let mut refreshed = Vec::new();
    let mut args: Vec<(Anchor, String)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let Some((value, r)) = refresh_value(step, options, secs) else {
            continue;
        };
        let Some(anchor) = anchor(&s, i, step) else {
            continue;
        };
        match args.iter_mut().find(|(a, _)| a.before == anchor.before) {
            // Two refreshes in one gap (a FROM's and its first step's): one
            // ARG whose value carries both.
            Some((_, v)) if !v.split('+').any(|x| x == value) => {
                v.push('+');
                v.push_str(&value);
            }
            Some(_) => {}
            None => args.push((anchor, value)),
        }
        refreshed.push(r);
    }
    if refreshed.is_empty() {
        return Ok(None);
    }
    Ok(Some(render(text, &s, &args, refreshed)))
}

/// The ARG value and the report for one step, if it is refreshed.
fn refresh_value(
    step: &DetectedStep,
    options: &RefreshOptions,
    secs: u64,
) -> Option<(String, RefreshedStep)> {
    let force = options.force;
    let policy = step
        .policy(options.every, options.upstream)
        .map(|p| p.refresh);
    let period = match policy {
        Some(Refresh::Every(d)) => d,
        Some(up @ Refresh::Upstream { .. }) => up.fallback(options.every),
        Some(Refresh::Never) => return None,
        // `--refresh` alone renews the steps that fetch from outside.
        None if force && !step.fetches.is_empty() => Duration::ZERO,
        None => return None,
    };
    // Before the first FROM there is no stage to declare in (and BuildKit
    // rejects a RUN there anyway).
    step.stage?;
    let upstream = matches!(policy, Some(Refresh::Upstream { .. }));
    let name = match (upstream, period.is_zero()) {
        (true, _) => "up".to_string(),
        (false, true) => "now".to_string(),
        (false, false) => format_duration(period),
    };
    let mut upstreams = Vec::new();
    let (window, value) = if force {
        ("forced".to_string(), format!("{name}.f{secs}"))
    } else if upstream {
        let k = exact::key(step, &options.resolved, period, secs);
        upstreams = k.states;
        (k.window.map(|w| w.to_string()).unwrap_or_default(), k.value)
    } else {
        let w = secs / period.as_secs().max(1);
        (w.to_string(), format!("{name}.{w}"))
    };
    let reason = if step.fetches.is_empty() {
        "directive".to_string()
    } else {
        step.fetches.join(", ")
    };
    let refresh = if upstream {
        Refresh::Upstream {
            fallback: Some(period),
        }
    } else {
        Refresh::Every(period)
    };
    let report = RefreshedStep {
        line: step.line,
        instruction: step.instruction.clone(),
        reason,
        refresh,
        window,
        upstreams,
        key: value.clone(),
    };
    Some((value, report))
}

/// Where a step's ARG goes: before physical line `before` (1-based; one
/// past the end for the end of file), in the free lines `gap`.
struct Anchor {
    before: usize,
    gap: std::ops::Range<usize>,
    /// The step's directive line, the preferred line to replace.
    directive: Option<usize>,
    /// The user's line an inserted ARG line maps to.
    owner: usize,
    lowercase: bool,
}

fn anchor(s: &split::Split, i: usize, step: &DetectedStep) -> Option<Anchor> {
    let ins = &s.instructions[i];
    let lowercase = ins.keyword.chars().all(|c| c.is_ascii_lowercase());
    if step.is_from() {
        // Inside the stage: after the FROM, before the stage's next line.
        let before = s
            .instructions
            .get(i + 1)
            .map_or(s.lines.len() + 1, |n| n.start);
        return Some(Anchor {
            before,
            gap: ins.end + 1..before,
            directive: None,
            owner: ins.start,
            lowercase,
        });
    }
    let prev = s.instructions.get(i.checked_sub(1)?)?;
    Some(Anchor {
        before: ins.start,
        gap: prev.end + 1..ins.start,
        directive: step.directive.map(|(line, _)| line),
        owner: ins.start,
        lowercase,
    })
}

/// The free line to overwrite: the directive, else the blank line, else
/// the comment line nearest the step.
fn reusable(s: &split::Split, a: &Anchor) -> Option<usize> {
    if a.directive.is_some_and(|d| a.gap.contains(&d)) {
        return a.directive;
    }
    let kind = |n: usize| s.lines.get(n - 1).copied();
    let mut free = a.gap.clone().rev();
    let blank = free.clone().find(|n| kind(*n) == Some(LineKind::Blank));
    blank.or_else(|| free.find(|n| kind(*n) == Some(LineKind::Comment)))
}

fn render(
    text: &str,
    s: &split::Split,
    args: &[(Anchor, String)],
    refreshed: Vec<RefreshedStep>,
) -> Rewritten {
    let lines = split::physical_lines(text);
    let mut replace = std::collections::BTreeMap::new();
    let mut insert = std::collections::BTreeMap::new();
    for (a, value) in args {
        let kw = if a.lowercase { "arg" } else { "ARG" };
        let line = format!("{kw} {REFRESH_ARG}={value}");
        match reusable(s, a) {
            Some(n) => {
                replace.insert(n, line);
            }
            None => {
                insert.insert(a.before, (line, a.owner));
            }
        }
    }
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + insert.len());
    let mut line_map = Vec::with_capacity(lines.len() + insert.len());
    for n in 1..=lines.len() + 1 {
        if let Some((line, owner)) = insert.remove(&n) {
            out.push(line);
            line_map.push(owner);
        }
        let Some(original) = lines.get(n - 1) else {
            break;
        };
        out.push(replace.remove(&n).unwrap_or_else(|| original.to_string()));
        line_map.push(n);
    }
    let mut text_out = out.join("\n");
    if text.ends_with('\n') {
        text_out.push('\n');
    }
    Rewritten {
        text: text_out,
        refreshed,
        line_map,
        original_lines: lines.len(),
    }
}

/// Annotations for `Progress::mark`: a step name such as
/// `[2/5] RUN git clone https://x` gets `(refresh every 24h, window 20451)`.
/// Names are matched on the instruction text, whitespace collapsed; BuildKit
/// expands `$VAR` in names, so a variable matches any text, and it appends
/// heredoc bodies, so a heredoc step matches on its first line.
pub fn progress_marks(rewritten: &Rewritten) -> impl Fn(&str) -> Option<String> + Send + 'static {
    let steps: Vec<(String, String)> = rewritten
        .refreshed
        .iter()
        .filter(|r| !r.instruction.starts_with("FROM "))
        .map(|r| (r.instruction.clone(), mark(r)))
        .collect();
    let var = &*VAR_PATTERN;
    move |name: &str| {
        let name = name.trim_start();
        let name = match name.strip_prefix('[') {
            Some(rest) => rest.split_once("] ").map_or(name, |(_, n)| n),
            None => name,
        };
        let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
        steps
            .iter()
            .find(|(instruction, _)| name_matches(var, &name, instruction))
            .map(|(_, m)| m.clone())
    }
}

/// `name` is `instruction` with each `$VAR`/`${VAR}` standing for any text
/// (and anything after a heredoc step's first line).
fn name_matches(var: &regex::Regex, name: &str, instruction: &str) -> bool {
    let literals: Vec<&str> = var.split(instruction).collect();
    let open_end = instruction.contains("<<");
    let last = literals.len().saturating_sub(1);
    let mut tail = name;
    for (i, lit) in literals.iter().enumerate() {
        if i == 0 {
            match tail.strip_prefix(lit) {
                Some(t) => tail = t,
                None => return false,
            }
        } else if i == last && !open_end {
            return tail.ends_with(lit);
        } else {
            match tail.find(lit) {
                Some(at) => tail = &tail[at + lit.len()..],
                None => return false,
            }
        }
    }
    open_end || tail.is_empty()
}

/// `$VAR` and `${VAR...}`, compiled once.
static VAR_PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    // Invariant: a constant, valid pattern.
    regex::Regex::new(r"\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)").expect("valid regex")
});

fn mark(r: &RefreshedStep) -> String {
    match r.refresh {
        Refresh::Upstream { .. } if r.window == "forced" => "(refresh forced)".to_string(),
        Refresh::Upstream { .. } => r.upstream_mark(),
        Refresh::Every(d) if r.window == "forced" && d.is_zero() => "(refresh forced)".to_string(),
        Refresh::Every(d) if r.window == "forced" => {
            format!("(refresh every {}, forced)", format_duration(d))
        }
        Refresh::Every(d) => format!(
            "(refresh every {}, window {})",
            format_duration(d),
            r.window
        ),
        Refresh::Never => String::new(),
    }
}

#[cfg(test)]
mod tests;
