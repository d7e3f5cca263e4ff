//! The blocking side of a `local` export: creates the validated entries inside the staging
//! tree and writes requested file data. One thread per stream, fed by a bounded queue.
//!
//! Every parent is opened from the staging root one component at a time with `O_NOFOLLOW`,
//! and entries are made with `*at` calls relative to that descriptor, so no symlink is ever
//! followed: not one received earlier, not one a concurrent stream made. The validator
//! refuses such listings first; this is the second line.
//!
//! Owner and group stay ours (upstream's client overrides them with its own ids too). Files
//! are created `0600` and directories `0700` so we can fill them; the exported modes and
//! mtimes are set when a file's data is complete and, for directories, at the end (a child
//! would bump the mtime; a read-only mode would block the children). Only `user.*` xattrs
//! are applied: `security.*`/`trusted.*` from a build could grant privileges on the host.
//! Files are not fsynced: the commit's renames make the export all-or-nothing, not durable.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;
use tokio::sync::mpsc;

use super::FileSendError;
use super::validate::{Kind, unix_mode};
use crate::proto::fsutil::types::Stat;

/// Work for the disk thread, in listing order.
pub(super) enum Op {
    /// A validated entry; `id` is its index in the listing.
    Entry {
        id: u32,
        stat: Stat,
        kind: Kind,
    },
    Data {
        id: u32,
        data: Bytes,
    },
    Eof {
        id: u32,
    },
    /// Everything arrived: set the directories' metadata and stop.
    Finish,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Runs the ops of one stream against the staging tree `root`; `dest` names paths in errors.
pub(super) fn run(
    root: &Path,
    dest: &Path,
    mut ops: mpsc::Receiver<Op>,
) -> Result<(), FileSendError> {
    let root_fd = rustix::fs::open(root, DIR_FLAGS, Mode::empty())
        .map_err(|e| FileSendError::io(root)(e.into()))?;
    let mut tree = Tree {
        dirs: Dirs {
            root: root_fd,
            last: None,
            dest: dest.to_path_buf(),
        },
        files: HashMap::new(),
        created_dirs: Vec::new(),
    };
    while let Some(op) = ops.blocking_recv() {
        match op {
            Op::Entry { id, stat, kind } => tree.create(id, stat, kind)?,
            Op::Data { id, data } => tree.write(id, &data)?,
            Op::Eof { id } => tree.close_file(id)?,
            Op::Finish => return tree.finish(),
        }
    }
    // The protocol side stopped without `Finish`: the stream failed, and it reports why.
    Ok(())
}

/// What to apply once an entry is complete.
struct Meta {
    path: String,
    mode: u32,
    mtime: i64,
    xattrs: HashMap<String, Bytes>,
}

impl From<Stat> for Meta {
    fn from(stat: Stat) -> Self {
        Self {
            path: stat.path,
            mode: unix_mode(stat.mode),
            mtime: stat.mod_time,
            xattrs: stat.xattrs,
        }
    }
}

struct PendingFile {
    meta: Meta,
    /// Opened at its first data packet, closed at its EOF: at most the few files the
    /// daemon streams at once are open.
    file: Option<File>,
}

struct Tree {
    dirs: Dirs,
    files: HashMap<u32, PendingFile>,
    /// In listing order; finished in reverse.
    created_dirs: Vec<Meta>,
}

/// Directory descriptors: the staging root and the last parent used (siblings arrive
/// together, so one cached parent saves most lookups).
struct Dirs {
    root: OwnedFd,
    last: Option<(String, OwnedFd)>,
    dest: PathBuf,
}

impl Dirs {
    fn parent(&mut self, dir: &str) -> Result<BorrowedFd<'_>, FileSendError> {
        if dir.is_empty() {
            return Ok(self.root.as_fd());
        }
        if !matches!(&self.last, Some((cached, _)) if cached == dir) {
            self.last = Some((dir.to_owned(), self.open(dir)?));
        }
        match &self.last {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(FileSendError::Internal("parent cache is empty".into())),
        }
    }

