//! The cache key of a step refreshed by its upstream (`upstream`
//! policy): a hash of what each of its sources is now, so the step re-runs
//! exactly when one of them moved, and every runner that sees the same
//! upstream computes the same key.
//!
//! A source that could not be looked up, or a fetch rbuild cannot look up
//! at all (`apt-get update`), would make that key silently stale; so the
//! step's window is added to it instead, and [`RefreshedStep::warning`]
//! says which upstream and why.

use std::fmt::Write as _;

use sha2::Digest as _;

use super::rewrite::RefreshedStep;
use super::{DetectedStep, Upstream, format_duration};
use crate::upstream::{Identity, Resolved};

/// One upstream of a refreshed step, as this build saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamState {
    /// The upstream, credentials redacted: `git https://host/repo main`, a
    /// URL, or the fetch rbuild cannot look up (`apt-get update`).
    pub upstream: String,
    /// Whether it is a source rbuild looks up (else a fetch it cannot,
    /// such as `apt-get update`).
    pub source: bool,
    /// What it is now, when it was looked up.
    pub identity: Option<Identity>,
    /// Why it was not, otherwise.
    pub problem: Option<String>,
}

/// The key of an upstream step: its ARG value, its window when it fell
/// back, and each upstream's state.
pub(super) struct UpstreamKey {
    pub value: String,
    pub window: Option<u64>,
    pub states: Vec<UpstreamState>,
}

/// The key of `step` at Unix time `secs`, falling back to windows of
/// `period` (at least 1s) for what is not known.
pub(super) fn key(
    step: &DetectedStep,
    resolved: &Resolved,
    period: std::time::Duration,
    secs: u64,
) -> UpstreamKey {
    let states = states(step, resolved);
    let known: Vec<String> = states
        .iter()
        .filter_map(|s| s.identity.as_ref().map(Identity::key_text))
        .collect();
    let mut value = String::new();
    if !known.is_empty() {
        value.push_str("up.");
        value.push_str(&digest(&known));
    }
    let fell_back = states.iter().any(|s| s.identity.is_none());
    let window = fell_back.then(|| secs / period.as_secs().max(1));
    if let Some(w) = window {
        if !value.is_empty() {
            value.push('.');
        }
        let _ = write!(value, "{}.{w}", format_duration(period));
    }
    UpstreamKey {
        value,
        window,
        states,
    }
}

/// Each upstream of `step` as `resolved` has it; a step with none gets one
/// entry saying so (its key must still fall back to a window).
pub fn states(step: &DetectedStep, resolved: &Resolved) -> Vec<UpstreamState> {
    let mut states: Vec<UpstreamState> = step
        .upstreams
        .iter()
        .map(|u| match u {
            Upstream::Source(source) => {
                let (identity, problem) = match resolved.get(source) {
                    Some(Ok(id)) => (Some(id.clone()), None),
                    Some(Err(e)) => (None, Some(e.to_string())),
                    None => (None, Some("not looked up".to_string())),
                };
                UpstreamState {
                    upstream: source.to_string(),
                    source: true,
                    identity,
                    problem,
                }
            }
            Upstream::Opaque { fetch, reason } => UpstreamState {
                upstream: fetch.clone(),
                source: false,
                identity: None,
                problem: Some(reason.clone()),
            },
        })
        .collect();
    if states.is_empty() {
        states.push(UpstreamState {
            upstream: "the step".into(),
            source: false,
            identity: None,
            problem: Some("it fetches nothing rbuild can look up".into()),
        });
    }
    states
}

/// 16 hex digits of the identities' SHA-256: the rewrite carries no URL,
/// ETag or anything else a user would not want in an image's history.
fn digest(identities: &[String]) -> String {
    let hash = sha2::Sha256::digest(identities.join("\n").as_bytes());
    hash.iter().take(8).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl RefreshedStep {
    /// One line for a step that fell back to its window: the step, each
    /// upstream that was not looked up and why, and the window used.
    /// `None` when every upstream was looked up (or the step is not keyed
    /// by its upstreams).
    pub fn warning(&self) -> Option<String> {
        let missing: Vec<String> = self
            .upstreams
            .iter()
            .filter_map(|s| {
                let problem = s.problem.as_ref()?;
                Some(if s.source {
                    format!("cannot look up {} ({problem})", s.upstream)
                } else {
                    format!("{}: {problem}", s.upstream)
                })
            })
            .collect();
        if missing.is_empty() {
            return None;
        }
        let period = match self.refresh {
            super::Refresh::Upstream {
                fallback: Some(d), ..
            } => format_duration(d),
            _ => return None,
        };
        Some(format!(
            "line {} `{}`: {}; renewed every {period} instead (window {})",
            self.line,
            crate::upstream::redact_urls(&self.instruction),
            missing.join(", "),
            self.window
        ))
    }

    /// The progress note for an upstream-keyed step.
    pub(super) fn upstream_mark(&self) -> String {
        let ids: Vec<String> = self
            .upstreams
            .iter()
            .filter_map(|s| s.identity.as_ref().map(Identity::short))
            .collect();
        match (self.window.as_str(), ids.is_empty()) {
            ("", _) => format!("(upstream {})", ids.join(", ")),
            (w, true) => format!("(upstream not looked up: window {w})"),
            (w, false) => format!(
                "(upstream {}, partly not looked up: window {w})",
                ids.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{LookupError, Source};
    use std::time::Duration;

    fn step(upstreams: Vec<Upstream>) -> DetectedStep {
        DetectedStep {
            line: 3,
            end_line: 3,
            stage: Some(0),
            instruction: "RUN git clone https://u:tok@h/r".into(),
            fetches: vec!["git clone".into()],
            upstreams,
            directive: None,
        }
    }

    #[test]
    fn keys_follow_identities_and_fall_back_to_the_window() {
        let git = Source::Git {
            url: "https://u:tok@h/r".into(),
            reference: None,
        };
        let day = Duration::from_secs(86_400);
        let s = step(vec![Upstream::Source(git.clone())]);
        let mut resolved = Resolved::default();
        resolved.insert(git.clone(), Ok(Identity::Commit("a".repeat(40))));
        let one = key(&s, &resolved, day, 5 * 86_400);
        let later = key(&s, &resolved, day, 50 * 86_400);
        assert!(
            one.value.starts_with("up.") && one.value.len() == 19,
            "{}",
            one.value
        );
        assert_eq!(one.value, later.value, "no window in an exact key");
        assert_eq!(one.window, None);
        resolved.insert(git.clone(), Ok(Identity::Commit("b".repeat(40))));
        assert_ne!(key(&s, &resolved, day, 5 * 86_400).value, one.value);

        resolved.insert(
            git.clone(),
            Err(LookupError::Timeout(Duration::from_secs(10))),
        );
        let down = key(&s, &resolved, day, 5 * 86_400);
        assert_eq!(down.value, "24h.5");
        assert_eq!(down.window, Some(5));
        assert_eq!(down.states[0].upstream, "git https://***@h/r HEAD");

        // Half known: the known part and the window.
        let mixed = step(vec![
            Upstream::Source(git.clone()),
            Upstream::Opaque {
                fetch: "apt-get update".into(),
                reason: "rbuild cannot look up what it fetches".into(),
            },
        ]);
        resolved.insert(git, Ok(Identity::Commit("a".repeat(40))));
        let k = key(&mixed, &resolved, day, 5 * 86_400);
        assert_eq!(k.value, format!("{}.24h.5", one.value));
        assert!(key(&step(vec![]), &resolved, day, 0).value == "24h.0");
    }
}
