//! Refresh policies: `--refresh-upstream` or `--refresh-every DURATION` for
//! the steps the detector flags, and the `# rbuild:refresh=upstream`,
//! `# rbuild:refresh=6h` or `# rbuild:refresh=never` comment directive on
//! the line(s) directly above any step, which wins over the flags.

use std::fmt;
use std::time::Duration;

use super::DockerfileError;
use crate::duration::{self, DurationError};

/// How often a step's cached layers are renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Rebuilt once per window of this length (windows start at multiples
    /// of it since the Unix epoch, so every runner agrees on them).
    Every(Duration),
    /// Keyed by what its upstreams are now (a commit, an ETag), looked up
    /// before each build; a step whose upstream cannot be looked up is
    /// renewed once per window of `fallback`, else of `--refresh-every`,
    /// else of [`DEFAULT_FALLBACK`].
    Upstream {
        /// The window the directive names (`upstream,6h`).
        fallback: Option<Duration>,
    },
    /// Cached like any other step, even with `--refresh`.
    Never,
}

/// The window of an upstream step that cannot be looked up, when neither
/// its directive nor `--refresh-every` names one: a day, the shortest
/// window that does not rebuild a runner's image on every push.
pub const DEFAULT_FALLBACK: Duration = Duration::from_secs(86_400);

impl Refresh {
    /// The window an upstream step falls back to.
    pub fn fallback(&self, refresh_every: Option<Duration>) -> Duration {
        match self {
            Refresh::Every(d) => *d,
            Refresh::Upstream { fallback } => {
                fallback.or(refresh_every).unwrap_or(DEFAULT_FALLBACK)
            }
            Refresh::Never => DEFAULT_FALLBACK,
        }
    }
}

impl fmt::Display for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refresh::Every(d) => write!(f, "every {}", format_duration(*d)),
            Refresh::Upstream { fallback: None } => f.write_str("upstream"),
            Refresh::Upstream { fallback: Some(d) } => {
                write!(f, "upstream, else every {}", format_duration(*d))
            }
            Refresh::Never => f.write_str("never"),
        }
    }
}

/// Where a step's policy comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// A `# rbuild:refresh=` comment on this (1-based) line.
    Directive {
        /// The directive's 1-based line in the user's file.
        line: usize,
    },
    /// `--refresh-every`, applied because the step fetches from outside.
    Flag,
    /// `--refresh-upstream`, applied because the step fetches from outside.
    UpstreamFlag,
}

/// A step's effective policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// How often the step is renewed.
    pub refresh: Refresh,
    /// Whether that came from a directive or from a flag.
    pub source: PolicySource,
}

/// The largest period accepted: far beyond any useful window, and small
/// enough that no arithmetic on it overflows.
const MAX_SECS: u64 = 100 * 365 * 86_400;

/// A refresh period: the shared syntax ([`crate::duration`], e.g. `30s`,
/// `6h`, `1h30m`), at least one second (a window must have a length) and at
/// most 100 years.
///
/// # Errors
///
/// [`DockerfileError::Duration`] when `value` is malformed, zero or longer than 100 years.
pub fn parse_duration(value: &str) -> Result<Duration, DockerfileError> {
    let period = duration::parse(value)?;
    if period.is_zero() {
        return Err(DurationError::new(value, "must be at least 1s").into());
    }
    if period.as_secs() > MAX_SECS {
        return Err(DurationError::new(value, "longer than 100 years").into());
    }
    Ok(period)
}