    /// Opens `rel` (a directory) without following any symlink on the way.
    fn open(&self, rel: &str) -> Result<OwnedFd, FileSendError> {
        let mut fd: Option<OwnedFd> = None;
        for (end, comp) in components(rel) {
            let base = fd.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            let next =
                rustix::fs::openat(base, comp, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
                    Errno::LOOP | Errno::NOTDIR => FileSendError::InvalidEntry {
                        dest: self.dest.clone(),
                        path: rel.to_owned(),
                        reason: format!("{:?} is a symlink or not a directory", &rel[..end]),
                    },
                    e => self.err(rel)(e),
                })?;
            fd = Some(next);
        }
        match fd {
            Some(fd) => Ok(fd),
            None => {
                rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty()).map_err(self.err("."))
            }
        }
    }

    fn err(&self, rel: &str) -> impl Fn(Errno) -> FileSendError + use<> {
        let path = self.dest.join(rel);
        let (dest, rel) = (self.dest.clone(), rel.to_owned());
        move |e| match e {
            // Only a concurrent stream of the same export can have made it.
            Errno::EXIST => FileSendError::InvalidEntry {
                dest: dest.clone(),
                path: rel.clone(),
                reason: "sent twice by concurrent streams".to_owned(),
            },
            e => FileSendError::Io {
                path: path.clone(),
                source: e.into(),
            },
        }
    }
}

/// `(end offset, component)` of each `/`-separated component.
fn components(rel: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    rel.split('/').map(move |comp| {
        offset += comp.len() + 1;
        (offset - 1, comp)
    })
}

fn split(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

impl Tree {
    fn create(&mut self, id: u32, stat: Stat, kind: Kind) -> Result<(), FileSendError> {
        let err = self.dirs.err(&stat.path);
        let (dir, name) = split(&stat.path);
        if let Kind::Hardlink(target) = &kind {
            let (target_dir, target_name) = split(target);
            let from = self.dirs.open_or_root(target_dir)?;
            let parent = self.dirs.parent(dir)?;
            return rustix::fs::linkat(&from, target_name, parent, name, AtFlags::empty())
                .map_err(err);
        }
        let parent = self.dirs.parent(dir)?;
        match kind {
            Kind::Dir => match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                // Concurrent streams (platform-split) may share directories.
                Err(Errno::EXIST) if is_dir_at(parent, name) => {}
                Err(e) => return Err(err(e)),
            },
            Kind::File => {
                // Empty until its data arrives; made now so hardlinks to it can follow.
                let flags = OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::WRONLY
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                rustix::fs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
                    .map_err(&err)?;
            }
            Kind::Symlink => {
                rustix::fs::symlinkat(stat.linkname.as_str(), parent, name).map_err(&err)?;
                let times = timestamps(stat.mod_time);
                rustix::fs::utimensat(parent, name, &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(&err)?;
            }
            Kind::Fifo => {
                rustix::fs::mknodat(
                    parent,
                    name,
                    rustix::fs::FileType::Fifo,
                    Mode::from_raw_mode(0o600),
                    0,
                )
                .map_err(&err)?;
                // Non-blocking: opening a FIFO for reading must not wait for a writer.
                let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(&err)?;
                apply(&fd, &Meta::from(stat), false).map_err(err)?;
                return Ok(());
            }
            Kind::Hardlink(_) | Kind::Skip(_) => {}
        }
        match kind {
            Kind::Dir => self.created_dirs.push(Meta::from(stat)),
            Kind::File => {
                let pending = PendingFile {
                    meta: Meta::from(stat),
                    file: None,
                };
                self.files.insert(id, pending);
            }
            _ => {}
        }
        Ok(())
    }

    /// The open file of a requested entry, opened (never followed, never created) on first use.
    fn file(&mut self, id: u32) -> Result<(&mut File, &Meta), FileSendError> {
        let pending = self
            .files
            .get_mut(&id)
            .ok_or_else(|| FileSendError::Internal(format!("no pending file {id}")))?;
        if pending.file.is_none() {
            let (dir, name) = split(&pending.meta.path);
            let err = self.dirs.err(&pending.meta.path);
            let parent = self.dirs.parent(dir)?;
            let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::openat(parent, name, flags, Mode::empty()).map_err(err)?;
            pending.file = Some(File::from(fd));
        }
        match pending.file.as_mut() {
            Some(file) => Ok((file, &pending.meta)),
            None => Err(FileSendError::Internal("file not open".into())),
        }
    }

    fn write(&mut self, id: u32, data: &[u8]) -> Result<(), FileSendError> {
        let (file, meta) = self.file(id)?;
        let Err(source) = file.write_all(data) else {
            return Ok(());
        };
        let path = meta.path.clone();
        Err(FileSendError::Io {
            path: self.dirs.dest.join(path),
            source,
        })
    }

    fn close_file(&mut self, id: u32) -> Result<(), FileSendError> {
        let applied = {
            let (file, meta) = self.file(id)?;
            apply(&*file, meta, true)
        };
        // Dropping it closes the file.
        let pending = self.files.remove(&id);
        match (applied, pending) {
            (Err(e), Some(pending)) => Err(self.dirs.err(&pending.meta.path)(e)),
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<(), FileSendError> {
        for meta in self.created_dirs.iter().rev() {
            let fd = self.dirs.open(&meta.path)?;
            apply(&fd, meta, true).map_err(self.dirs.err(&meta.path))?;
        }
        Ok(())
    }
}

impl Dirs {
    fn open_or_root(&self, dir: &str) -> Result<OwnedFd, FileSendError> {
        if dir.is_empty() {
            return rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
                .map_err(self.err("."));
        }
        self.open(dir)
    }
}

fn is_dir_at(parent: BorrowedFd<'_>, name: &str) -> bool {
    rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
    })
}

/// Sets mode, `user.*` xattrs and mtime on an open entry.
fn apply(fd: impl AsFd, meta: &Meta, xattrs: bool) -> Result<(), Errno> {
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode))?;
    if xattrs {
        for (name, value) in meta.xattrs.iter().filter(|(n, _)| n.starts_with("user.")) {
            if let Err(e) = rustix::fs::fsetxattr(&fd, name.as_str(), value, XattrFlags::empty()) {
                tracing::debug!(path = %meta.path, xattr = %name, error = %e, "xattr not set");
            }
        }
    }
    rustix::fs::futimens(&fd, &timestamps(meta.mtime))
}

