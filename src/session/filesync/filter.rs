//! Which walked paths are sent: fsutil's `filterFS` (upstream `filter.go`) decisions for
//! `include-patterns`, `exclude-patterns` and resolved `followpaths`.
//!
//! Per path the walker asks [`Filter::check`] and gets a [`Verdict`]:
//! - `Emit`: send it (after any hidden parent directories);
//! - `Hide`: don't send it, but walk a directory's children, because an include or a `!`
//!   exception may still match below; the directory is sent just before its first sent child;
//! - `SkipDir`: don't read the directory at all. Upstream does this only when every relevant
//!   pattern is a plain prefix (no glob characters before a trailing `/*` or `/**`), so it can
//!   prove nothing below can match. This is what keeps an excluded `node_modules` unread.

use super::patterns::{MatchInfo, Pattern, PatternError, PatternMatcher};

/// Characters that make a pattern more than a plain prefix (upstream `patternChars`, Unix).
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// Ordered from least to most restrictive, so two filters combine with `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Emit,
    Hide,
    SkipDir,
}

/// Include and exclude match state of a directory, handed to its children.
#[derive(Debug, Clone, Default)]
pub struct DirMatch {
    include: MatchInfo,
    exclude: MatchInfo,
    /// The same for the client's own scope, when there is one.
    scope: Option<Box<DirMatch>>,
}

/// Which patterns list failed to parse.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("invalid includepatterns: {0}")]
    Include(#[source] PatternError),
    #[error("invalid excludepatterns: {0}")]
    Exclude(#[source] PatternError),
}

#[derive(Debug, Default)]
pub struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    only_prefix_includes: bool,
    only_prefix_exclude_exceptions: bool,
    /// The client's limits on the source ([`super::Scope`]): a path is sent only when both
    /// the daemon's request and this allow it.
    scope: Option<Box<Filter>>,
}

impl Filter {
    /// Upstream `NewFilterFS`. `followed` is the result of resolving `followpaths`
    /// (`None` when the request had none, or when one resolved to the root).
    pub fn new(
        includes: &[String],
        excludes: &[String],
        followed: Option<Vec<String>>,
    ) -> Result<Self, FilterError> {
        let mut include_patterns = includes.to_vec();
        if let Some(targets) = followed {
            include_patterns.extend(targets);
            include_patterns = dedupe_paths(include_patterns).unwrap_or_default();
        }
        let include = match include_patterns.is_empty() {
            true => None,
            false => Some(PatternMatcher::new(&include_patterns).map_err(FilterError::Include)?),
        };
        let exclude = match excludes.is_empty() {
            true => None,
            false => Some(PatternMatcher::new(excludes).map_err(FilterError::Exclude)?),
        };
        let plain = |p: &Pattern| !without_trailing_glob(p.as_str()).contains(PATTERN_CHARS);
        let only_prefix_includes = include
            .as_ref()
            .is_none_or(|m| m.patterns().iter().filter(|p| !p.exclusion()).all(plain));
        let only_prefix_exclude_exceptions = exclude
            .as_ref()
            .is_none_or(|m| m.patterns().iter().filter(|p| p.exclusion()).all(plain));
        Ok(Self {
            include,
            exclude,
            only_prefix_includes,
            only_prefix_exclude_exceptions,
            scope: None,
        })
    }

    /// This filter narrowed by `scope`: what either one hides stays hidden, and a directory
    /// either one can skip is not read.
    pub fn within(mut self, scope: Filter) -> Self {
        self.scope = Some(Box::new(scope));
        self
    }

    /// Decides about `path` (relative, clean); `parent` is what this returned for the
    /// parent directory (default for top-level entries). The returned [`DirMatch`] matters
    /// only for directories.
    pub fn check(&self, path: &str, is_dir: bool, parent: &DirMatch) -> (Verdict, DirMatch) {
        let (verdict, mut state) = self.check_own(path, is_dir, parent);
        let Some(scope) = &self.scope else {
            return (verdict, state);
        };
        let top = DirMatch::default();
        let (narrowed, scope_state) =
            scope.check(path, is_dir, parent.scope.as_deref().unwrap_or(&top));
        state.scope = Some(Box::new(scope_state));
        (verdict.max(narrowed), state)
    }

    fn check_own(&self, path: &str, is_dir: bool, parent: &DirMatch) -> (Verdict, DirMatch) {
        let mut hide = false;
        let mut state = DirMatch::default();
        if let Some(include) = &self.include {
            let (matched, info) = include.matches_using_parent_results(path, &parent.include);
            state.include = info;
            if !matched {
                if is_dir && self.only_prefix_includes && !could_match_below(include, path, false) {
                    return (Verdict::SkipDir, state);
                }
                hide = true;
            }
        }
        if let Some(exclude) = &self.exclude {
            let (matched, info) = exclude.matches_using_parent_results(path, &parent.exclude);
            state.exclude = info;
            if matched {
                if is_dir
                    && self.only_prefix_exclude_exceptions
                    && !(exclude.exclusions() && could_match_below(exclude, path, true))
                {
                    return (Verdict::SkipDir, state);
                }
                hide = true;
            }
        }
        let verdict = if hide { Verdict::Hide } else { Verdict::Emit };
        (verdict, state)
    }
}

