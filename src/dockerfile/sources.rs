//! The upstreams of a fetching step, read from its commands' arguments:
//! the repository and ref of `git clone` (and of a later `git fetch`,
//! `git pull` or `git checkout REF` in the same step), the URLs of `curl`
//! and `wget`, the sources of `ADD`. [`detect`](super::detect) calls these
//! as it reads each command; what cannot be read becomes an
//! [`Upstream::Opaque`] with the reason, never a guess.

use std::fmt;

use crate::upstream::Source;

/// One thing a step fetches from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// A source rbuild looks up before the build.
    Source(Source),
    /// A fetch rbuild cannot look up.
    Opaque {
        /// What fetches: `apt-get update`, `curl`, `git clone`.
        fetch: String,
        /// Why it cannot be looked up (no credentials in it).
        reason: String,
    },
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Upstream::Source(s) => s.fmt(f),
            Upstream::Opaque { fetch, .. } => f.write_str(fetch),
        }
    }
}

/// `git clone` options that take the next word as their value.
const CLONE_VALUES: &[&str] = &[
    "-b",
    "--branch",
    "-o",
    "--origin",
    "-c",
    "--config",
    "-u",
    "--upload-pack",
    "-j",
    "--jobs",
    "--depth",
    "--reference",
    "--reference-if-able",
    "--template",
    "--separate-git-dir",
    "--filter",
    "--shallow-since",
    "--shallow-exclude",
    "--server-option",
    "--bundle-uri",
    "--ref-format",
];

/// `git fetch` / `git pull` options that take a value.
const FETCH_VALUES: &[&str] = &[
    "--depth",
    "--deepen",
    "--shallow-since",
    "--shallow-exclude",
    "-j",
    "--jobs",
    "--upload-pack",
    "-o",
    "--server-option",
    "--negotiation-tip",
    "--refmap",
    "--recurse-submodules-default",
    "-s",
    "--strategy",
    "-X",
    "--strategy-option",
];

/// `git checkout` / `git switch` options that take a value.
const CHECKOUT_VALUES: &[&str] = &["-b", "-B", "-c", "-C", "--orphan", "--conflict"];

/// The repository word and the `--branch` of `git clone ARGS`.
pub(crate) fn clone_args(args: &[String]) -> Option<(String, Option<String>)> {
    let mut branch = None;
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            operands.extend(it.by_ref().cloned());
            break;
        }
        if let Some(b) = a.strip_prefix("--branch=") {
            branch = Some(b.to_string());
        } else if a == "-b" || a == "--branch" {
            branch = it.next().cloned();
        } else if CLONE_VALUES.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') || a == "-" {
            operands.push(a.clone());
        }
    }
    operands.into_iter().next().map(|url| (url, branch))
}

/// The remote and the first refspec's source of `git fetch|pull ARGS`.
pub(crate) fn fetch_args(args: &[String]) -> (Option<String>, Option<String>) {
    let ops = plain_operands(args, FETCH_VALUES);
    let remote = ops.first().cloned();
    let refspec = ops.get(1).and_then(|r| {
        let src = r
            .trim_start_matches('+')
            .split(':')
            .next()
            .unwrap_or_default();
        // A pattern fetches many refs: which one is built, a later
        // checkout says.
        (!src.is_empty() && !src.contains('*')).then(|| src.to_string())
    });
    (remote, refspec)
}

/// What `git checkout|switch ARGS` checks out (a branch, tag or
/// `origin/branch`), if that is one operand before any `--`.
pub(crate) fn checkout_target(args: &[String]) -> Option<String> {
    let before: Vec<String> = args.iter().take_while(|a| *a != "--").cloned().collect();
    let ops = plain_operands(&before, CHECKOUT_VALUES);
    match ops.as_slice() {
        [one] => Some(one.strip_prefix("origin/").unwrap_or(one).to_string()),
        _ => None,
    }
}

/// `curl`/`wget` options whose value is not the URL.
const DOWNLOAD_VALUES: &[&str] = &[
    "-o",
    "-O",
    "--output",
    "--output-document",
    "--output-file",
    "-H",
    "--header",
    "-d",
    "--data",
    "--data-binary",
    "--data-raw",
    "-u",
    "--user",
    "--password",
    "-A",
    "-U",
    "--user-agent",
    "-e",
    "--referer",
    "-x",
    "--proxy",
    "-w",
    "--write-out",
    "-T",
    "--upload-file",
    "--timeout",
    "-X",
    "--request",
    "-F",
    "--form",
    "-b",
    "--cookie",
    "-c",
    "--cookie-jar",
    "--cacert",
    "--cert",
    "--key",
    "-r",
    "--range",
    "-m",
    "--max-time",
    "--retry",
    "--connect-timeout",
    "-P",
    "--directory-prefix",
    "-t",
    "--tries",
    "-a",
    "--append-output",
];

