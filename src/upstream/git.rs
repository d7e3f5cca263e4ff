//! A git ref's commit, from `git ls-remote` run with this machine's git.
//!
//! Running git rather than speaking its protocols here: one command covers
//! every transport a Dockerfile's clone may use (smart HTTP, `git://`,
//! ssh), and it brings along everything that makes git reach a private
//! host on a runner — credential helpers (`credential.helper`, so also
//! `~/.git-credentials` through the store helper), `http.extraHeader`,
//! `url.<base>.insteadOf`, proxies and CA settings from git's config,
//! `~/.netrc`, `GIT_ASKPASS`, and ssh's own keys and agent. A protocol
//! client of our own would have to re-implement all of that to agree with
//! the clone that runs inside the build. What it costs: git must be
//! installed (it is on CI runners); without it the lookup fails with
//! [`LookupError::NoGit`] and the step falls back to its window.
//!
//! Git never prompts: `GIT_TERMINAL_PROMPT=0`, stdin closed; the caller's
//! timeout kills it (`kill_on_drop`). Only network URLs are looked up: a
//! local path names a directory inside the build, not on this machine.

use std::process::Stdio;

use super::{Identity, LookupError, scrub};

/// `git ls-remote` output beyond this is not a ref list we can use.
const MAX_OUTPUT: usize = 16 << 20;

/// The object `reference` (default `HEAD`) points at in repository `url`.
pub(super) async fn lookup(url: &str, reference: Option<&str>) -> Result<Identity, LookupError> {
    if !is_network_url(url) {
        return Err(LookupError::Failed(
            "not a network URL (https, http, git, ssh or host:path)".into(),
        ));
    }
    let pattern = reference.unwrap_or("HEAD");
    let mut cmd = tokio::process::Command::new("git");
    cmd.args([
        "-c",
        "protocol.ext.allow=never",
        "ls-remote",
        "--",
        url,
        pattern,
    ])
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("LC_ALL", "C")
    .current_dir(std::env::temp_dir())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = match cmd.output().await {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LookupError::NoGit),
        Err(e) => return Err(LookupError::Failed(format!("cannot run git: {e}"))),
    };
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        return Err(classify(&scrub(&said, url)));
    }
    if out.stdout.len() > MAX_OUTPUT {
        return Err(LookupError::Failed(
            "git ls-remote answered too much".into(),
        ));
    }
    pick(&String::from_utf8_lossy(&out.stdout), reference)
}

/// What `git clone` would check out from the listed refs: `HEAD`; else
/// the branch, then the tag (clone's own order), then a full ref name.
fn pick(listing: &str, reference: Option<&str>) -> Result<Identity, LookupError> {
    let refs: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(id, _)| is_object_id(id))
        .collect();
    let wanted: Vec<String> = match reference {
        None => vec!["HEAD".into()],
        Some(r) => vec![
            format!("refs/heads/{r}"),
            format!("refs/tags/{r}"),
            r.into(),
        ],
    };
    for name in &wanted {
        if let Some((id, _)) = refs.iter().find(|(_, n)| n == name) {
            return Ok(Identity::Commit(id.to_string()));
        }
    }
    Err(LookupError::NotFound(match reference {
        None => "the repository has no HEAD (empty?)".into(),
        Some(r) => format!("no branch or tag {r}"),
    }))
}

fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// `https://`, `http://`, `git://`, `ssh://`, or scp-like `[user@]host:path`.
pub(crate) fn is_network_url(url: &str) -> bool {
    // `helper::address` runs a remote helper program; never from a Dockerfile.
    if url.contains("::") || url.contains(char::is_whitespace) {
        return false;
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        return matches!(scheme, "https" | "http" | "git" | "ssh" | "git+ssh")
            && !rest.is_empty()
            && !rest.starts_with('/');
    }
    // git's rule: a colon before any slash makes it scp-like; a path
    // (`./x`, `/x`, `x/y`) otherwise.
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) => colon > 0 && slash.is_none_or(|s| colon < s),
        (None, _) => false,
    }
}