/// Both times from Unix nanoseconds, as fsutil's `chtimes` does.
fn timestamps(nanos: i64) -> Timestamps {
    let time = Timespec {
        tv_sec: nanos.div_euclid(1_000_000_000),
        tv_nsec: nanos.rem_euclid(1_000_000_000) as _,
    };
    Timestamps {
        last_access: time,
        last_modification: time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, path: &str, kind: Kind) -> Op {
        let stat = Stat {
            path: path.to_owned(),
            mode: 0o644,
            ..Stat::default()
        };
        Op::Entry { id, stat, kind }
    }

    /// Runs `ops` against a fresh tree in a blocking thread, as a stream would.
    fn run_ops(root: &Path, ops: Vec<Op>) -> Result<(), FileSendError> {
        let (tx, rx) = mpsc::channel(ops.len() + 1);
        for op in ops {
            tx.try_send(op)
                .map_err(|_| FileSendError::Internal("queue".into()))?;
        }
        drop(tx);
        run(root, Path::new("/dest"), rx)
    }

    #[test]
    fn never_follows_a_symlinked_parent() {
        // Bypasses the validator, as a concurrent stream's symlink would.
        let base = tempfile::tempdir().expect("tempdir");
        let (root, outside) = (base.path().join("root"), base.path().join("outside"));
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("a")).expect("symlink");
        for kind in [Kind::File, Kind::Dir, Kind::Fifo] {
            let err = run_ops(&root, vec![entry(0, "a/x", kind.clone())]).expect_err("refused");
            assert!(err.to_string().contains("symlink"), "{kind:?}: {err}");
        }
        // Nor a symlink swapped in for a file between its creation and its data.
        let (tx, rx) = mpsc::channel(4);
        let worker = {
            let root = root.clone();
            std::thread::spawn(move || run(&root, Path::new("/dest"), rx))
        };
        tx.blocking_send(entry(0, "f", Kind::File)).expect("send");
        while !root.join("f").exists() {
            std::thread::yield_now();
        }
        std::fs::remove_file(root.join("f")).expect("rm");
        std::os::unix::fs::symlink(outside.join("f"), root.join("f")).expect("symlink");
        let data = Bytes::from_static(b"x");
        let _ = tx.blocking_send(Op::Data { id: 0, data });
        drop(tx);
        let err = worker.join().expect("thread").expect_err("refused");
        assert!(
            matches!(&err, FileSendError::Io { source, .. } if source.raw_os_error() == Some(Errno::LOOP.raw_os_error())),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(&outside).expect("read").count(), 0);
    }

    #[test]
    fn times_keep_nanoseconds_and_negative_values() {
        let t = timestamps(-1);
        assert_eq!(
            (t.last_modification.tv_sec, t.last_modification.tv_nsec),
            (-1, 999_999_999)
        );
        let t = timestamps(1_500_000_000_000_000_001);
        assert_eq!(
            (t.last_access.tv_sec, t.last_access.tv_nsec),
            (1_500_000_000, 1)
        );
    }
}
