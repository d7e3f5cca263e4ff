//! Dockerfile analysis for freshness: which steps fetch from outside the
//! build (and so go stale in the cache), from where ([`Upstream`]), what
//! refresh policy each has, and an in-memory rewrite that renews those
//! steps' cache when their upstream moved (keyed by what it is now, see
//! [`crate::upstream`]) or once per time window.
//!
//! BuildKit has no per-step no-cache (moby/buildkit#1213). A declared `ARG`
//! becomes part of the environment of every later `RUN` in its stage, and so
//! of their cache keys, even when unused; the step numbering (`[2/5]`) and
//! the step names do not count or show it. So the rewrite declares
//! `ARG RBUILD_REFRESH=<period>.<window>` right before each refreshed step:
//! the steps before it keep their keys, it and the steps after it get a key
//! that every runner computes alike within a window — or, for a step keyed
//! by its upstream, `ARG RBUILD_REFRESH=up.<hash of the identities>`, alike
//! for every runner that sees the same upstream. See [`Rewritten`] and
//! [`prepare_with`].
//!
//! - [`analyze`]: every step with its line, what it fetches (and from
//!   where: [`Upstream`]), its directive.
//! - [`prepare`]: the rewritten Dockerfile for a build, or `None`.
//! - [`progress_marks`]: annotations for the progress display.

mod detect;
mod exact;
pub(crate) mod images;
mod policy;
mod rewrite;
mod shell;
mod sources;
mod split;
mod vars;

use std::collections::BTreeMap;
use std::time::Duration;

pub use exact::states as upstream_states;
pub use policy::{
    DEFAULT_FALLBACK, PolicySource, Refresh, RefreshPolicy, format_duration, parse_duration,
};
pub use rewrite::{
    RefreshOptions, RefreshedStep, Rewritten, UpstreamState, prepare, prepare_with, progress_marks,
};
pub use sources::Upstream;

/// A Dockerfile larger than this is not analyzed (BuildKit's own limit for
/// the frontend's input is of the same order).
pub const MAX_DOCKERFILE_BYTES: usize = 8 << 20;

/// Why a Dockerfile could not be analyzed or rewritten.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerfileError {
    /// A refresh period that is malformed or out of range.
    #[error(transparent)]
    Duration(#[from] crate::duration::DurationError),
    /// A `# rbuild:` directive the user must fix.
    #[error("line {line}: {message}")]
    Directive {
        /// The directive's 1-based line in the user's file.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The file exceeds [`MAX_DOCKERFILE_BYTES`] and is not analyzed.
    #[error("the Dockerfile is {size} bytes; rbuild analyzes at most {max}")]
    TooLarge {
        /// The file's size in bytes.
        size: usize,
        /// The limit in bytes ([`MAX_DOCKERFILE_BYTES`]).
        max: usize,
    },
    /// The clock passed to [`prepare`] reads before the Unix epoch, so no
    /// refresh window can be computed.
    #[error("the system clock reads before 1970: cannot compute the refresh window")]
    Clock,
}

/// One instruction of the Dockerfile, as `rbuild check` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectedStep {
    /// 1-based first physical line in the user's file.
    pub line: usize,
    /// 1-based last physical line (the same as `line` unless the
    /// instruction continues or has a heredoc).
    pub end_line: usize,
    /// 0-based stage (counting `FROM`s); `None` before the first `FROM`.
    pub stage: Option<usize>,
    /// `RUN git clone ...`: keyword upper-cased, continuations joined,
    /// whitespace collapsed (BuildKit's step name, before `$VAR` expansion).
    pub instruction: String,
    /// Why the step fetches from outside; empty when it does not.
    pub fetches: Vec<String>,
    /// What it fetches from: the sources rbuild can look up (a git
    /// repository and ref, a URL) and the fetches it cannot. For `ADD URL`
    /// the URLs, though the step is no fetching step (BuildKit checks them).
    pub upstreams: Vec<Upstream>,
    /// A `# rbuild:refresh=` directive above the step: (its line, policy).
    pub directive: Option<(usize, Refresh)>,
}