/// The shortest exact spelling in one unit: `24h`, `7d`, `90m`, `45s`.
/// Whole days above one day, so `24h` stays `24h` as users write it.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s > 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Reads a comment line. `Ok(None)`: not an rbuild directive. A comment
/// that looks like one (`# rbuild:NAME=...`) but is malformed is an error
/// naming the line, so a typo never silently disables a policy.
pub(crate) fn directive(comment: &str, line: usize) -> Result<Option<Refresh>, DockerfileError> {
    let Some(body) = comment.trim().strip_prefix('#') else {
        return Ok(None);
    };
    let Some(rest) = body.trim_start().strip_prefix("rbuild:") else {
        return Ok(None);
    };
    let Some((key, value)) = rest.split_once('=') else {
        return Ok(None);
    };
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Ok(None);
    }
    let err = |message: String| DockerfileError::Directive { line, message };
    if key != "refresh" {
        return Err(err(format!(
            "unknown directive `rbuild:{key}` (rbuild knows \
             `# rbuild:refresh=upstream[,DURATION]|DURATION|never`)"
        )));
    }
    let value = value.trim();
    let window = |v: &str| {
        parse_duration(v.trim()).map_err(|e| err(format!("`# rbuild:refresh={value}`: {e}")))
    };
    match value.split_once(',') {
        None if value == "never" => Ok(Some(Refresh::Never)),
        None if value == "upstream" => Ok(Some(Refresh::Upstream { fallback: None })),
        None => window(value).map(|d| Some(Refresh::Every(d))),
        Some((head, fallback)) if head.trim() == "upstream" => {
            window(fallback).map(|d| Some(Refresh::Upstream { fallback: Some(d) }))
        }
        Some(_) => Err(err(format!(
            "`# rbuild:refresh={value}`: only `upstream` takes a fallback window (`upstream,6h`)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, u64)] = &[
            ("30s", 30),
            ("90m", 5_400),
            ("6h", 21_600),
            ("24h", 86_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h30m", 5_400),
            (" 1d ", 86_400),
        ];
        for (s, secs) in ok {
            assert_eq!(
                parse_duration(s).unwrap(),
                Duration::from_secs(*secs),
                "{s}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("6", "no unit"),
            ("h", "number before"),
            ("6x", "unknown unit"),
            ("0s", "at least 1s"),
            ("-1h", "unknown unit"),
            ("1.5h", "unknown unit"),
            ("99999999999999999999s", "too large"),
            ("36600d", "100 years"),
        ];
        for (s, why) in bad {
            let e = parse_duration(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn upstream_policies_fall_back_to_a_window() {
        let six = Duration::from_secs(6 * 3_600);
        let own = Refresh::Upstream {
            fallback: Some(six),
        };
        let plain = Refresh::Upstream { fallback: None };
        assert_eq!(own.fallback(Some(Duration::from_secs(60))), six);
        assert_eq!(plain.fallback(Some(six)), six);
        assert_eq!(plain.fallback(None), DEFAULT_FALLBACK);
        assert_eq!(own.to_string(), "upstream, else every 6h");
        assert_eq!(plain.to_string(), "upstream");
    }

    #[test]
    fn formatting() {
        for (secs, want) in [
            (30, "30s"),
            (90, "90s"),
            (5_400, "90m"),
            (86_400, "24h"),
            (172_800, "2d"),
            (604_800, "7d"),
            (90_000, "25h"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), want);
        }
    }

    #[test]
    fn directives() {
        let every = |h: u64| Some(Refresh::Every(Duration::from_secs(h * 3_600)));
        let ok: &[(&str, Option<Refresh>)] = &[
            ("# rbuild:refresh=6h", every(6)),
            ("#rbuild:refresh=24h", every(24)),
            ("  # rbuild:refresh = never ", Some(Refresh::Never)),
            ("# a comment", None),
            ("# rbuild: builds this image", None),
            ("# see rbuild:refresh=6h", None),
            (
                "# rbuild:refresh=upstream",
                Some(Refresh::Upstream { fallback: None }),
            ),
            (
                "# rbuild:refresh=upstream, 6h",
                Some(Refresh::Upstream {
                    fallback: Some(Duration::from_secs(6 * 3_600)),
                }),
            ),
        ];
        for (line, want) in ok {
            assert_eq!(directive(line, 3).unwrap(), *want, "{line}");
        }
        for (line, why) in [
            (
                "# rbuild:refesh=6h",
                "line 3: unknown directive `rbuild:refesh`",
            ),
            ("# rbuild:refresh=6", "line 3: `# rbuild:refresh=6`"),
            ("# rbuild:refresh=", "empty"),
            ("# rbuild:refresh=upstream,", "empty"),
            ("# rbuild:refresh=6h,1h", "only `upstream` takes a fallback"),
            ("# rbuild:refresh=upstreams", "unknown unit"),
        ] {
            let e = directive(line, 3).unwrap_err().to_string();
            assert!(e.contains(why), "{line}: {e}");
        }
    }
}
