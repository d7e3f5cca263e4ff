//! Listing a local source in the order the fsutil receiver enforces (upstream fsutil `fs.go`
//! walking with `filepath.WalkDir`, filtered by `filter.go`).
//!
//! Order: depth first, a directory before its children, siblings by byte order of their
//! *names* (so `a`, `a/x`, `a-b`, `a.b`: comparing whole path strings would put `a-b` before
//! `a/x`). The root itself is never listed. Entries are stat'ed only when they are sent, and
//! excluded subtrees that no pattern can reach are never read. In-memory sources are listed
//! by [`super::files`].
//!
//! This is blocking file-system work: run it in `spawn_blocking`.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::filter::{DirMatch, Filter, Verdict};
use super::followlinks::{DiskTree, LinkTree, follow_links, is_not_found};
use super::request::DiffCopyRequest;
use super::stat::{Hardlinks, is_requestable, mkstat};
use super::{FileSyncError, Scope};
use crate::proto::fsutil::types::Stat;

/// Where a requestable entry's content comes from.
#[derive(Debug, Clone)]
pub enum FileRef {
    /// A file on disk, and what its stat said when it was listed: the
    /// content sent must be that version (see `sender::stream_file`).
    Disk {
        path: PathBuf,
        size: u64,
        /// Modification time in nanoseconds, as in the sent `Stat`.
        mtime: i64,
        ino: u64,
    },
    Memory(Bytes),
}

/// Receives the listing, in order.
pub trait Sink {
    /// One entry; `file` is set exactly when the receiver may request its content.
    fn entry(&mut self, stat: Stat, file: Option<FileRef>) -> Result<(), FileSyncError>;
    /// Polled between directories so an aborted transfer stops walking.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Builds the request's filter for `tree` (resolving followpaths against it).
pub fn build_filter(tree: &dyn LinkTree, req: &DiffCopyRequest) -> Result<Filter, FileSyncError> {
    let followed = match &req.follow_paths {
        Some(paths) => follow_links(tree, paths).map_err(FileSyncError::FollowPaths)?,
        None => None,
    };
    Ok(Filter::new(&req.include, &req.exclude, followed)?)
}

/// Lists directory `root` (already resolved to a real directory) into `sink`: what `req`
/// asks for, within `scope`.
pub fn walk_dir(
    root: &Path,
    req: &DiffCopyRequest,
    scope: &Scope,
    sink: &mut dyn Sink,
) -> Result<(), FileSyncError> {
    let mut filter = build_filter(&DiskTree(root), req)?;
    if !scope.is_all() {
        // The scope's include list is resolved like followpaths, so a Dockerfile that is a
        // symlink inside the directory still brings its target along.
        let only = match &scope.only {
            Some(paths) => {
                match follow_links(&DiskTree(root), paths).map_err(FileSyncError::FollowPaths)? {
                    // An empty include list would mean "everything".
                    Some(resolved) if resolved.is_empty() => return Ok(()),
                    Some(resolved) => resolved,
                    None => Vec::new(),
                }
            }
            None => Vec::new(),
        };
        filter = filter.within(Filter::new(&only, &scope.exclude, None)?);
    }
    let children = read_children(root).map_err(|e| walk_error(root, e))?;
    let mut walker = Walker {
        stack: vec![Frame {
            rel: String::new(),
            abs: root.to_path_buf(),
            children: children.into_iter(),
            state: DirMatch::default(),
            hidden: false,
            utf8: true,
        }],
        links: Hardlinks::default(),
    };
    walker.run(&filter, sink)
}

struct Child {
    raw: OsString,
    name: String,
    utf8: bool,
    is_dir: bool,
}

/// A directory being listed.
struct Frame {
    rel: String,
    abs: PathBuf,
    children: std::vec::IntoIter<Child>,
    state: DirMatch,
    /// Not sent yet: sent just before its first sent descendant, if any.
    hidden: bool,
    /// Whether `rel` is the exact (UTF-8) name; otherwise it cannot be sent.
    utf8: bool,
}

struct Walker {
    stack: Vec<Frame>,
    links: Hardlinks,
}

impl Walker {
    fn run(&mut self, filter: &Filter, sink: &mut dyn Sink) -> Result<(), FileSyncError> {
        while let Some(top) = self.stack.last_mut() {
            let Some(child) = top.children.next() else {
                self.stack.pop();
                continue;
            };
            let mut rel = match top.rel.is_empty() {
                true => child.name.clone(),
                false => format!("{}/{}", top.rel, child.name),
            };
            let (verdict, state) = filter.check(&rel, child.is_dir, &top.state);
            let abs = top.abs.join(&child.raw);
            let utf8 = top.utf8 && child.utf8;
            match verdict {
                Verdict::SkipDir => continue,
                Verdict::Hide if !child.is_dir => continue,
                Verdict::Hide => {}
                Verdict::Emit => {
                    self.emit_hidden_parents(sink)?;
                    // The stat takes the path; only a directory still needs it for its frame.
                    let stat_rel = match child.is_dir {
                        true => rel.clone(),
                        false => std::mem::take(&mut rel),
                    };
                    if !self.emit(&abs, stat_rel, utf8, sink)? || !child.is_dir {
                        continue;
                    }
                }
            }
            self.descend(rel, abs, verdict, state, utf8, sink)?;
        }
        Ok(())
    }

