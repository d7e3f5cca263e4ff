//! Number formats shared by the text renderers, matching progressui's so logs
//! read the same as buildx's (tonistiigi/units `%.2f` for bytes).

use std::time::Duration;

const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/// Decimal units: `999B`, `1.23kB`, `3.37MB`.
pub fn bytes(n: u64) -> String {
    let mut unit = 0;
    let mut base = 1u64;
    while unit + 1 < UNITS.len() && n / base >= 1000 {
        base *= 1000;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n}B");
    }
    format!("{:.2}{}", n as f64 / base as f64, UNITS[unit])
}

/// A log line's offset into its step: more decimals while it is small, so
/// the column stays about five characters wide (`0.123`, `12.34`, `123.4`).
pub(crate) fn log_elapsed(d: Duration) -> String {
    let s = d.as_secs_f64();
    let precision = if s < 10.0 {
        3
    } else if s < 100.0 {
        2
    } else {
        1
    };
    format!("{s:.precision$}")
}

/// `1.2` (seconds, one decimal), as in `DONE 1.2s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(999), "999B");
        assert_eq!(bytes(1000), "1.00kB");
        assert_eq!(bytes(1234), "1.23kB");
        assert_eq!(bytes(3_370_000), "3.37MB");
        assert_eq!(bytes(u64::MAX), "18.45EB");
    }

    #[test]
    fn elapsed_precision() {
        assert_eq!(log_elapsed(Duration::from_millis(123)), "0.123");
        assert_eq!(log_elapsed(Duration::from_millis(12_346)), "12.35");
        assert_eq!(log_elapsed(Duration::from_millis(123_456)), "123.5");
        assert_eq!(secs(Duration::from_millis(1_260)), "1.3");
    }
}
