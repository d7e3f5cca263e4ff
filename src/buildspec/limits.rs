//! Resource options for RUN steps (`--shm-size`, `--ulimit`) and image
//! annotations, in docker's syntax.

use super::InvalidBuild;

/// One `ulimit`: `nofile=1024:2048` (soft:hard; a lone value is both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ulimit {
    /// The limit's name (`nofile`, `nproc`, `core`, ...).
    pub name: String,
    /// The soft limit (-1: unlimited).
    pub soft: i64,
    /// The hard limit (-1: unlimited).
    pub hard: i64,
}

/// The names docker and BuildKit accept.
const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl std::str::FromStr for Ulimit {
    type Err = InvalidBuild;

    fn from_str(input: &str) -> Result<Ulimit, InvalidBuild> {
        let bad = |reason: &str| InvalidBuild::Limit {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (name, limits) = input
            .split_once('=')
            .ok_or_else(|| bad("expected NAME=SOFT[:HARD]"))?;
        if !ULIMIT_NAMES.contains(&name) {
            return Err(bad(
                "unknown limit name (e.g. nofile, nproc, core, stack, memlock)",
            ));
        }
        let number = |s: &str| {
            s.parse::<i64>()
                .map_err(|_| bad("limits are whole numbers or -1"))
        };
        let (soft, hard) = match limits.split_once(':') {
            Some((s, h)) => (number(s)?, number(h)?),
            None => (number(limits)?, number(limits)?),
        };
        if soft < -1 || hard < -1 || (hard != -1 && (soft == -1 || soft > hard)) {
            return Err(bad("the soft limit may not exceed the hard one"));
        }
        Ok(Ulimit {
            name: name.to_string(),
            soft,
            hard,
        })
    }
}

impl std::fmt::Display for Ulimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}:{}", self.name, self.soft, self.hard)
    }
}

/// A size as docker writes it (`64m`, `2g`, `1024`): binary units, `b`
/// optional, case-insensitive.
///
/// # Errors
///
/// [`InvalidBuild::Limit`] when `input` is not a number with an optional `k`/`m`/`g`/`t`
/// unit, or is below one byte or too large for a `u64`.
pub fn parse_size(input: &str) -> Result<u64, InvalidBuild> {
    let bad = || InvalidBuild::Limit {
        input: input.to_string(),
        reason: "expected a size such as 64m, 2g or 1048576".to_string(),
    };
    let s = input.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad()),
    };
    let value: f64 = digits.parse().map_err(|_| bad())?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// An image annotation: `KEY=VALUE`, optionally for one level of the image
/// (`index:`, `manifest:`, `manifest-descriptor:`, `index-descriptor:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// Where it goes; `None` lets the exporter choose (the manifest).
    pub level: Option<String>,
    /// The key (`org.opencontainers.image.source`).
    pub key: String,
    /// The value.
    pub value: String,
}

impl std::str::FromStr for Annotation {
    type Err = InvalidBuild;

    fn from_str(input: &str) -> Result<Annotation, InvalidBuild> {
        let bad = |reason: &str| InvalidBuild::Limit {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (lhs, value) = input
            .split_once('=')
            .ok_or_else(|| bad("expected [LEVEL:]KEY=VALUE"))?;
        let (level, key) = match lhs.split_once(':') {
            Some((l, k))
                if matches!(
                    l,
                    "index" | "manifest" | "manifest-descriptor" | "index-descriptor"
                ) =>
            {
                (Some(l.to_string()), k)
            }
            Some(_) => {
                return Err(bad(
                    "the level is index, manifest, manifest-descriptor or index-descriptor",
                ));
            }
            None => (None, lhs),
        };
        if key.is_empty() {
            return Err(bad("the key is empty"));
        }
        Ok(Annotation {
            level,
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

impl Annotation {
    /// The image exporter's attribute for it.
    pub(crate) fn attr(&self) -> String {
        match &self.level {
            Some(l) => format!("annotation-{l}.{}", self.key),
            None => format!("annotation.{}", self.key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_syntax() {
        assert_eq!(
            "nofile=1024:2048".parse::<Ulimit>().unwrap().to_string(),
            "nofile=1024:2048"
        );
        assert_eq!(
            "nproc=64".parse::<Ulimit>().unwrap().to_string(),
            "nproc=64:64"
        );
        for bad in ["nofile", "colour=1", "nofile=2:1", "nofile=x"] {
            assert!(bad.parse::<Ulimit>().is_err(), "{bad}");
        }
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("lots").is_err() && parse_size("0").is_err());
        let a: Annotation = "index:org.example=1".parse().unwrap();
        assert_eq!(a.attr(), "annotation-index.org.example");
        assert_eq!("k=v".parse::<Annotation>().unwrap().attr(), "annotation.k");
        assert!("bogus:k=v".parse::<Annotation>().is_err());
    }
}
