//! Checks each `STAT` of a `local` export before anything touches the disk (upstream fsutil
//! `validator.go` and `hardlinks.go`, made stricter):
//! - paths are relative, `/`-separated and clean: no empty, `.` or `..` component, no NUL;
//! - depth-first order with strictly increasing siblings, and every parent must be a
//!   directory listed earlier *in this stream*. That last rule is what refuses writing
//!   through a symlink: after `a -> /etc`, the entry `a/passwd` has no directory parent;
//! - a hardlink names an earlier regular file (or FIFO) of this stream.
//!
//! The result says what to create; entries we do not create are skipped here.

use std::collections::HashSet;

use crate::proto::fsutil::types::Stat;
use crate::session::filesync::stat::mode;

/// What an entry becomes on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    /// A regular file: created empty, then requested.
    File,
    Symlink,
    /// A hardlink to this earlier path.
    Hardlink(String),
    Fifo,
    /// Not created, for the reason given. Device nodes are never created, even as root: a
    /// build could otherwise plant a world-writable node for a host disk in the output.
    /// Sockets cannot be made by writing either.
    Skip(&'static str),
}

/// Per-stream listing state.
#[derive(Debug)]
pub(super) struct Validator {
    /// The chain of open directories from the root: (path, last child name seen).
    parents: Vec<(String, String)>,
    /// Entries that may be hardlink targets.
    files: HashSet<String>,
    /// Entries skipped; a hardlink to one is skipped as well.
    skipped: HashSet<String>,
    /// Symlinks, only to explain a refusal.
    symlinks: HashSet<String>,
}

impl Default for Validator {
    fn default() -> Self {
        Self {
            parents: vec![(String::new(), String::new())],
            files: HashSet::new(),
            skipped: HashSet::new(),
            symlinks: HashSet::new(),
        }
    }
}

impl Validator {
    /// Accepts the next entry of the listing, or says why it is refused.
    pub(super) fn check(&mut self, stat: &Stat) -> Result<Kind, String> {
        let path = stat.path.as_str();
        check_path(path)?;
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
        while self.parents.len() > 1 && self.parents.last().is_some_and(|(p, _)| p != dir) {
            self.parents.pop();
        }
        let Some((top, last)) = self.parents.last_mut() else {
            return Err("internal: no root directory".to_owned());
        };
        if top != dir {
            return Err(self.missing_parent(dir));
        }
        if base <= last.as_str() {
            return Err(format!(
                "out of order: it comes after {last:?} in the same directory"
            ));
        }
        base.clone_into(last);
        let kind = self.kind(stat)?;
        match &kind {
            Kind::Dir => self.parents.push((path.to_owned(), String::new())),
            Kind::File | Kind::Fifo => {
                self.files.insert(path.to_owned());
            }
            Kind::Symlink => {
                self.symlinks.insert(path.to_owned());
            }
            Kind::Skip(_) => {
                self.skipped.insert(path.to_owned());
            }
            Kind::Hardlink(_) => {}
        }
        Ok(kind)
    }

    fn kind(&self, stat: &Stat) -> Result<Kind, String> {
        let m = stat.mode;
        Ok(if m & mode::DIR != 0 {
            Kind::Dir
        } else if m & mode::SYMLINK != 0 {
            if stat.linkname.is_empty() || stat.linkname.contains('\0') {
                return Err("symlink without a valid target".to_owned());
            }
            Kind::Symlink
        } else if m & mode::DEVICE != 0 {
            Kind::Skip("device node")
        } else if m & mode::NAMED_PIPE != 0 {
            Kind::Fifo
        } else if m & (mode::SOCKET | mode::IRREGULAR) != 0 {
            Kind::Skip("socket or irregular file")
        } else if stat.linkname.is_empty() {
            Kind::File
        } else if self.files.contains(&stat.linkname) {
            Kind::Hardlink(stat.linkname.clone())
        } else if self.skipped.contains(&stat.linkname) {
            Kind::Skip("hardlink to a skipped entry")
        } else {
            return Err(format!(
                "hardlink to {:?}, which is not an earlier file of this export",
                stat.linkname
            ));
        })
    }

    fn missing_parent(&self, dir: &str) -> String {
        // Name the first non-directory on the way down, the likely attack.
        let mut prefix = String::new();
        for comp in dir.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            if self.symlinks.contains(&prefix) {
                return format!("it would be written through the symlink {prefix:?}");
            }
            if self.files.contains(&prefix) || self.skipped.contains(&prefix) {
                return format!("its parent {prefix:?} is not a directory");
            }
        }
        format!("its parent directory {dir:?} was not listed before it, or it is out of order")
    }
}

