//! The build checks' answer (`frontend.lint`, upstream
//! frontend/subrequests/lint/lint.go) and buildx's rendering of it: the
//! `Check complete, ...` line, each warning with its rule, its message and
//! the Dockerfile lines it points at (solver/errdefs/source.go's snippet).

use std::io::{self, Write};

use bytes::Bytes;
use serde::Deserialize;

use crate::progress::status::{Position, SourceRange};

/// The checks' report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Lint {
    /// Every rule violation, in the frontend's order.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub warnings: Vec<LintWarning>,
    /// The files the warnings point into, by [`Location::source_index`].
    #[serde(default, deserialize_with = "null_is_empty")]
    pub sources: Vec<LintSource>,
    /// Set when the Dockerfile cannot be built at all, or when it asks for
    /// its checks to fail the build (`# check=error=true`).
    #[serde(default, rename = "buildError")]
    pub build_error: Option<LintError>,
}

/// One rule violation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct LintWarning {
    /// The rule, e.g. `FromAsCasing`.
    #[serde(rename = "ruleName")]
    pub rule: String,
    /// What the rule is about.
    #[serde(default)]
    pub description: String,
    /// The rule's documentation.
    #[serde(default)]
    pub url: Option<String>,
    /// What is wrong here, e.g. `'as' and 'FROM' keywords' casing do not match`.
    #[serde(default)]
    pub detail: String,
    /// Where in which file.
    #[serde(default)]
    pub location: Option<Location>,
}

/// A place in one of the report's sources.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "RawLocation")]
#[non_exhaustive]
pub struct Location {
    /// Index into [`Lint::sources`]; negative when the warning is about no file.
    pub source_index: i32,
    /// The lines (1-based) it points at.
    pub ranges: Vec<SourceRange>,
}

/// A file the checks read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct LintSource {
    /// Its name as the frontend knows it (`Dockerfile`).
    #[serde(default)]
    pub filename: String,
    /// Its whole text.
    #[serde(default, deserialize_with = "super::base64_bytes")]
    pub data: Bytes,
    /// `Dockerfile`.
    #[serde(default)]
    pub language: Option<String>,
}

/// Why the Dockerfile fails.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct LintError {
    /// The frontend's message.
    pub message: String,
    /// Where, when the frontend knows.
    #[serde(default)]
    pub location: Option<Location>,
}

impl LintWarning {
    /// The first line it points at (1-based).
    pub fn line(&self) -> Option<u32> {
        let range = self.location.as_ref()?.ranges.first()?;
        (range.start.line > 0).then_some(range.start.line)
    }
}

impl Lint {
    /// The source a location points into.
    pub fn source(&self, location: &Location) -> Option<&LintSource> {
        usize::try_from(location.source_index)
            .ok()
            .and_then(|i| self.sources.get(i))
    }

