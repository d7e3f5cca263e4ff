//! One content store: the blobs of an OCI image layout directory, as
//! containerd's local store (plugins/content/local/store.go) keeps them and
//! buildctl/buildx hand them to the daemon (`contentlocal.NewStore(dir)`).
//!
//! Committed blobs live at `DIR/blobs/sha256/<hex>`, read-only. A write goes
//! to a temporary file under `DIR/ingest/`, is hashed as it arrives, and is
//! renamed into place only after its size and digest check out, so a blob
//! path never holds partial or wrong content.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

/// The only algorithm BuildKit names content by (go-digest's Canonical).
const ALGORITHM: &str = "sha256";
const HEX_LEN: usize = 64;

/// Why a content operation failed; mapped to gRPC codes at the service edge
/// the way containerd's errdefs.ToGRPC does, since the daemon branches on
/// those codes (AlreadyExists counts as success, Unavailable is retried).
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("invalid digest {0:?}: want sha256:<64 lowercase hex digits>")]
    InvalidDigest(String),
    #[error("content digest {0}: not found")]
    NotFound(Digest),
    #[error("content {0}: already exists")]
    AlreadyExists(Digest),
    #[error("unexpected commit size {actual}, expected {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("unexpected commit digest {actual}, expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("write @{requested} must occur at current offset {current}")]
    OffsetMismatch { requested: i64, current: u64 },
    #[error("read past object length {0} bytes")]
    ReadPastEnd(u64),
    #[error("ref {0} locked: unavailable")]
    Locked(String),
    #[error("ref {0}: not found")]
    UnknownRef(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("content store I/O: {0}")]
    Io(#[from] io::Error),
}

/// A validated `sha256:<hex>` digest; safe to join onto a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    fn hex(&self) -> &str {
        &self.0[ALGORITHM.len() + 1..]
    }

    fn of(hasher: &Sha256) -> Digest {
        let sum = hasher.clone().finalize();
        let mut s = String::with_capacity(ALGORITHM.len() + 1 + HEX_LEN);
        s.push_str(ALGORITHM);
        s.push(':');
        for b in sum.iter() {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
        }
        Digest(s)
    }
}

impl FromStr for Digest {
    type Err = ContentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = s
            .strip_prefix(ALGORITHM)
            .and_then(|r| r.strip_prefix(':'))
            .is_some_and(|hex| {
                hex.len() == HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
        if valid {
            Ok(Digest(s.to_string()))
        } else {
            Err(ContentError::InvalidDigest(s.to_string()))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A committed blob's size and time (the file's mtime, as the Go store
/// reports both CreatedAt and UpdatedAt).
#[derive(Clone, Copy, Debug)]
pub struct BlobInfo {
    pub size: u64,
    pub modified: SystemTime,
}

/// The blob store of one directory.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.root, digest)
    }

    pub async fn info(&self, digest: &Digest) -> Result<BlobInfo, ContentError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) if m.is_file() => Ok(BlobInfo {
                size: m.len(),
                modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            }),
            Ok(_) => Err(ContentError::NotFound(digest.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound(digest.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn exists(&self, digest: &Digest) -> Result<bool, ContentError> {
        match self.info(digest).await {
            Ok(_) => Ok(true),
            Err(ContentError::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts a write in a fresh temporary file under `DIR/ingest/`.
    pub async fn begin(&self) -> Result<Ingest, ContentError> {
        let dir = self.root.join("ingest");
        let ingest = tokio::task::spawn_blocking(move || -> io::Result<Ingest> {
            std::fs::create_dir_all(&dir)?;
            let file = tempfile::Builder::new()
                .prefix("rbuild-")
                .tempfile_in(&dir)?;
            Ok(Ingest {
                file,
                hasher: Sha256::new(),
                offset: 0,
                started: SystemTime::now(),
                updated: SystemTime::now(),
            })
        })
        .await
        .map_err(join_error)??;
        Ok(ingest)
    }
}

pub(super) fn blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs").join(ALGORITHM).join(digest.hex())
}

/// An uncommitted write. Dropping it deletes the temporary file.
#[derive(Debug)]
pub struct Ingest {
    file: NamedTempFile,
    hasher: Sha256,
    offset: u64,
    pub started: SystemTime,
    pub updated: SystemTime,
}

impl Ingest {
    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.hasher)
    }

    /// Appends `data` (blocking).
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.as_file_mut().write_all(data)?;
        self.hasher.update(data);
        self.offset += data.len() as u64;
        self.updated = SystemTime::now();
        Ok(())
    }

    /// Drops everything written: a write at offset 0 restarts the blob.
    pub fn reset(&mut self) -> io::Result<()> {
        let f = self.file.as_file_mut();
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        self.hasher = Sha256::new();
        self.offset = 0;
        self.updated = SystemTime::now();
        Ok(())
    }

    /// Verifies and stores the blob (blocking). `total` 0 and `expected`
    /// None skip the respective check, as in containerd's local writer.
    pub fn commit(
        self,
        store: &LocalStore,
        total: u64,
        expected: Option<&Digest>,
    ) -> Result<Digest, ContentError> {
        if total > 0 && total != self.offset {
            return Err(ContentError::SizeMismatch {
                expected: total,
                actual: self.offset,
            });
        }
        let actual = self.digest();
        if let Some(expected) = expected
            && *expected != actual
        {
            return Err(ContentError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        self.file.as_file().sync_all()?;
        let target = store.blob_path(&actual);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // No-clobber: content addressing makes an existing blob identical,
        // and the daemon treats AlreadyExists as success.
        match self.file.persist_noclobber(&target) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ContentError::AlreadyExists(actual));
            }
            Err(e) => return Err(e.error.into()),
        }
        set_read_only(&target)?;
        Ok(actual)
    }
}

#[cfg(unix)]
fn set_read_only(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // 0444, as containerd leaves committed blobs.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444))
}

#[cfg(not(unix))]
fn set_read_only(path: &Path) -> io::Result<()> {
    let mut perms = std::fs::metadata(path)?.permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(path, perms)
}

/// A committed blob opened for a ranged read.
#[derive(Debug)]
pub struct BlobReader {
    file: File,
    remaining: u64,
}

impl BlobReader {
    /// Opens `len` bytes of the blob from `offset` (blocking).
    pub fn open(path: &Path, offset: u64, len: u64) -> io::Result<BlobReader> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(BlobReader {
            file,
            remaining: len,
        })
    }

    /// The next chunk of at most `max` bytes; None at the end of the range
    /// (blocking). A blob that shrank under us is an error, not a short read.
    pub fn next_chunk(&mut self, max: usize) -> io::Result<Option<Bytes>> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let want = usize::try_from(self.remaining).map_or(max, |r| r.min(max));
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            match self.file.read(&mut buf[filled..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => filled += n,
            }
        }
        self.remaining -= want as u64;
        Ok(Some(buf.freeze()))
    }
}

pub(super) fn join_error(e: tokio::task::JoinError) -> io::Error {
    io::Error::other(format!("content store task failed: {e}"))
}
