//! Files on the client side: destinations checked before the build, small
//! result files written atomically.

use std::io::Write;
use std::path::Path;

use super::{Destination, Export, FLAG};
use crate::spec::SpecError;

/// Checks that every file or directory destination can be written, before
/// the build starts: a typo should not cost a whole build.
pub fn check_destinations(exports: &[Export]) -> Result<(), SpecError> {
    for e in exports {
        let (path, what) = match &e.dest {
            Destination::File(p) => (p, "file"),
            Destination::Dir(p) => (p, "directory"),
            _ => continue,
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            return Err(SpecError::new(
                FLAG,
                &path.display().to_string(),
                format!(
                    "the {what}'s parent directory {} does not exist",
                    parent.display()
                ),
            ));
        }
        if what == "file" && path.is_dir() {
            return Err(SpecError::new(
                FLAG,
                &path.display().to_string(),
                "is a directory; give a file name",
            ));
        }
        if what == "directory" && path.exists() && !path.is_dir() {
            return Err(SpecError::new(
                FLAG,
                &path.display().to_string(),
                "exists and is not a directory",
            ));
        }
    }
    Ok(())
}

/// Writes `data` to a temporary file beside `path` and renames it into
/// place, so a failure never leaves a half-written file and a previous file
/// stays intact until the new one is complete.
///
/// # Errors
///
/// The I/O error from creating, writing, syncing or renaming the temporary file (its
/// directory must exist and be writable); `path` is then unchanged.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // tempfile creates 0600 files; results are ordinary readable files.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
