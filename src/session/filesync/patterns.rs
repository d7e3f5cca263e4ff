//! moby/patternmatcher, the matcher behind `.dockerignore`, `include-patterns` and
//! `exclude-patterns` (upstream `patternmatcher.go`, v0.6).
//!
//! Semantics kept exactly:
//! - patterns are trimmed, `filepath.Clean`ed and anchored to the whole relative path;
//! - `!` (after cleaning) marks an exception; a lone `!` is an error;
//! - `*` and `?` never cross `/`, `[...]` is a class, `\` escapes, `**` spans segments;
//! - the last matching pattern wins, and a pattern matching a parent directory counts.
//!
//! Each pattern is compiled to a regexp or a fast path by [`super::compile`].

use super::compile::{Kind, compile};
use super::glob::{self, BadPattern};

/// Why a pattern list was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    #[error("{pattern:?}: {source}")]
    Syntax { pattern: String, source: BadPattern },
}

/// An ordered list of patterns; upstream `PatternMatcher`.
#[derive(Debug)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// One cleaned pattern; upstream `Pattern`.
#[derive(Debug)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

/// Per-pattern "the parent directory matched" flags, carried down a walk so each path is
/// matched once instead of re-matching every parent; upstream `MatchInfo`. Empty = unknown.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

impl PatternMatcher {
    /// Upstream `New`: empty patterns are dropped; syntax is checked up front.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Self, PatternError> {
        let mut out = Vec::with_capacity(patterns.len());
        let mut exclusions = false;
        for raw in patterns {
            let trimmed = raw.as_ref().trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = glob::clean(trimmed);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::LoneExclamation),
                Some(rest) => (true, rest.to_owned()),
                None => (false, cleaned),
            };
            exclusions |= exclusion;
            let syntax = |source| PatternError::Syntax {
                pattern: body.clone(),
                source,
            };
            glob::go_match(&body, ".").map_err(syntax)?;
            let kind = compile(&body).map_err(syntax)?;
            out.push(Pattern {
                cleaned: body,
                exclusion,
                kind,
            });
        }
        Ok(Self {
            patterns: out,
            exclusions,
        })
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is a `!` exception.
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// Upstream `MatchesOrParentMatches`: only a cross-check for the walk-order matcher,
    /// since only listed paths can be requested here.
    #[cfg(test)]
    pub fn matches_or_parent_matches(&self, file: &str) -> bool {
        self.matches_using_parent_results(file, &MatchInfo::default())
            .0
    }

    /// Upstream `MatchesUsingParentResults`: `parent` is the info returned for the parent
    /// directory, or empty when unknown (then parents are matched from the path itself).
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> (bool, MatchInfo) {
        let known = parent.parent_matched.len() == self.patterns.len() && !self.patterns.is_empty();
        let mut matched = false;
        let mut info = Vec::with_capacity(self.patterns.len());
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = known && parent.parent_matched[i];
            if !hit {
                // An inclusion cannot change an already matched path, nor an exception an
                // unmatched one: skip it (and record no parent match, as upstream does).
                if pattern.exclusion != matched {
                    info.push(false);
                    continue;
                }
                hit = pattern.matches(file) || (!known && pattern.matches_a_parent(file));
            }
            info.push(hit);
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (
            matched,
            MatchInfo {
                parent_matched: info,
            },
        )
    }
}

impl Pattern {
    /// The cleaned pattern without its `!`; upstream `String()`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    pub fn exclusion(&self) -> bool {
        self.exclusion
    }

    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                // `**/foo` also matches a top-level `foo`.
                path.ends_with(suffix) || suffix.strip_prefix('/') == Some(path)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    fn matches_a_parent(&self, file: &str) -> bool {
        file.match_indices('/')
            .any(|(i, _)| self.matches(&file[..i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> PatternMatcher {
        PatternMatcher::new(patterns).expect("test patterns are valid")
    }

    /// Matches `text` the way a walk does: parents first, carrying their match info down.
    fn walk_match(pm: &PatternMatcher, text: &str) -> bool {
        let mut info = MatchInfo::default();
        for (i, _) in text.match_indices('/') {
            info = pm.matches_using_parent_results(&text[..i], &info).1;
        }
        pm.matches_using_parent_results(text, &info).0
    }

    #[test]
    fn single_pattern_table() {
        // (pattern, path, matches including parent-directory matches)
        let cases = [
            ("**", "file", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir", false),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("*", "a/b", true),
            ("*.go", "dir/x.go", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\\\", "a\\", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("\\[x\\]", "[x]", true),
            ("[[]x", "[x", true),
            ("[a&&b]", "&", true),
            // Cleaning: leading `./`, trailing `/`, doubled slashes; a leading `/` stays.
            ("./docs/", "docs/readme", true),
            ("docs//x", "docs/x", true),
            ("/docs", "docs", false),
            // Parent-directory matches.
            ("docs", "docs/a/b", true),
            ("do?s/a", "docs/a/b", true),
            ("docs/b", "docs/a/b", false),
            ("ä*", "äpfel/kern", true),
        ];
        for (pattern, path, want) in cases {
            let pm = matcher(&[pattern]);
            assert_eq!(
                pm.matches_or_parent_matches(path),
                want,
                "{pattern:?} vs {path:?}"
            );
            assert_eq!(walk_match(&pm, path), want, "walk: {pattern:?} vs {path:?}");
        }
    }

    #[test]
    fn multi_pattern_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/other.md", true),
            (&["**/*.log", "!keep/*.log"], "keep/a.log", false),
            (&["**/*.log", "!keep/*.log", "keep/b*"], "keep/b.log", true),
            (&["  *.tmp  ", ""], "x.tmp", true),
        ];
        for (patterns, path, want) in cases {
            let pm = matcher(patterns);
            assert_eq!(walk_match(&pm, path), *want, "{patterns:?} vs {path:?}");
            assert_eq!(
                pm.matches_or_parent_matches(path),
                *want,
                "{patterns:?} vs {path:?}"
            );
        }
    }

    #[test]
    fn exclusions_and_errors() {
        assert!(matcher(&["docs", " !docs/README.md"]).exclusions());
        assert!(!matcher(&["docs"]).exclusions());
        assert_eq!(matcher(&["docs", "config", "", "  "]).patterns().len(), 2);
        assert_eq!(matcher(&["!./a/"]).patterns()[0].as_str(), "./a");
        assert!(matches!(
            PatternMatcher::new(&["!"]),
            Err(PatternError::LoneExclamation)
        ));
        for bad in ["[", "a[", "[]a]", "x\\", "[a-b-c]", "\\q"] {
            assert!(
                matches!(
                    PatternMatcher::new(&[bad]),
                    Err(PatternError::Syntax { .. })
                ),
                "{bad:?} must be rejected"
            );
        }
    }
}
