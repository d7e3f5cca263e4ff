//! The one duration syntax rbuild reads, wherever a period is given: a
//! refresh window or a cache age. `30s`, `90m`, `6h`, `7d`, `2w`, or several
//! joined (`1h30m`, `1d12h`), surrounding blanks ignored.
//!
//! Whole seconds only: windows and ages are compared in seconds, so a
//! fraction would only look precise. No sign either: a negative period
//! means nothing here. Each caller adds the bounds its meaning needs (a
//! refresh window of zero is refused, a cache age of zero is "everything").

use std::time::Duration;

/// Why a duration was refused; its message quotes the input and shows the
/// syntax, so it reads the same wherever the duration came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (use e.g. 30s, 90m, 6h, 7d)")]
#[non_exhaustive]
pub struct DurationError {
    /// What was given, untrimmed.
    pub input: String,
    /// What is wrong with it: empty, a missing or unknown unit, an overflow,
    /// or a caller's bound such as `must be at least 1s`.
    pub reason: String,
}

impl DurationError {
    /// For callers that refuse a well-formed duration outside their range.
    pub fn new(input: &str, reason: impl Into<String>) -> DurationError {
        DurationError {
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

const UNITS: &str = "s, m, h, d or w";

fn unit_secs(unit: char) -> Option<u64> {
    match unit {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3_600),
        'd' => Some(86_400),
        'w' => Some(7 * 86_400),
        _ => None,
    }
}

/// Parses the syntax above; any number of seconds that fits a `u64`,
/// zero included.
///
/// # Errors
///
/// [`DurationError`] when `input` is empty, has a unit without a number, a number without a
/// unit or an unknown unit, or adds up to more seconds than a `u64` holds.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let bad = |reason: String| DurationError::new(input, reason);
    let s = input.trim();
    if s.is_empty() {
        return Err(bad("empty".into()));
    }
    let mut total: u64 = 0;
    // Byte offset where the current run of digits began, if one is open.
    let mut number_start: Option<usize> = None;
    for (at, c) in s.char_indices() {
        if c.is_ascii_digit() {
            number_start.get_or_insert(at);
            continue;
        }
        let scale = unit_secs(c).ok_or_else(|| bad(format!("unknown unit {c:?} (use {UNITS})")))?;
        let start = number_start
            .take()
            .ok_or_else(|| bad(format!("the unit {c:?} needs a number before it")))?;
        let n: u64 = s[start..at]
            .parse()
            .map_err(|_| bad(format!("the number {} is too large", &s[start..at])))?;
        total = n
            .checked_mul(scale)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| bad("too large to count in seconds".into()))?;
    }
    if let Some(start) = number_start {
        return Err(bad(format!(
            "the last number, {}, has no unit ({UNITS})",
            &s[start..]
        )));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_either_old_parser_accepted() {
        let ok: &[(&str, u64)] = &[
            ("30s", 30),
            ("90m", 5_400),
            ("6h", 21_600),
            ("24h", 86_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h30m", 5_400),
            ("1d12h", 129_600),
            (" 1d ", 86_400),
            ("007s", 7),
            ("1h1h", 7_200),
            ("0s", 0),
            ("36600d", 36_600 * 86_400),
        ];
        for (input, secs) in ok {
            assert_eq!(parse(input), Ok(Duration::from_secs(*secs)), "{input}");
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("6", "the last number, 6, has no unit"),
            ("1h30", "the last number, 30, has no unit"),
            ("h", "the unit 'h' needs a number"),
            ("h1", "the unit 'h' needs a number"),
            ("1hm", "the unit 'm' needs a number"),
            ("6x", "unknown unit 'x'"),
            ("-1h", "unknown unit '-'"),
            ("1.5h", "unknown unit '.'"),
            ("7 d", "unknown unit ' '"),
            ("5µs", "unknown unit 'µ'"),
            (
                "99999999999999999999s",
                "the number 99999999999999999999 is too large",
            ),
            ("99999999999999999d", "too large to count"),
            ("18446744073709551615s1s", "too large to count"),
        ];
        for (input, why) in bad {
            let e = parse(input).expect_err(input);
            assert_eq!(e.input, *input);
            let text = e.to_string();
            assert!(text.contains(why), "{input}: {text}");
            assert!(text.contains(&format!("{input:?}")), "{text}");
            assert!(text.contains("use e.g. 30s"), "{text}");
        }
    }
}