impl DetectedStep {
    /// Whether the step is a `FROM`, which starts a new stage.
    pub fn is_from(&self) -> bool {
        self.instruction.starts_with("FROM ")
    }

    /// Whether BuildKit itself checks this step's upstream on every build:
    /// `ADD URL` (an HTTP request with the ETags it has, then the content's
    /// digest as the key) and `ADD` of a git repository (its ref resolved).
    pub fn checked_by_buildkit(&self) -> bool {
        self.instruction.starts_with("ADD ") && !self.upstreams.is_empty()
    }

    /// The policy in force: the directive, else `--refresh-upstream`, else
    /// `--refresh-every` when the step fetches from outside, else none
    /// (cached like any step).
    pub fn policy(&self, refresh_every: Option<Duration>, upstream: bool) -> Option<RefreshPolicy> {
        if let Some((line, refresh)) = self.directive {
            return Some(RefreshPolicy {
                refresh,
                source: PolicySource::Directive { line },
            });
        }
        if self.fetches.is_empty() {
            return None;
        }
        if upstream {
            return Some(RefreshPolicy {
                refresh: Refresh::Upstream { fallback: None },
                source: PolicySource::UpstreamFlag,
            });
        }
        refresh_every.map(|d| RefreshPolicy {
            refresh: Refresh::Every(d),
            source: PolicySource::Flag,
        })
    }

    /// The sources to look up for this step: those of a step refreshed by
    /// its upstream, and with `all` those of every fetching step (what
    /// `rbuild check` shows).
    pub fn sources(
        &self,
        refresh_every: Option<Duration>,
        upstream: bool,
        all: bool,
    ) -> Vec<crate::upstream::Source> {
        let keyed = matches!(
            self.policy(refresh_every, upstream).map(|p| p.refresh),
            Some(Refresh::Upstream { .. })
        );
        if !(keyed || all && (!self.fetches.is_empty() || self.checked_by_buildkit())) {
            return Vec::new();
        }
        self.upstreams
            .iter()
            .filter_map(|u| match u {
                Upstream::Source(s) => Some(s.clone()),
                Upstream::Opaque { .. } => None,
            })
            .collect()
    }
}

/// Every instruction with its detection and directive. Errors only for a
/// malformed or misplaced `# rbuild:` directive, or an oversized file: any
/// Dockerfile BuildKit accepts is analyzed.
///
/// # Errors
///
/// [`DockerfileError::Directive`] for a malformed or misplaced `# rbuild:` directive (a bad
/// period is [`DockerfileError::Duration`]); [`DockerfileError::TooLarge`] when `text` is
/// over [`MAX_DOCKERFILE_BYTES`].
pub fn analyze(text: &str) -> Result<Vec<DetectedStep>, DockerfileError> {
    analyze_with(text, &BTreeMap::new())
}

