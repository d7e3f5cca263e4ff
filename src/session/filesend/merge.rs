//! Moving a finished staging tree into its destination at commit.
//!
//! A new destination is the staging tree itself, renamed (atomic). An existing one is merged
//! like upstream's copy mode (buildkit `syncTargetDiffCopyCopy`, fsutil `DiskWriter` with
//! `Merge`): entries outside the export stay; a directory present on both sides is merged and
//! takes the exported mode and mtime; anything else is replaced by the exported entry, one
//! `rename` per top-most differing path. Existing entries are examined with `lstat` and a
//! symlink is replaced, never followed, so a link in the destination cannot redirect writes.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps};

use super::FileSendError;

/// Moves `staging` into `dest` (absolute, symlinks resolved when it existed at staging time).
pub(super) fn commit_dir(staging: &Path, dest: &Path) -> Result<(), FileSendError> {
    let commit_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FileSendError::Commit { path, source }
    };
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(commit_err(parent))?;
            }
            return fs::rename(staging, dest).map_err(commit_err(dest));
        }
        Err(e) => return Err(commit_err(dest)(e)),
        Ok(_) => {}
    }
    // Follows a symlink on purpose: `dest` itself is the user's choice.
    let md = fs::metadata(dest).map_err(commit_err(dest))?;
    if !md.is_dir() {
        return Err(FileSendError::DestNotDir(dest.to_path_buf()));
    }
    merge_into(staging, dest)
}

fn merge_into(src: &Path, dst: &Path) -> Result<(), FileSendError> {
    let commit_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FileSendError::Commit { path, source }
    };
    make_writable(src).map_err(commit_err(src))?;
    let mut names = fs::read_dir(src)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<Vec<OsString>>>()
        })
        .map_err(commit_err(src))?;
    names.sort();
    for name in names {
        let (from, to) = (src.join(&name), dst.join(&name));
        // Read before its children move out, which changes the staging dir's mtime.
        let from_md = fs::symlink_metadata(&from).map_err(commit_err(&from))?;
        let existing = match fs::symlink_metadata(&to) {
            Ok(md) => Some(md),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(commit_err(&to)(e)),
        };
        match existing {
            // `lstat`: a symlink to a directory is not a directory here.
            Some(old) if old.is_dir() && from_md.is_dir() => {
                merge_into(&from, &to)?;
                copy_dir_metadata(&from_md, &to).map_err(commit_err(&to))?;
                continue;
            }
            // rename(2) replaces a non-directory atomically, but not a directory by a file
            // nor a file by a directory.
            Some(old) if old.is_dir() => fs::remove_dir_all(&to).map_err(commit_err(&to))?,
            Some(_) if from_md.is_dir() => fs::remove_file(&to).map_err(commit_err(&to))?,
            _ => {}
        }
        fs::rename(&from, &to).map_err(commit_err(&to))?;
    }
    Ok(())
}

/// fsutil rewrites an existing directory's metadata with the exported one's.
fn copy_dir_metadata(from: &Metadata, to: &Path) -> io::Result<()> {
    fs::set_permissions(to, fs::Permissions::from_mode(from.mode() & 0o7777))?;
    let mtime = Timespec {
        tv_sec: from.mtime(),
        tv_nsec: from.mtime_nsec() as _,
    };
    let times = Timestamps {
        last_access: mtime,
        last_modification: mtime,
    };
    rustix::fs::utimensat(CWD, to, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Renaming entries out of (or deleting) a read-only staging directory needs write access,
/// which root has anyway and others get here.
fn make_writable(dir: &Path) -> io::Result<()> {
    let mode = fs::symlink_metadata(dir)?.mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode((mode | 0o700) & 0o7777))?;
    }
    Ok(())
}

/// Removes a staging tree; a missing one is fine.
pub(super) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_tree_writable(path)?;
            fs::remove_dir_all(path)
        }
        other => other,
    }
}

fn make_tree_writable(dir: &Path) -> io::Result<()> {
    make_writable(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        // `file_type` does not follow symlinks.
        if entry.file_type()?.is_dir() {
            make_tree_writable(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn merges_replaces_and_never_follows_links() {
        let base = tempfile::tempdir().expect("tempdir");
        let (stage, dest, outside) = (
            base.path().join("stage"),
            base.path().join("dest"),
            base.path().join("outside"),
        );
        for d in [&stage, &dest, &outside] {
            fs::create_dir(d).expect("mkdir");
        }
        fs::create_dir_all(stage.join("sub")).expect("mkdir");
        fs::write(stage.join("sub/new"), "new").expect("write");
        fs::write(stage.join("file"), "exported").expect("write");
        fs::create_dir(stage.join("was-file")).expect("mkdir");
        fs::write(stage.join("was-dir"), "now a file").expect("write");
        fs::create_dir(stage.join("link")).expect("mkdir");
        fs::write(stage.join("link/x"), "x").expect("write");

        fs::create_dir(dest.join("sub")).expect("mkdir");
        fs::write(dest.join("sub/kept"), "kept").expect("write");
        fs::write(dest.join("file"), "old").expect("write");
        fs::write(dest.join("was-file"), "old").expect("write");
        fs::create_dir_all(dest.join("was-dir/deep")).expect("mkdir");
        fs::write(dest.join("kept"), "kept").expect("write");
        // A link in the destination pointing outside: replaced, not written through.
        symlink(&outside, dest.join("link")).expect("symlink");

        commit_dir(&stage, &dest).expect("commit");
        let read = |p: &str| fs::read_to_string(dest.join(p)).expect(p);
        assert_eq!(read("sub/new"), "new");
        assert_eq!(read("sub/kept"), "kept");
        assert_eq!(read("file"), "exported");
        assert_eq!(read("kept"), "kept");
        assert_eq!(read("was-dir"), "now a file");
        assert!(dest.join("was-file").is_dir());
        assert!(!dest.join("link").is_symlink());
        assert_eq!(read("link/x"), "x");
        assert_eq!(fs::read_dir(&outside).expect("read").count(), 0);
    }

    #[test]
    fn a_new_destination_is_the_staging_tree_renamed() {
        let base = tempfile::tempdir().expect("tempdir");
        let stage = base.path().join("stage");
        fs::create_dir_all(stage.join("d")).expect("mkdir");
        let dest = base.path().join("a/b/out");
        commit_dir(&stage, &dest).expect("commit");
        assert!(dest.join("d").is_dir());
        assert!(!stage.exists());
    }

    #[test]
    fn removes_read_only_trees() {
        let base = tempfile::tempdir().expect("tempdir");
        let tree = base.path().join("t");
        fs::create_dir_all(tree.join("ro")).expect("mkdir");
        fs::write(tree.join("ro/f"), "x").expect("write");
        fs::set_permissions(tree.join("ro"), fs::Permissions::from_mode(0o555)).expect("chmod");
        remove_tree(&tree).expect("remove");
        assert!(!tree.exists());
        remove_tree(&tree).expect("missing is fine");
    }
}