/// The words of a `curl`/`wget` command that may be its URLs: those with a
/// scheme, and variables that are no option's value. `Err(reason)` when
/// the URLs come from elsewhere (a file, a config).
pub(crate) fn download_words(args: &[String]) -> Result<Vec<&String>, &'static str> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if matches!(a.as_str(), "-i" | "--input-file" | "-K" | "--config") {
            return Err("its URLs are read from a file");
        }
        if DOWNLOAD_VALUES.contains(&a.as_str()) {
            it.next();
        } else if a.contains("://") || (a.starts_with('$') && !a.starts_with("$(")) {
            out.push(a);
        }
    }
    Ok(out)
}

/// The sources of `ADD [--flags] SRC... DEST` that are URLs, as written.
pub(crate) fn add_urls(args: &str) -> Vec<String> {
    let args = args.trim();
    let words: Vec<String> = if args.starts_with('[') {
        serde_json::from_str(args).unwrap_or_default()
    } else {
        args.split_whitespace()
            .skip_while(|w| w.starts_with("--"))
            .map(String::from)
            .collect()
    };
    let Some((_, sources)) = words.split_last() else {
        return Vec::new();
    };
    sources
        .iter()
        .filter(|w| w.contains("://") || w.starts_with("git@"))
        .cloned()
        .collect()
}

/// The source an `ADD` URL names: a git repository (`.git`, `git@`,
/// `git://`, with `#ref`), else a file.
pub(crate) fn add_source(url: &str) -> Source {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let git = base.starts_with("git@")
        || base.starts_with("git://")
        || base.starts_with("ssh://")
        || base.ends_with(".git")
        || fragment.is_some_and(|_| base.contains(".git/"));
    if git {
        // `#ref:subdir`: the subdirectory is no part of the ref.
        let reference = fragment
            .map(|f| f.split(':').next().unwrap_or_default())
            .filter(|r| !r.is_empty())
            .map(String::from);
        return Source::Git {
            url: base.to_string(),
            reference,
        };
    }
    Source::Http {
        url: url.to_string(),
    }
}

fn plain_operands(args: &[String], with_value: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if with_value.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn clone_arguments() {
        let c = |s| clone_args(&w(s));
        assert_eq!(c("https://x/y /src"), Some(("https://x/y".into(), None)));
        assert_eq!(
            c("--depth 1 -b v1.2 --filter=blob:none https://x/y"),
            Some(("https://x/y".into(), Some("v1.2".into())))
        );
        assert_eq!(
            c("--branch=dev -o up -- https://x/y"),
            Some(("https://x/y".into(), Some("dev".into())))
        );
        assert_eq!(
            c("-c http.extraHeader=x --recurse-submodules $REPO d"),
            Some(("$REPO".into(), None))
        );
        assert_eq!(c("--depth 1"), None);
    }

    #[test]
    fn fetch_and_checkout_arguments() {
        assert_eq!(fetch_args(&w("")), (None, None));
        assert_eq!(
            fetch_args(&w(
                "--depth 1 origin +refs/heads/dev:refs/remotes/origin/dev"
            )),
            (Some("origin".into()), Some("refs/heads/dev".into()))
        );
        assert_eq!(
            fetch_args(&w("origin 'refs/heads/*:refs/remotes/origin/*'")).1,
            None
        );
        assert_eq!(checkout_target(&w("-q origin/dev")), Some("dev".into()));
        assert_eq!(checkout_target(&w("-b local v2")), Some("v2".into()));
        assert_eq!(checkout_target(&w("-- file.txt")), None);
        assert_eq!(checkout_target(&w("a b")), None);
    }

    #[test]
    fn download_urls() {
        let args = w("-fsSL -H X-Token:$TOKEN -o $DEST https://x/a $URL");
        let words = download_words(&args).unwrap();
        assert_eq!(words, ["https://x/a", "$URL"]);
        assert!(download_words(&w("-i list.txt")).is_err());
        assert!(download_words(&w("-qO- $(cat url)")).unwrap().is_empty());
    }

    #[test]
    fn add_sources() {
        assert_eq!(
            add_urls("--chmod=644 https://x/a.tgz https://x/b /dst/"),
            ["https://x/a.tgz", "https://x/b"]
        );
        assert_eq!(add_urls(r#"["https://x/a", "/a"]"#), ["https://x/a"]);
        assert!(add_urls("src/ /dst").is_empty());
        assert_eq!(
            add_source("https://github.com/o/r.git#v1:sub"),
            Source::Git {
                url: "https://github.com/o/r.git".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            add_source("https://x/a.tgz"),
            Source::Http {
                url: "https://x/a.tgz".into()
            }
        );
    }
}