/// [`analyze`], with the build arguments the build passes (they expand
/// the `$VAR`s in upstream URLs).
///
/// # Errors
///
/// As [`analyze`].
pub fn analyze_with(
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Vec<DetectedStep>, DockerfileError> {
    Ok(analyze_split(text, build_args)?.1)
}

fn analyze_split(
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<(split::Split, Vec<DetectedStep>), DockerfileError> {
    if text.len() > MAX_DOCKERFILE_BYTES {
        return Err(DockerfileError::TooLarge {
            size: text.len(),
            max: MAX_DOCKERFILE_BYTES,
        });
    }
    let s = split::split(text);
    let lines = split::physical_lines(text);
    let directives = attach_directives(&s, &lines)?;
    let mut stage = None;
    let mut scope = vars::Scope::new(build_args);
    let steps = s
        .instructions
        .iter()
        .zip(directives)
        .map(|(ins, directive)| {
            if ins.is("FROM") {
                stage = Some(stage.map_or(0, |n| n + 1));
            }
            let found = if ins.is("RUN") {
                run(ins, scope.vars())
            } else if ins.is("ADD") {
                detect::Detected {
                    reasons: Vec::new(),
                    upstreams: add(ins, scope.vars()),
                }
            } else {
                detect::Detected::default()
            };
            scope.apply(ins);
            DetectedStep {
                line: ins.start,
                end_line: ins.end,
                stage,
                instruction: display(ins),
                fetches: found.reasons,
                upstreams: found.upstreams,
                directive,
            }
        })
        .collect();
    Ok((s, steps))
}

/// The URLs an `ADD` fetches, `$VAR`s expanded.
fn add(ins: &split::Instruction, vars: &vars::Vars) -> Vec<Upstream> {
    sources::add_urls(&ins.args)
        .iter()
        .map(|word| match vars.expand(word) {
            Ok(url) => Upstream::Source(sources::add_source(&url)),
            Err(var) => Upstream::Opaque {
                fetch: "ADD".into(),
                reason: format!("its URL uses {var}, which rbuild cannot expand"),
            },
        })
        .collect()
}

/// Each instruction's directive: one in the comment block directly above
/// it. A directive anywhere else is an error, not ignored.
fn attach_directives(
    s: &split::Split,
    lines: &[&str],
) -> Result<Vec<Option<(usize, Refresh)>>, DockerfileError> {
    use split::LineKind;
    let mut found = Vec::new();
    for (i, kind) in s.lines.iter().enumerate() {
        if lines[i].trim_start().starts_with('#')
            && let Some(refresh) = policy::directive(lines[i], i + 1)?
        {
            found.push((i + 1, *kind, refresh));
        }
    }
    let mut out = vec![None; s.instructions.len()];
    for (line, kind, refresh) in found {
        let mut below = line; // 0-based index of the line after it
        while s.lines.get(below) == Some(&LineKind::Comment) {
            below += 1;
        }
        let target = match (kind, s.lines.get(below)) {
            (LineKind::Comment, Some(LineKind::Instruction(n))) => *n,
            _ => {
                return Err(DockerfileError::Directive {
                    line,
                    message: "`# rbuild:refresh=` must be on a comment line directly above \
                              the step it applies to"
                        .to_string(),
                });
            }
        };
        if let Some((first, _)) = out[target] {
            return Err(DockerfileError::Directive {
                line,
                message: format!("a second refresh directive for one step (first on line {first})"),
            });
        }
        out[target] = Some((line, refresh));
    }
    Ok(out)
}

fn display(ins: &split::Instruction) -> String {
    let args: Vec<&str> = ins.args.split_whitespace().collect();
    format!("{} {}", ins.keyword.to_ascii_uppercase(), args.join(" "))
        .trim_end()
        .to_string()
}

/// What a RUN instruction fetches: flags stripped, exec or shell form read
/// with dockerfile-parser (its grammar is narrower than BuildKit's, so the
/// raw text is the fallback), heredoc bodies when they are the script.
fn run(ins: &split::Instruction, vars: &vars::Vars) -> detect::Detected {
    let mut rest = ins.args.trim_start();
    let mut offline = false;
    while rest.starts_with("--") {
        let (flag, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        offline |= flag == "--network=none";
        rest = tail.trim_start();
    }
    if offline {
        return detect::Detected::default();
    }
    let parsed = dockerfile_parser::Dockerfile::parse(&format!("RUN {rest}"));
    let expr = parsed.ok().and_then(|d| {
        d.instructions
            .into_iter()
            .next()
            .and_then(|i| i.into_run())
            .map(|r| r.expr)
    });
    if let Some(dockerfile_parser::ShellOrExecExpr::Exec(array)) = expr {
        let words: Vec<String> = array.elements.into_iter().map(|e| e.content).collect();
        return detect::exec_in(&words, vars);
    }
    let mut script = rest.to_string();
    let first = rest.split_whitespace().next().unwrap_or_default();
    let body_is_script = first.starts_with("<<")
        || ["sh", "bash", "ash", "dash", "zsh"]
            .contains(&first.rsplit('/').next().unwrap_or(first));
    if body_is_script {
        for body in &ins.heredocs {
            script.push('\n');
            script.push_str(body);
        }
    }
    detect::script_in(&script, vars)
}

#[cfg(test)]
mod tests;
