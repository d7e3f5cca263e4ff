//! Timestamps found in manifests and configs (RFC 3339, as Go's `time.Time`
//! marshals them), and cache ages: parsed with [`crate::duration`], shown
//! by [`format_age`]. Small enough not to need a date crate: UTC only, no
//! calendars beyond the proleptic Gregorian one Go uses.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Cache ages use the shared syntax with no bounds added: every age is a
/// meaningful limit, `0s` (any cache manifest with a known time) included.
pub use crate::duration::parse as parse_duration;

/// A point in time, UTC, to the nanosecond: BuildKit writes several layers
/// within one second, and the order between cache exports must survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// The system clock now.
    pub fn now() -> Timestamp {
        Timestamp::from_system(SystemTime::now())
    }

    /// A `SystemTime` as a timestamp; a time before 1970 becomes the epoch.
    pub fn from_system(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            // Before 1970: only a broken clock; the epoch is close enough.
            Err(_) => Timestamp { secs: 0, nanos: 0 },
        }
    }

    /// Whole seconds since 1970-01-01 UTC, the fraction dropped.
    pub fn unix_secs(&self) -> i64 {
        self.secs
    }

    /// How long before `now` this was; zero for timestamps in the future
    /// (clock skew between the builder and this machine).
    pub fn age(&self, now: Timestamp) -> Duration {
        let secs = now.secs.saturating_sub(self.secs);
        let (secs, nanos) = if now.nanos >= self.nanos {
            (secs, now.nanos - self.nanos)
        } else {
            (secs - 1, now.nanos + 1_000_000_000 - self.nanos)
        };
        u64::try_from(secs).map_or(Duration::ZERO, |s| Duration::new(s, nanos))
    }

    /// `self - d`, saturating at the earliest representable time.
    pub fn minus(&self, d: Duration) -> Timestamp {
        let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let mut out = Timestamp {
            secs: self.secs.saturating_sub(secs),
            nanos: self.nanos,
        };
        if out.nanos >= d.subsec_nanos() {
            out.nanos -= d.subsec_nanos();
        } else {
            out.secs = out.secs.saturating_sub(1);
            out.nanos = out.nanos + 1_000_000_000 - d.subsec_nanos();
        }
        out
    }

    /// RFC 3339 (`2026-11-27T22:08:57.029816419Z`, `…+02:00`); `None` for
    /// anything else, including Go's zero time which `omitempty` still
    /// writes as `0001-01-01T00:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let valid = (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour < 24
            && minute < 60
            && second < 61;
        if !valid || year == 1 {
            return None;
        }
        let (nanos, zone) = fraction(&s[19..])?;
        let offset = zone_offset(zone)?;
        let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
            - offset;
        Some(Timestamp { secs, nanos })
    }
}

/// `.123456789` then the zone; digits past nanoseconds are dropped.
fn fraction(rest: &str) -> Option<(u32, &str)> {
    let Some(digits_and_zone) = rest.strip_prefix('.') else {
        return Some((0, rest));
    };
    let end = digits_and_zone
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits_and_zone.len());
    if end == 0 {
        return None;
    }
    let mut nanos = 0u32;
    for (i, c) in digits_and_zone[..end.min(9)].bytes().enumerate() {
        nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    Some((nanos, &digits_and_zone[end..]))
}

/// Seconds east of UTC.
fn zone_offset(zone: &str) -> Option<i64> {
    if zone == "Z" || zone == "z" {
        return Some(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = zone[1..].split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse, for display.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with whole seconds: `2026-11-27T22:08:57Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, rem) = (self.secs.div_euclid(86_400), self.secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let (h, min, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
        write!(f, "{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The largest unit that fits: `45s`, `12m`, `5h`, `3d`; for tables.
pub fn format_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps() {
        let t = |s| Timestamp::parse_rfc3339(s);
        let base = t("2026-11-27T22:08:57Z").unwrap();
        assert_eq!(base.unix_secs(), 1_795_817_337);
        assert_eq!(base.to_string(), "2026-11-27T22:08:57Z");
        let frac = t("2026-11-27T22:08:57.029816419Z").unwrap();
        assert!(frac > base);
        assert_eq!(frac.age(base), Duration::ZERO, "future is zero age");
        assert_eq!(base.age(frac), Duration::from_nanos(29_816_419));
        assert_eq!(t("2026-11-28T00:08:57+02:00"), Some(base));
        assert_eq!(t("2026-11-27T21:08:57-01:00"), Some(base));
        assert_eq!(t("1970-01-01T00:00:00Z").unwrap().unix_secs(), 0);
        assert_eq!(
            t("2024-02-29T00:00:00Z").unwrap().to_string(),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            t("1969-12-31T23:59:59Z").unwrap().to_string(),
            "1969-12-31T23:59:59Z"
        );
        let a = t("2026-11-27T22:08:57.1Z").unwrap();
        let b = t("2026-11-27T22:08:57.100000000123Z").unwrap();
        assert_eq!(a, b, "digits past nanoseconds are dropped");
        for bad in [
            "",
            "0001-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-11-27T22:08:57",
            "2026-11-27T22:08:57.Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27 22:08:57+0200",
            "20x6-11-27T22:08:57Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn arithmetic_and_ages() {
        let now = Timestamp::parse_rfc3339("2026-11-27T22:08:57.5Z").unwrap();
        let then = now.minus(Duration::from_millis(90_600));
        assert_eq!(then.to_string(), "2026-11-27T22:07:26Z");
        assert_eq!(then.age(now), Duration::from_millis(90_600));
        assert_eq!(format_age(Duration::from_secs(45)), "45s");
        assert_eq!(format_age(Duration::from_secs(3599)), "59m");
        assert_eq!(format_age(Duration::from_secs(7200)), "2h");
        assert_eq!(format_age(Duration::from_secs(3 * 86_400 + 5)), "3d");
    }
}