    /// The warnings in buildx's order: those about no file first (by
    /// rule), then by file name; within a file those without lines first
    /// (by rule), then by first line, keeping the frontend's order on a tie.
    pub fn sorted_warnings(&self) -> Vec<&LintWarning> {
        use std::cmp::Ordering;
        let file = |w: &LintWarning| {
            w.location
                .as_ref()
                .filter(|l| l.source_index >= 0)
                .map(|l| self.source(l).map_or("", |s| s.filename.as_str()))
        };
        let first = |w: &LintWarning| {
            w.location
                .as_ref()
                .and_then(|l| l.ranges.first())
                .map(|r| r.start.line)
        };
        let mut sorted: Vec<&LintWarning> = self.warnings.iter().collect();
        sorted.sort_by(|a, b| match (file(a), file(b)) {
            (None, None) => a.rule.cmp(&b.rule),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(fa), Some(fb)) if fa != fb => fa.cmp(fb),
            _ => match (first(a), first(b)) {
                (None, None) => a.rule.cmp(&b.rule),
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(la), Some(lb)) => la.cmp(&lb),
            },
        });
        sorted
    }

    /// Writes the report as buildx prints it: `Check complete, N warnings
    /// have been found!`, each warning with its snippet, or `Check
    /// complete, no warnings found.`; a build error is left to
    /// [`Lint::error_text`] (buildx makes it the command's error).
    ///
    /// # Errors
    ///
    /// When `w` fails.
    pub fn write_report(&self, w: &mut dyn Write, dockerfile: Option<&str>) -> io::Result<()> {
        match self.warnings.len() {
            0 => {}
            1 => writeln!(w, "Check complete, 1 warning has been found!")?,
            n => writeln!(w, "Check complete, {n} warnings have been found!")?,
        }
        for warning in self.sorted_warnings() {
            write!(w, "\nWARNING: {}", warning.rule)?;
            if let Some(url) = warning.url.as_deref().filter(|u| !u.is_empty()) {
                write!(w, " - {url}")?;
            }
            writeln!(w, "\n{}", warning.detail)?;
            if let Some(loc) = &warning.location {
                self.write_snippet(w, loc, dockerfile)?;
            }
        }
        match (&self.build_error, self.warnings.is_empty()) {
            (Some(_), false) => writeln!(w),
            (None, true) => writeln!(w, "Check complete, no warnings found."),
            _ => Ok(()),
        }
    }

    /// The build error's message and snippet, as buildx returns it for the
    /// command to fail with.
    pub fn error_text(&self, dockerfile: Option<&str>) -> Option<String> {
        let error = self.build_error.as_ref()?;
        let mut out = Vec::new();
        let _ = writeln!(out, "{}", error.message);
        if let Some(loc) = &error.location {
            let _ = self.write_snippet(&mut out, loc, dockerfile);
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn write_snippet(
        &self,
        w: &mut dyn Write,
        loc: &Location,
        dockerfile: Option<&str>,
    ) -> io::Result<()> {
        let Some(source) = self.source(loc) else {
            return Ok(());
        };
        let name = dockerfile.unwrap_or(&source.filename);
        write_snippet(w, name, &source.data, &loc.ranges)
    }
}

/// The lines `ranges` cover, with context, as BuildKit's
/// `errdefs.Source.Print` shows them: a one-line range gets two lines
/// either side, a longer one one line.
pub(crate) fn write_snippet(
    w: &mut dyn Write,
    filename: &str,
    data: &[u8],
    ranges: &[SourceRange],
) -> io::Result<()> {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let Some(first) = ranges.iter().map(|r| r.start.line).min() else {
        return Ok(());
    };
    let (mut start, mut end) = (
        first as usize,
        ranges
            .iter()
            .map(|r| r.end.line.max(r.start.line))
            .max()
            .unwrap_or(first) as usize,
    );
    if start < 1 || start > lines.len() {
        return Ok(());
    }
    end = end.min(lines.len());
    let pad = if start == end { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    writeln!(w, "{filename}:{first}\n--------------------")?;
    for i in start..=end {
        let covered = ranges.iter().any(|r| {
            let last = r.end.line.max(r.start.line) as usize;
            r.start.line as usize <= i && last >= i
        });
        let marker = if covered { ">>>" } else { "   " };
        writeln!(w, " {i:>3} | {marker} {}", lines[i - 1])?;
    }
    writeln!(w, "--------------------")
}

/// Go marshals an empty slice as `null`.
fn null_is_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `pb.Location` as Go's encoding/json writes it: every zero left out.
#[derive(Deserialize)]
struct RawLocation {
    #[serde(default, rename = "sourceIndex")]
    source_index: i32,
    #[serde(default, deserialize_with = "null_is_empty")]
    ranges: Vec<RawRange>,
}

#[derive(Deserialize, Default)]
struct RawRange {
    #[serde(default)]
    start: Option<RawPosition>,
    #[serde(default)]
    end: Option<RawPosition>,
}

#[derive(Deserialize, Default)]
struct RawPosition {
    #[serde(default)]
    line: i64,
    #[serde(default)]
    character: i64,
}

impl From<RawLocation> for Location {
    fn from(raw: RawLocation) -> Location {
        let position = |p: Option<RawPosition>| {
            let p = p.unwrap_or_default();
            Position {
                line: u32::try_from(p.line).unwrap_or(0),
                character: u32::try_from(p.character).unwrap_or(0),
            }
        };
        Location {
            source_index: raw.source_index,
            ranges: raw
                .ranges
                .into_iter()
                .map(|r| SourceRange {
                    start: position(r.start),
                    end: position(r.end),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
