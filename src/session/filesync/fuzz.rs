//! Fuzz target `dockerignore`: an ignore file read, compiled and matched against paths
//! the way a walk meets them, checked against matching each path on its own.
//!
//! Its first find (kept in `fuzz/regressions/dockerignore/`): the two disagree once a
//! `!` exception is in play. That is upstream's behaviour, which fsutil's walk (and so
//! what buildx sends) has too; the test below pins it.

use super::filter::{DirMatch, Filter, Verdict};
use super::patterns::PatternMatcher;
use super::{Scope, glob, ignorefile};

/// The input: an ignore file, a `---` line, then one path per line.
fn target(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (ignore, paths) = text.split_once("\n---\n").unwrap_or((
        &text,
        "a\na/b/c.txt\n.dockerignore\nsrc/main.rs\nnode_modules/x",
    ));
    let patterns = ignorefile::read_all(ignore);
    let _ = Scope::excluding(patterns.clone()).check();
    let Ok(matcher) = PatternMatcher::new(&patterns) else {
        return;
    };
    let excludes = Filter::new(&[], &patterns, None).expect("compiled above");
    let includes = Filter::new(&patterns, &[], None).ok();
    for path in paths.lines() {
        let path = glob::clean(path);
        if path == "." || path.starts_with('/') || path.starts_with("..") {
            continue;
        }
        // Walk order: each parent's result handed down, as the walker does.
        let (mut state, mut info) = (DirMatch::default(), Default::default());
        let (mut verdict, mut matched) = (Verdict::Emit, false);
        let mut prefix = String::new();
        for (i, part) in path.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            (verdict, state) = excludes.check(&prefix, prefix != path, &state);
            (matched, info) = matcher.matches_using_parent_results(&prefix, &info);
            if verdict == Verdict::SkipDir {
                break;
            }
        }
        // With `!` exceptions the two may differ, as upstream's do: a walk records no
        // parent match for a pattern it skipped (see `the_walk_keeps_upstreams_quirk`).
        let exceptions = matcher.exclusions();
        if verdict != Verdict::SkipDir && !exceptions {
            assert_eq!(
                matched,
                matcher.matches_or_parent_matches(&path),
                "walk-order and direct matching disagree on {path:?} for {patterns:?}"
            );
        }
        if let Some(f) = &includes {
            let _ = f.check(&path, false, &DirMatch::default());
        }
    }
}

#[test]
fn fuzz_dockerignore() {
    crate::fuzz::run("dockerignore", target);
}

#[test]
fn the_walk_keeps_upstreams_quirk() {
    // `build/**` does not match `build` itself, so at `build` the exception is skipped
    // and recorded as "no parent match"; below it, only the path itself is tried.
    let patterns = ["build/**", "!bui*"];
    let matcher = PatternMatcher::new(&patterns).expect("valid");
    let (at_build, info) = matcher.matches_using_parent_results("build", &Default::default());
    let (at_keep, info) = matcher.matches_using_parent_results("build/keep", &info);
    let (walked, _) = matcher.matches_using_parent_results("build/keep/x", &info);
    assert!(!at_build && at_keep && walked);
    assert!(!matcher.matches_or_parent_matches("build/keep/x"));
}