    /// Pushes directory `abs` to be listed next.
    fn descend(
        &mut self,
        rel: String,
        abs: PathBuf,
        verdict: Verdict,
        state: DirMatch,
        utf8: bool,
        sink: &mut dyn Sink,
    ) -> Result<(), FileSyncError> {
        if sink.cancelled() {
            return Err(FileSyncError::Cancelled);
        }
        match read_children(&abs) {
            Ok(children) => self.stack.push(Frame {
                rel,
                abs,
                children: children.into_iter(),
                state,
                hidden: verdict == Verdict::Hide,
                utf8,
            }),
            // Vanished since it was listed.
            Err(e) if is_not_found(&e) => {}
            // Upstream tolerates unreadable directories only when they are not sent.
            Err(e) if verdict == Verdict::Hide && e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(walk_error(&abs, e)),
        }
        Ok(())
    }

    fn emit_hidden_parents(&mut self, sink: &mut dyn Sink) -> Result<(), FileSyncError> {
        for i in 0..self.stack.len() {
            if !self.stack[i].hidden {
                continue;
            }
            self.stack[i].hidden = false;
            let (abs, rel, utf8) = {
                let f = &self.stack[i];
                (f.abs.clone(), f.rel.clone(), f.utf8)
            };
            if !self.emit(&abs, rel, utf8, sink)? {
                return Err(walk_error(&abs, io::ErrorKind::NotFound.into()));
            }
        }
        Ok(())
    }

    /// Stats and sends one entry; `false` if it vanished since it was listed.
    fn emit(
        &mut self,
        abs: &Path,
        rel: String,
        utf8: bool,
        sink: &mut dyn Sink,
    ) -> Result<bool, FileSyncError> {
        if !utf8 {
            return Err(FileSyncError::NonUtf8Path(rel));
        }
        let md = match std::fs::symlink_metadata(abs) {
            Ok(md) => md,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(walk_error(abs, e)),
        };
        let stat = mkstat(abs, rel, &md, &mut self.links).map_err(|e| walk_error(abs, e))?;
        let file = is_requestable(stat.mode).then(|| FileRef::Disk {
            path: abs.to_path_buf(),
            size: md.len(),
            mtime: stat.mod_time,
            ino: md.ino(),
        });
        sink.entry(stat, file)?;
        Ok(true)
    }
}

/// A directory's entries sorted by the bytes of their names, as Go's `os.ReadDir` does.
fn read_children(dir: &Path) -> io::Result<Vec<Child>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // `file_type` comes from the directory entry itself, without a stat, on Linux.
        let is_dir = entry.file_type()?.is_dir();
        let raw = entry.file_name();
        let (name, utf8) = match raw.to_str() {
            Some(s) => (s.to_owned(), true),
            None => (raw.to_string_lossy().into_owned(), false),
        };
        out.push(Child {
            raw,
            name,
            utf8,
            is_dir,
        });
    }
    out.sort_unstable_by(|a, b| a.raw.as_bytes().cmp(b.raw.as_bytes()));
    Ok(out)
}