/// Git's failure, by what the user can do about it.
fn classify(stderr: &str) -> LookupError {
    let lower = stderr.to_ascii_lowercase();
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or_else(|| stderr.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("git ls-remote failed");
    let line = line
        .trim_start_matches("fatal:")
        .trim_start_matches("error:")
        .trim()
        .to_string();
    let any = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    if any(&[
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "authentication failed",
        "permission denied (publickey",
        "returned error: 401",
        "returned error: 403",
    ]) {
        LookupError::Credentials(line)
    } else if any(&[
        "could not resolve host",
        "failed to connect",
        "couldn't connect",
        "unable to connect",
        "connection refused",
        "network is unreachable",
        "no route to host",
        "connection timed out",
    ]) {
        LookupError::Unreachable(line)
    } else if any(&[
        "repository not found",
        "does not appear to be a git repository",
        "returned error: 404",
    ]) {
        LookupError::NotFound(line)
    } else {
        LookupError::Failed(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "4ee0f5a0b7d944f14a70a71caf152dbad8c29699\tHEAD\n\
        1111111111111111111111111111111111111111\trefs/heads/v1\n\
        e53653bdf4c9ab0956b23e94b988121050a6d18a\trefs/tags/v1\n\
        2222222222222222222222222222222222222222\trefs/tags/only-tag\n";

    #[test]
    fn clone_order_picks_the_branch_then_the_tag() {
        let commit = |r| match pick(LISTING, r) {
            Ok(Identity::Commit(c)) => c[..4].to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(commit(None), "4ee0");
        assert_eq!(commit(Some("v1")), "1111");
        assert_eq!(commit(Some("only-tag")), "2222");
        assert_eq!(commit(Some("refs/tags/v1")), "e536");
        assert_eq!(
            pick(LISTING, Some("nope")),
            Err(LookupError::NotFound("no branch or tag nope".into()))
        );
        assert!(matches!(pick("", None), Err(LookupError::NotFound(_))));
    }

    #[test]
    fn only_network_urls_are_looked_up() {
        for url in [
            "https://github.com/org/lib",
            "git://127.0.0.1:9418/repo.git",
            "ssh://git@host/x.git",
            "git@github.com:org/lib.git",
            "host:path/x",
        ] {
            assert!(is_network_url(url), "{url}");
        }
        for url in [
            "/src/lib",
            "./lib",
            "lib/x:y",
            "file:///srv/x.git",
            "ext::sh -c x",
            ":x",
        ] {
            assert!(!is_network_url(url), "{url}");
        }
    }

    #[test]
    fn failures_are_told_apart() {
        let cases = [
            (
                "fatal: could not read Username for 'https://h': terminal prompts disabled\n",
                "needs credentials",
            ),
            (
                "fatal: unable to access 'https://127.0.0.1:1/x/': Failed to connect to 127.0.0.1 port 1\n",
                "unreachable",
            ),
            (
                "fatal: remote error: \n  no such repository: /repo.git\n",
                "remote error",
            ),
            (
                "fatal: '/x' does not appear to be a git repository\nfatal: Could not read from remote repository.\n",
                "not found",
            ),
        ];
        for (stderr, want) in cases {
            let said = classify(stderr).to_string();
            assert!(said.starts_with(want), "{stderr:?}: {said}");
        }
    }

    #[tokio::test]
    async fn a_local_repository_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = std::process::Command::new("git")
                .args(["-c", "user.email=t@rbuild", "-c", "user.name=t"])
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(ok.status.success(), "{args:?}");
        };
        run(&["init", "-q", "-b", "main", "w"]);
        run(&["-C", "w", "commit", "-q", "--allow-empty", "-m", "x"]);
        // A path is refused; the same repository by a git:// URL is what a
        // test daemon serves (tests/freshness_upstream.rs).
        let path = dir.path().join("w").display().to_string();
        assert!(matches!(
            lookup(&path, None).await,
            Err(LookupError::Failed(_))
        ));
        let refused = lookup("git://127.0.0.1:1/x.git", Some("main")).await;
        assert!(
            matches!(refused, Err(LookupError::Unreachable(_))),
            "{refused:?}"
        );
    }
}