/// Whether a pattern of the given polarity names something inside directory `dir`: its
/// plain prefix starts with `dir/`.
fn could_match_below(matcher: &PatternMatcher, dir: &str, exclusion: bool) -> bool {
    matcher
        .patterns()
        .iter()
        .filter(|p| p.exclusion() == exclusion)
        .any(|p| {
            let prefix = without_trailing_glob(p.as_str());
            prefix == dir
                || (prefix.len() > dir.len()
                    && prefix.starts_with(dir)
                    && prefix.as_bytes()[dir.len()] == b'/')
        })
}

/// Upstream `patternWithoutTrailingGlob`: strips one `/**`, then one `/*`.
fn without_trailing_glob(pattern: &str) -> &str {
    let p = pattern.strip_suffix("/**").unwrap_or(pattern);
    p.strip_suffix("/*").unwrap_or(p)
}

/// Upstream `dedupePaths`: drops paths under the previously kept one (meant for a sorted
/// list; the combined include list is not sorted, and upstream dedupes it anyway). A `.`
/// means "everything": `None`, no filter.
pub fn dedupe_paths(paths: Vec<String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.len() > last.len() && p.starts_with(&last) && p.as_bytes()[last.len()] == b'/' {
            continue;
        }
        last.clone_from(&p);
        out.push(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(includes: &[&str], excludes: &[&str]) -> Filter {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Filter::new(&own(includes), &own(excludes), None).expect("valid test patterns")
    }

    fn verdict(f: &Filter, path: &str, is_dir: bool) -> Verdict {
        let mut state = DirMatch::default();
        for (i, _) in path.match_indices('/') {
            state = f.check(&path[..i], true, &state).1;
        }
        f.check(path, is_dir, &state).0
    }

    #[test]
    fn excludes_skip_unless_an_exception_may_match_below() {
        let f = filter(&[], &["node_modules", "build", "!build/keep"]);
        assert_eq!(verdict(&f, "node_modules", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "build", true), Verdict::Hide);
        assert_eq!(verdict(&f, "build/other", false), Verdict::Hide);
        assert_eq!(verdict(&f, "build/keep", false), Verdict::Emit);
        assert_eq!(verdict(&f, "src", true), Verdict::Emit);
        // A glob in an exception: nothing can be proven, so descend everywhere.
        let f = filter(&[], &["a", "!a/*.txt"]);
        assert_eq!(verdict(&f, "a", true), Verdict::Hide);
        assert_eq!(verdict(&f, "a/x.txt", false), Verdict::Emit);
        // Excluded files are just hidden.
        assert_eq!(
            verdict(&filter(&[], &["*.md"]), "x.md", false),
            Verdict::Hide
        );
    }

    #[test]
    fn includes_walk_only_towards_possible_matches() {
        let f = filter(&["a/b/c", "d/**"], &[]);
        assert_eq!(verdict(&f, "a", true), Verdict::Hide);
        assert_eq!(verdict(&f, "a/b", true), Verdict::Hide);
        assert_eq!(verdict(&f, "a/b/c", true), Verdict::Emit);
        assert_eq!(verdict(&f, "a/b/c/x", false), Verdict::Emit);
        assert_eq!(verdict(&f, "a/x", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "ab", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "d", true), Verdict::Hide);
        assert_eq!(verdict(&f, "d/e", false), Verdict::Emit);
        assert_eq!(verdict(&f, "top", false), Verdict::Hide);
        // A glob include: every directory must be walked.
        let f = filter(&["**/*.rs"], &[]);
        assert_eq!(verdict(&f, "x", true), Verdict::Hide);
        assert_eq!(verdict(&f, "x/y.rs", false), Verdict::Emit);
    }

    #[test]
    fn include_and_exclude_combine() {
        let f = filter(&["src"], &["src/gen"]);
        assert_eq!(verdict(&f, "src/main.rs", false), Verdict::Emit);
        assert_eq!(verdict(&f, "src/gen", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "docs", true), Verdict::SkipDir);
    }

    #[test]
    fn a_scope_narrows_whatever_the_request_allows() {
        // The daemon asks for everything; the client's scope still hides and skips.
        let f = filter(&[], &[]).within(filter(&[], &["secrets", "*.key", "!.dockerignore"]));
        assert_eq!(verdict(&f, "secrets", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "id.key", false), Verdict::Hide);
        assert_eq!(verdict(&f, "src/main.rs", false), Verdict::Emit);
        assert_eq!(verdict(&f, ".dockerignore", false), Verdict::Emit);
        // An include of the request cannot widen the scope's includes.
        let f = filter(&["secrets"], &[]).within(filter(&["Dockerfile"], &[]));
        assert_eq!(verdict(&f, "secrets", true), Verdict::SkipDir);
        assert_eq!(verdict(&f, "Dockerfile", false), Verdict::Hide);
        let f = filter(&["Dockerfile"], &[]).within(filter(&["Dockerfile"], &[]));
        assert_eq!(verdict(&f, "Dockerfile", false), Verdict::Emit);
    }

    #[test]
    fn followed_paths_extend_includes() {
        let f = Filter::new(&[], &[], Some(vec!["Dockerfile".into()])).expect("valid");
        assert_eq!(verdict(&f, "Dockerfile", false), Verdict::Emit);
        assert_eq!(verdict(&f, "other", false), Verdict::Hide);
        // A followpath resolving to the root lifts the filter.
        let f = Filter::new(&[], &[], None).expect("valid");
        assert_eq!(verdict(&f, "other", false), Verdict::Emit);
    }

    #[test]
    fn dedupe_keeps_outermost_paths() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedupe_paths(v(&["a", "a/b", "ab", "b"])),
            Some(v(&["a", "ab", "b"]))
        );
        assert_eq!(dedupe_paths(v(&["a", "."])), None);
    }
}