fn walk_error(path: &Path, source: io::Error) -> FileSyncError {
    FileSyncError::Walk {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::session::filesync::stat::mode;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[derive(Default)]
    pub(in crate::session::filesync) struct Collect(Vec<(Stat, Option<FileRef>)>);

    impl Sink for Collect {
        fn entry(&mut self, stat: Stat, file: Option<FileRef>) -> Result<(), FileSyncError> {
            self.0.push((stat, file));
            Ok(())
        }
    }

    impl Collect {
        pub(in crate::session::filesync) fn paths(&self) -> Vec<&str> {
            self.0.iter().map(|(s, _)| s.path.as_str()).collect()
        }
        pub(in crate::session::filesync) fn get(&self, path: &str) -> &(Stat, Option<FileRef>) {
            self.0.iter().find(|(s, _)| s.path == path).expect("listed")
        }
    }

    pub(in crate::session::filesync) fn req(
        include: &[&str],
        exclude: &[&str],
        follow: Option<&[&str]>,
    ) -> DiffCopyRequest {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        DiffCopyRequest {
            include: own(include),
            exclude: own(exclude),
            follow_paths: follow.map(own),
            ..DiffCopyRequest::default()
        }
    }

    fn walk(root: &Path, req: &DiffCopyRequest) -> Collect {
        let mut sink = Collect::default();
        walk_dir(root, req, &Scope::all(), &mut sink).expect("walk");
        sink
    }

    /// a/x, a-b, a.b, b/ (empty), Z, z, ä/ü, é, exe (0755), out -> /etc, rel -> a
    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for d in ["a", "b", "ä"] {
            std::fs::create_dir(root.join(d)).expect("mkdir");
        }
        for f in ["a/x", "a-b", "a.b", "Z", "z", "ä/ü", "é"] {
            std::fs::write(root.join(f), f).expect("write");
        }
        std::fs::write(root.join("exe"), "#!").expect("write");
        std::fs::set_permissions(root.join("exe"), PermissionsExt::from_mode(0o755))
            .expect("chmod");
        symlink("/etc", root.join("out")).expect("symlink");
        symlink("a", root.join("rel")).expect("symlink");
        dir
    }

    #[test]
    fn lists_in_receiver_order_with_modes() {
        let dir = tree();
        let got = walk(dir.path(), &req(&[], &[], None));
        let want = [
            "Z", "a", "a/x", "a-b", "a.b", "b", "exe", "out", "rel", "z", "ä", "ä/ü", "é",
        ];
        assert_eq!(got.paths(), want);
        assert_eq!(got.get("a").0.mode, mode::DIR | 0o755);
        assert!(got.get("a").1.is_none());
        assert_eq!(got.get("exe").0.mode, 0o755);
        assert!(matches!(
            got.get("exe").1,
            Some(FileRef::Disk { size: 2, .. })
        ));
        // Symlinks are sent as links, never followed, even to directories outside the root.
        let out = &got.get("out").0;
        assert_eq!(
            (out.mode & mode::TYPE, out.linkname.as_str()),
            (mode::SYMLINK, "/etc")
        );
        assert!(got.get("out").1.is_none());
    }

    #[test]
    fn includes_emit_parents_before_first_match() {
        let dir = tree();
        let got = walk(dir.path(), &req(&["a/x", "ä/*"], &[], None));
        assert_eq!(got.paths(), ["a", "a/x", "ä", "ä/ü"]);
        let got = walk(dir.path(), &req(&["**/x"], &[], None));
        assert_eq!(got.paths(), ["a", "a/x"]);
        // A directory with no matching child is not sent at all.
        let got = walk(dir.path(), &req(&["b/nothing", "z"], &[], None));
        assert_eq!(got.paths(), ["z"]);
    }

    #[test]
    fn excludes_with_exceptions() {
        let dir = tree();
        let got = walk(
            dir.path(),
            &req(&[], &["a", "!a/x", "*.b", "ä", "é", "[Zz]"], None),
        );
        assert_eq!(got.paths(), ["a", "a/x", "a-b", "b", "exe", "out", "rel"]);
        let got = walk(dir.path(), &req(&[], &["**", "!exe"], None));
        assert_eq!(got.paths(), ["exe"]);
    }

    #[test]
    fn followpaths_add_links_and_targets() {
        let dir = tree();
        let got = walk(dir.path(), &req(&[], &[], Some(&["rel/x", "missing"])));
        assert_eq!(got.paths(), ["a", "a/x", "rel"]);
    }

    #[test]
    fn hardlinks_refer_to_sent_paths_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("h0"), "data").expect("write");
        std::fs::hard_link(root.join("h0"), root.join("h1")).expect("link");
        std::fs::hard_link(root.join("h0"), root.join("h2")).expect("link");
        let got = walk(root, &req(&[], &["h0"], None));
        assert_eq!(got.paths(), ["h1", "h2"]);
        assert_eq!(got.get("h1").0.linkname, "");
        assert_eq!(got.get("h2").0.linkname, "h1");
    }

    #[test]
    fn non_utf8_names_fail_only_when_sent() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = std::ffi::OsStr::from_bytes(b"bad\xff");
        std::fs::write(dir.path().join(bad), "x").expect("write");
        std::fs::write(dir.path().join("ok"), "x").expect("write");
        assert_eq!(walk(dir.path(), &req(&["ok"], &[], None)).paths(), ["ok"]);
        let err = walk_dir(
            dir.path(),
            &req(&[], &[], None),
            &Scope::all(),
            &mut Collect::default(),
        );
        assert!(matches!(err, Err(FileSyncError::NonUtf8Path(_))), "{err:?}");
    }
}
