//! The git remote of a context directory, read from the repository's own
//! config (no `git` binary needed): CI clones a project into folders it
//! chooses, so the remote and the path inside the repository are what stay
//! the same from one runner to the next.

use std::path::{Path, PathBuf};

/// The remote URL (`origin`, else the first remote with a URL; credentials
/// removed) of the repository `dir` is in, and `dir`'s path inside it.
/// `None` outside a repository or when it has no remote.
pub(crate) fn origin(dir: &Path) -> Option<(String, PathBuf)> {
    let (top, gitdir) = dir.ancestors().find_map(|a| Some((a, git_dir(a)?)))?;
    let common = match std::fs::read_to_string(gitdir.join("commondir")) {
        Ok(rel) => gitdir.join(rel.trim()),
        Err(_) => gitdir,
    };
    let config = std::fs::read_to_string(common.join("config")).ok()?;
    let url = remote_url(&config)?;
    let inside = dir.strip_prefix(top).ok()?.to_path_buf();
    Some((without_credentials(&url), inside))
}

/// `.git` of a work tree: a directory, or a file saying `gitdir: PATH` (a
/// linked worktree or a submodule).
fn git_dir(top: &Path) -> Option<PathBuf> {
    let dot = top.join(".git");
    let meta = std::fs::metadata(&dot).ok()?;
    if meta.is_dir() {
        return Some(dot);
    }
    let text = std::fs::read_to_string(&dot).ok()?;
    let rel = text.trim().strip_prefix("gitdir:")?.trim();
    Some(top.join(rel))
}

/// The URL of `origin`, else of the first remote that has one.
fn remote_url(config: &str) -> Option<String> {
    let mut section: Option<String> = None;
    let mut first: Option<String> = None;
    for line in config.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            section = header
                .strip_prefix("remote")
                .map(|rest| rest.trim().trim_matches('"').to_string());
            continue;
        }
        let Some(name) = &section else { continue };
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case("url") {
            continue;
        }
        let value = value.trim().trim_matches('"').to_string();
        if name == "origin" {
            return Some(value);
        }
        first.get_or_insert(value);
    }
    first
}

/// A URL without the password (or token) in its user part:
/// `https://user:TOKEN@host/x` becomes `https://user@host/x`; scp-like
/// `git@host:x` and URLs without credentials stay as they are.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_path_inside_the_repository() {
        let repo = tempfile::tempdir().unwrap();
        let git = repo.path().join(".git");
        std::fs::create_dir_all(&git).unwrap();
        std::fs::write(
            git.join("config"),
            "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://example.com/up.git\n\
             [remote \"origin\"]\n\turl = https://ci:ghp_secret@example.com/org/app.git\n\
             \tfetch = +refs/heads/*:refs/remotes/origin/*\n",
        )
        .unwrap();
        let sub = repo.path().join("services/api");
        std::fs::create_dir_all(&sub).unwrap();
        let (url, path) = origin(&sub).unwrap();
        assert_eq!(url, "https://ci@example.com/org/app.git");
        assert_eq!(path, Path::new("services/api"));
        let (_, path) = origin(repo.path()).unwrap();
        assert_eq!(path, Path::new(""));
    }

    #[test]
    fn a_linked_worktree_reads_the_common_config() {
        let main = tempfile::tempdir().unwrap();
        let common = main.path().join(".git");
        let wt_git = common.join("worktrees/wt");
        std::fs::create_dir_all(&wt_git).unwrap();
        std::fs::write(
            common.join("config"),
            "[remote \"fork\"]\nurl = git@example.com:me/app.git\n",
        )
        .unwrap();
        std::fs::write(wt_git.join("commondir"), "../..\n").unwrap();
        let wt = tempfile::tempdir().unwrap();
        std::fs::write(
            wt.path().join(".git"),
            format!("gitdir: {}\n", wt_git.display()),
        )
        .unwrap();
        let (url, _) = origin(wt.path()).unwrap();
        assert_eq!(url, "git@example.com:me/app.git");
    }

    #[test]
    fn no_repository_or_no_remote_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(origin(dir.path()).is_none());
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::write(dir.path().join(".git/config"), "[core]\n").unwrap();
        assert!(origin(dir.path()).is_none());
    }
}
