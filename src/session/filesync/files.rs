//! Listing an in-memory source ([`super::LocalSource::Files`]): top-level regular files
//! for a Dockerfile read from stdin or rewritten by the client.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::FileSyncError;
use super::filter::{DirMatch, Verdict};
use super::followlinks::FlatTree;
use super::request::DiffCopyRequest;
use super::walk::{FileRef, Sink, build_filter};
use crate::proto::fsutil::types::Stat;

/// Lists in-memory top-level files: mode 0644, and an mtime derived from the content so the
/// daemon's size+mtime differ never keeps a stale copy of a rewritten file of equal size.
pub fn walk_files(
    files: &BTreeMap<String, Bytes>,
    req: &DiffCopyRequest,
    sink: &mut dyn Sink,
) -> Result<(), FileSyncError> {
    let filter = build_filter(&FlatTree(files.keys().map(String::as_str).collect()), req)?;
    for (name, data) in files {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(FileSyncError::InvalidFileName(name.clone()));
        }
        if filter.check(name, false, &DirMatch::default()).0 != Verdict::Emit {
            continue;
        }
        let stat = Stat {
            path: name.clone(),
            mode: 0o644,
            size: i64::try_from(data.len()).unwrap_or(i64::MAX),
            mod_time: content_mtime(data),
            ..Stat::default()
        };
        sink.entry(stat, Some(FileRef::Memory(data.clone())))?;
    }
    Ok(())
}

/// A stable pseudo-mtime in 1970..1979 from an FNV-1a hash of the content.
fn content_mtime(data: &[u8]) -> i64 {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % (1 << 58)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::filesync::walk::tests::{Collect, req};

    #[test]
    fn in_memory_files() {
        let files: BTreeMap<String, Bytes> =
            [("Dockerfile", "FROM a"), ("Dockerfile.dockerignore", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Bytes::from(v)))
                .collect();
        let mut sink = Collect::default();
        walk_files(&files, &req(&[], &[], Some(&["Dockerfile"])), &mut sink).expect("walk");
        assert_eq!(sink.paths(), ["Dockerfile"]);
        let (stat, file) = sink.get("Dockerfile");
        assert_eq!((stat.mode, stat.size), (0o644, 6));
        assert_eq!(stat.mod_time, content_mtime(b"FROM a"));
        assert_ne!(content_mtime(b"FROM a"), content_mtime(b"FROM b"));
        assert!(matches!(file, Some(FileRef::Memory(_))));
        let bad: BTreeMap<String, Bytes> = [("a/b".to_owned(), Bytes::new())].into();
        let err = walk_files(&bad, &req(&[], &[], None), &mut Collect::default());
        assert!(matches!(err, Err(FileSyncError::InvalidFileName(_))));
    }
}
