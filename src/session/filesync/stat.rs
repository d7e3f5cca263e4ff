//! fsutil `Stat` records from `lstat` (upstream fsutil `stat.go`, `stat_unix.go`), as the Go
//! client sends them.
//!
//! - `mode` is a Go `os.FileMode`, not `st_mode`: the receiver reads type bits from the high
//!   bits, so a raw `0o40755` would arrive as a regular file. The socket bit is cleared
//!   (upstream does so for archive/tar), so a socket goes out as an empty regular file.
//! - `uid`/`gid` are 0: buildctl and buildx reset them (`resetUIDAndGID` in buildkit's
//!   `client/solve.go`), so the build cache does not depend on who checked out the context.
//! - `modTime` is the real nanosecond mtime: the daemon's differ reuses a previously synced
//!   file when size and mtime match, so a fake mtime would serve stale content.
//! - Hardlinks: a later entry with the same inode as an already *sent* one carries the first
//!   path in `linkname` (size stays the real size, as upstream's ordering leaves it).

use std::collections::HashMap;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use bytes::Bytes;
use rustix::io::Errno;

use crate::proto::fsutil::types::Stat;

/// Go `os.FileMode` bits.
pub mod mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const IRREGULAR: u32 = 1 << 19;
    /// `os.ModeType`: an entry with none of these is a regular file.
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;
}

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

/// Xattrs under this prefix are macOS bookkeeping; upstream skips them.
const APPLE_XATTR_PREFIX: &str = "com.apple.";

/// Go's `os.FileMode` for an `st_mode` (`fillFileStatFromSys` on Linux).
pub fn go_mode(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & S_IFMT {
        S_IFBLK => mode::DEVICE,
        S_IFCHR => mode::DEVICE | mode::CHAR_DEVICE,
        S_IFDIR => mode::DIR,
        S_IFIFO => mode::NAMED_PIPE,
        S_IFLNK => mode::SYMLINK,
        S_IFSOCK => mode::SOCKET,
        _ => 0,
    };
    for (unix, go) in [
        (0o4000, mode::SETUID),
        (0o2000, mode::SETGID),
        (0o1000, mode::STICKY),
    ] {
        if st_mode & unix != 0 {
            m |= go;
        }
    }
    m
}

/// Only entries without type bits carry data the receiver can request (upstream
/// `fileCanRequestData`; it must agree with the receiver's copy).
pub fn is_requestable(go_mode: u32) -> bool {
    go_mode & mode::TYPE == 0
}

/// First sent path of each multiply-linked inode.
#[derive(Debug, Default)]
pub struct Hardlinks(HashMap<(u64, u64), String>);

/// Upstream `mkstat`: `abs` is where the entry is now, `rel` the path to record, `md` its
/// `lstat`. Called only for entries that are sent, so hardlinks point at sent paths.
pub fn mkstat(abs: &Path, rel: String, md: &Metadata, links: &mut Hardlinks) -> io::Result<Stat> {
    let st_mode = md.mode();
    let is_dir = st_mode & S_IFMT == S_IFDIR;
    let is_symlink = st_mode & S_IFMT == S_IFLNK;
    let mut stat = Stat {
        path: rel,
        mode: go_mode(st_mode) & !mode::SOCKET,
        mod_time: md
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(md.mtime_nsec()),
        ..Stat::default()
    };
    if !is_dir {
        stat.size = i64::try_from(md.size()).unwrap_or(i64::MAX);
        // Upstream's test, which is true exactly when rdev can be non-zero.
        if st_mode & (S_IFBLK | S_IFCHR) != 0 {
            let rdev = md.rdev();
            stat.devmajor = ((rdev >> 8) & 0xfff) as i64;
            stat.devminor = ((rdev & 0xff) | ((rdev >> 12) & 0xfff00)) as i64;
        }
        if is_symlink {
            let target = std::fs::read_link(abs)?;
            stat.linkname = target.into_os_string().into_string().map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "symlink target is not UTF-8")
            })?;
        } else if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            match links.0.get(&key) {
                Some(first) => stat.linkname.clone_from(first),
                None => {
                    links.0.insert(key, stat.path.clone());
                }
            }
        }
    }
    stat.xattrs = load_xattrs(abs)?;
    Ok(stat)
}

/// Upstream `loadXattr`: all xattrs but `com.apple.*`; no support means none, a value that
/// vanished or fails to read is left out, a failed listing fails the entry.
fn load_xattrs(abs: &Path) -> io::Result<HashMap<String, Bytes>> {
    let names = match read_xattr_buf(|buf| rustix::fs::llistxattr(abs, buf)) {
        Ok(names) => names,
        Err(Errno::NOTSUP) => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = HashMap::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        // The protobuf map key is a string; a non-UTF-8 name cannot be sent.
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.starts_with(APPLE_XATTR_PREFIX) {
            continue;
        }
        if let Ok(value) = read_xattr_buf(|buf| rustix::fs::lgetxattr(abs, name, buf)) {
            out.insert(name.to_owned(), Bytes::from(value));
        }
    }
    Ok(out)
}

