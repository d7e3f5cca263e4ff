//! The upstreams behind the git and download commands [`super`] finds:
//! which repository and ref a step's `git clone`, `fetch`, `pull` and
//! `checkout` build from, and which URLs `curl` and `wget` get.

use super::{Findings, has, is_commit_id, operands};
use crate::dockerfile::sources::{self, Upstream};
use crate::upstream::Source;
use crate::upstream::git::is_network_url;

impl Findings {
    fn upstream(&mut self, u: Upstream) -> usize {
        match self.upstreams.iter().position(|x| *x == u) {
            Some(i) => i,
            None => {
                self.upstreams.push(u);
                self.upstreams.len() - 1
            }
        }
    }

    pub(super) fn opaque(&mut self, fetch: impl Into<String>, reason: impl Into<String>) {
        self.upstream(Upstream::Opaque {
            fetch: fetch.into(),
            reason: reason.into(),
        });
    }

    /// `word` expanded, or the opaque upstream saying which variable is unknown.
    fn expand(&mut self, word: &str, fetch: &str) -> Option<String> {
        match self.vars.expand(word) {
            Ok(v) => Some(v),
            Err(var) => {
                self.opaque(
                    fetch,
                    format!("its URL uses {var}, which rbuild cannot expand"),
                );
                None
            }
        }
    }

    /// The URL of the step's last clone.
    fn clone_url(&self) -> Option<String> {
        match self.upstreams.get(self.clone?) {
            Some(Upstream::Source(Source::Git { url, .. })) => Some(url.clone()),
            _ => None,
        }
    }
}

/// git's own options before the subcommand that take a value.
const GIT_VALUES: &[&str] = &[
    "-C",
    "-c",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--config-env",
];

pub(super) fn git(args: &[String], found: &mut Findings) {
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        i += if GIT_VALUES.contains(&args[i].as_str()) {
            2
        } else {
            1
        };
    }
    let Some(sub) = args.get(i) else {
        return;
    };
    let rest = &args[i + 1..];
    match sub.as_str() {
        "clone" => {
            found.add("git clone");
            git_clone(rest, found);
        }
        "fetch" | "pull" => {
            found.add(format!("git {sub}"));
            git_fetch(sub, rest, found);
        }
        "submodule" if has(rest, &["--remote"]) => found.add("git submodule update --remote"),
        "checkout" | "switch" | "reset" => {
            if operands(rest, &["-b", "-B", "-c", "-C"]).any(is_commit_id) {
                found.git_pinned = true;
            } else if sub != "reset" {
                git_checkout(rest, found);
            }
        }
        _ => {}
    }
}

fn git_clone(args: &[String], found: &mut Findings) {
    let Some((word, branch)) = sources::clone_args(args) else {
        found.opaque("git clone", "no repository URL rbuild can read");
        return;
    };
    let Some(url) = found.expand(&word, "git clone") else {
        return;
    };
    let branch = match branch {
        Some(b) => match found.expand(&b, "git clone") {
            Some(b) => Some(b),
            None => return,
        },
        None => None,
    };
    if !is_network_url(&url) {
        found.opaque("git clone", "a path inside the build, not a network URL");
        return;
    }
    let source = Source::Git {
        url,
        reference: branch,
    };
    found.clone = Some(found.upstream(Upstream::Source(source)));
}

/// `git fetch|pull [REMOTE [REF]]`: the clone's repository (or REMOTE when
/// it is a URL), at REF or the clone's ref.
fn git_fetch(sub: &str, args: &[String], found: &mut Findings) {
    let fetch = format!("git {sub}");
    let (remote, refspec) = sources::fetch_args(args);
    let cloned = found.clone_url();
    let url = match remote.as_deref() {
        None | Some("origin") => match cloned.clone() {
            Some(url) => url,
            None => {
                found.opaque(
                    fetch,
                    "no `git clone` of its repository earlier in this step",
                );
                return;
            }
        },
        Some(r) => match found.expand(r, &fetch) {
            Some(url) if is_network_url(&url) => url,
            Some(_) => {
                found.opaque(fetch, "its remote is neither a URL nor the clone's origin");
                return;
            }
            None => return,
        },
    };
    let reference = match refspec {
        Some(r) => match found.expand(&r, &fetch) {
            Some(r) => Some(r),
            None => return,
        },
        // The clone's own ref, when it is the clone's repository.
        None if Some(&url) == cloned.as_ref() => return,
        None => None,
    };
    found.upstream(Upstream::Source(Source::Git { url, reference }));
}

/// `git checkout REF` after the clone: REF is what the step builds, so it
/// replaces the clone's ref.
fn git_checkout(args: &[String], found: &mut Findings) {
    let (Some(index), Some(url)) = (found.clone, found.clone_url()) else {
        return;
    };
    let Some(target) = sources::checkout_target(args) else {
        return;
    };
    let Some(target) = found.expand(&target, "git checkout") else {
        return;
    };
    found.upstreams[index] = Upstream::Source(Source::Git {
        url,
        reference: Some(target),
    });
}

/// The URLs of a `curl`/`wget` command.
pub(super) fn download(name: &str, args: &[String], found: &mut Findings) {
    let words = match sources::download_words(args) {
        Ok(w) => w,
        Err(reason) => {
            found.opaque(name, reason);
            return;
        }
    };
    let mut seen = false;
    for word in words {
        let Some(url) = found.expand(word, name) else {
            seen = true;
            continue;
        };
        if url.starts_with("https://") || url.starts_with("http://") {
            found.upstream(Upstream::Source(Source::Http { url }));
            seen = true;
        } else if let Some((scheme, _)) = url.split_once("://") {
            let reason = format!("rbuild looks up http and https URLs, not {scheme}");
            found.opaque(name, reason);
            seen = true;
        }
        // Anything else was a value, not a URL.
    }
    if !seen {
        found.opaque(name, "no URL rbuild can read");
    }
}