/// A path must name something strictly inside the destination.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".to_owned());
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed".to_owned());
    }
    if path.contains('\0') {
        return Err("NUL in path".to_owned());
    }
    for comp in path.split('/') {
        match comp {
            ".." => return Err("`..` would escape the destination".to_owned()),
            "" | "." => return Err("unclean path".to_owned()),
            _ => {}
        }
    }
    Ok(())
}

/// Unix permission bits for a Go `os.FileMode` (Go's `syscallMode`).
pub(super) fn unix_mode(go_mode: u32) -> u32 {
    let mut m = go_mode & 0o777;
    for (go, unix) in [
        (mode::SETUID, 0o4000),
        (mode::SETGID, 0o2000),
        (mode::STICKY, 0o1000),
    ] {
        if go_mode & go != 0 {
            m |= unix;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(path: &str, mode: u32, linkname: &str) -> Stat {
        Stat {
            path: path.to_owned(),
            mode,
            linkname: linkname.to_owned(),
            ..Stat::default()
        }
    }

    fn run(entries: &[Stat]) -> Result<Vec<Kind>, String> {
        let mut v = Validator::default();
        entries.iter().map(|s| v.check(s)).collect()
    }

    const DIR: u32 = mode::DIR | 0o755;
    const LINK: u32 = mode::SYMLINK | 0o777;

    #[test]
    fn accepts_depth_first_byte_order() {
        let kinds = run(&[
            stat("a", DIR, ""),
            stat("a/x", 0o644, ""),
            stat("a-b", 0o644, ""),
            stat("b", LINK, "/etc"),
            stat("c", 0o644, "a/x"),
            stat("d", mode::NAMED_PIPE | 0o600, ""),
            stat("e", mode::DEVICE | mode::CHAR_DEVICE | 0o666, ""),
            stat("f", 0o644, "e"),
        ])
        .expect("valid");
        assert_eq!(
            kinds,
            [
                Kind::Dir,
                Kind::File,
                Kind::File,
                Kind::Symlink,
                Kind::Hardlink("a/x".into()),
                Kind::Fifo,
                Kind::Skip("device node"),
                Kind::Skip("hardlink to a skipped entry"),
            ]
        );
    }

    #[test]
    fn refuses_escapes_and_disorder() {
        let cases: &[(&[Stat], &str)] = &[
            (&[stat("../x", 0o644, "")], "escape"),
            (&[stat("a/../../x", 0o644, "")], "escape"),
            (&[stat("/etc/x", 0o644, "")], "absolute"),
            (&[stat("a//b", 0o644, "")], "unclean"),
            (&[stat("./a", 0o644, "")], "unclean"),
            (&[stat("a/", 0o644, "")], "unclean"),
            (
                &[stat("a", LINK, "/etc"), stat("a/passwd", 0o644, "")],
                "symlink \"a\"",
            ),
            (
                &[stat("a", 0o644, ""), stat("a/b", 0o644, "")],
                "not a directory",
            ),
            (&[stat("a/b", 0o644, "")], "not listed"),
            (
                &[stat("b", 0o644, ""), stat("a", 0o644, "")],
                "out of order",
            ),
            (&[stat("a", 0o644, ""), stat("a", DIR, "")], "out of order"),
            (
                &[
                    stat("a", DIR, ""),
                    stat("a-b", DIR, ""),
                    stat("a/x", 0o644, ""),
                ],
                "not listed",
            ),
            (&[stat("h", 0o644, "/etc/passwd")], "hardlink"),
            (&[stat("h", 0o644, "../x")], "hardlink"),
            (&[stat("d", DIR, ""), stat("h", 0o644, "d")], "hardlink"),
            (&[stat("l", LINK, "")], "symlink without"),
        ];
        for (entries, want) in cases {
            let err = run(entries).expect_err(want);
            assert!(err.contains(want), "{entries:?}: {err}");
        }
    }

    #[test]
    fn go_modes_to_unix() {
        assert_eq!(unix_mode(0o755), 0o755);
        assert_eq!(unix_mode(mode::DIR | mode::STICKY | 0o777), 0o1777);
        assert_eq!(unix_mode(mode::SETUID | mode::SETGID | 0o755), 0o6755);
    }
}