/// Runs a size-returning xattr call with a small buffer first (almost every entry has no or
/// few xattrs), growing on `ERANGE` as the value may change between calls.
fn read_xattr_buf(
    mut call: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
) -> Result<Vec<u8>, Errno> {
    let mut small = [0u8; 256];
    match call(&mut small) {
        Ok(n) => return Ok(small[..n].to_vec()),
        Err(Errno::RANGE) => {}
        Err(e) => return Err(e),
    }
    let mut size = 4096;
    for _ in 0..8 {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => size = size.saturating_mul(4).min(1 << 20),
            Err(e) => return Err(e),
        }
    }
    Err(Errno::RANGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn stat_of(root: &Path, rel: &str, links: &mut Hardlinks) -> Stat {
        let abs = root.join(rel);
        let md = std::fs::symlink_metadata(&abs).expect("lstat");
        mkstat(&abs, rel.to_owned(), &md, links).expect("mkstat")
    }

    #[test]
    fn go_modes() {
        assert_eq!(go_mode(0o100_644), 0o644);
        assert_eq!(go_mode(0o040_755), mode::DIR | 0o755);
        assert_eq!(go_mode(0o120_777), mode::SYMLINK | 0o777);
        assert_eq!(go_mode(0o020_666), mode::DEVICE | mode::CHAR_DEVICE | 0o666);
        assert_eq!(go_mode(0o060_660), mode::DEVICE | 0o660);
        assert_eq!(go_mode(0o010_644), mode::NAMED_PIPE | 0o644);
        assert_eq!(go_mode(0o104_755), mode::SETUID | 0o755);
        assert_eq!(go_mode(0o042_775), mode::DIR | mode::SETGID | 0o775);
        assert_eq!(go_mode(0o041_777), mode::DIR | mode::STICKY | 0o777);
        assert!(is_requestable(0o755) && !is_requestable(mode::DIR | 0o755));
    }

    #[test]
    fn stats_of_each_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::write(root.join("exe"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(root.join("exe"), PermissionsExt::from_mode(0o755))
            .expect("chmod");
        symlink("/etc/passwd", root.join("link")).expect("symlink");
        let sock = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("bind");
        let mut links = Hardlinks::default();

        let d = stat_of(root, "d", &mut links);
        assert_eq!(d.mode & mode::TYPE, mode::DIR);
        assert_eq!(d.size, 0);
        let exe = stat_of(root, "exe", &mut links);
        assert_eq!((exe.mode, exe.size, exe.uid, exe.gid), (0o755, 10, 0, 0));
        let md = std::fs::metadata(root.join("exe")).expect("stat");
        assert_eq!(exe.mod_time, md.mtime() * 1_000_000_000 + md.mtime_nsec());
        // Not followed, even though it points outside the root.
        let link = stat_of(root, "link", &mut links);
        assert_eq!(link.mode & mode::TYPE, mode::SYMLINK);
        assert_eq!((link.linkname.as_str(), link.size), ("/etc/passwd", 11));
        // Sent like upstream: the socket bit cleared, so an (empty) regular file.
        let s = stat_of(root, "sock", &mut links);
        assert!(is_requestable(s.mode), "mode {:o}", s.mode);
        drop(sock);
    }

    #[test]
    fn hardlinks_point_at_the_first_sent_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::write(root.join("a"), "shared").expect("write");
        std::fs::hard_link(root.join("a"), root.join("b")).expect("link");
        let mut links = Hardlinks::default();
        let a = stat_of(root, "a", &mut links);
        let b = stat_of(root, "b", &mut links);
        assert_eq!((a.linkname.as_str(), b.linkname.as_str()), ("", "a"));
        assert_eq!(b.size, 6);
        assert!(is_requestable(b.mode));
    }

    #[test]
    fn user_xattrs_are_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("write");
        let flags = rustix::fs::XattrFlags::empty();
        if rustix::fs::lsetxattr(&file, "user.rbuild", b"v", flags).is_err() {
            return; // The test file system has no user xattrs (tmpfs before 6.6).
        }
        rustix::fs::lsetxattr(&file, "com.apple.quarantine", b"q", flags).ok();
        let st = stat_of(dir.path(), "f", &mut Hardlinks::default());
        assert_eq!(
            st.xattrs.get("user.rbuild").map(|v| &v[..]),
            Some(&b"v"[..])
        );
        assert!(!st.xattrs.contains_key("com.apple.quarantine"));
    }
}
