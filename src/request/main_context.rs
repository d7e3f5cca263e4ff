//! The main context of a build resolved: the directory the session
//! serves, the URL the frontend fetches (a remote context, or an archive
//! from stdin through the upload service), and the Dockerfile with it.

use std::collections::BTreeMap;
use std::path::Path;

use super::DockerfileSource;
use crate::buildspec::context::ContextSource;
use crate::buildspec::context::existing_dir;
use crate::buildspec::{Build, Dockerfile, InvalidBuild};
use crate::session::filesync::{LocalSource, Scope};
use crate::session::upload::{self, ContextArchive};

/// The main context, resolved: what the session serves or the URL the
/// frontend fetches, and the Dockerfile that goes with it.
pub(super) struct MainContext {
    pub(super) local: Option<LocalSource>,
    pub(super) remote: Option<String>,
    pub(super) upload: Option<(String, ContextArchive)>,
    pub(super) dockerfile: DockerfileSource,
    pub(super) shared_key: String,
}

pub(super) fn main_context(build: &Build) -> Result<MainContext, InvalidBuild> {
    let fetched = |url: String, upload| -> Result<MainContext, InvalidBuild> {
        Ok(MainContext {
            shared_key: shared_key(Path::new(&url)),
            local: None,
            remote: Some(url),
            upload,
            dockerfile: remote_dockerfile(&build.dockerfile)?,
        })
    };
    match &build.context {
        ContextSource::Dir(dir) => {
            let missing = "does not exist (give the directory to build)";
            let context = existing_dir(dir, missing).map_err(|reason| InvalidBuild::Context {
                path: dir.clone(),
                reason,
            })?;
            Ok(MainContext {
                dockerfile: dockerfile_source(&build.dockerfile, &context)?,
                shared_key: shared_key(&context),
                // Scoped once the Dockerfile is final (see `prepare`).
                local: Some(LocalSource::Dir(context, Scope::all())),
                remote: None,
                upload: None,
            })
        }
        ContextSource::Remote(url) => fetched(url.clone(), None),
        // The frontend reads the archive like a tarball URL, which the
        // daemon resolves through the session (uploadprovider's URL form).
        ContextSource::Archive(archive) => {
            let id = crate::session::new_id();
            let url = format!("{}{id}", upload::URL_PREFIX);
            fetched(url, Some((id, archive.clone())))
        }
        ContextSource::Empty => {
            let dockerfile = match &build.dockerfile {
                Dockerfile::Inline(data) if data.iter().all(u8::is_ascii_whitespace) => {
                    return Err(InvalidBuild::Dockerfile {
                        message: "the Dockerfile is empty".to_string(),
                    });
                }
                Dockerfile::InContext => {
                    return Err(InvalidBuild::Dockerfile {
                        message: "a build without a context needs a Dockerfile".to_string(),
                    });
                }
                other => dockerfile_source(other, Path::new("."))?,
            };
            Ok(MainContext {
                local: Some(LocalSource::Files(BTreeMap::new())),
                remote: None,
                upload: None,
                dockerfile,
                shared_key: shared_key(Path::new("")),
            })
        }
    }
}

/// The Dockerfile of a remote-context build: a local file when one is
/// named and exists, else a path inside the remote context (as buildx
/// reads `-f` with a git context).
fn remote_dockerfile(dockerfile: &Dockerfile) -> Result<DockerfileSource, InvalidBuild> {
    match dockerfile {
        Dockerfile::Inline(data) => Ok(DockerfileSource::Inline(data.clone())),
        Dockerfile::Path(p) if p.is_file() => dockerfile_source(dockerfile, Path::new(".")),
        Dockerfile::Path(p) => Ok(DockerfileSource::Remote {
            filename: p.to_string_lossy().into_owned(),
        }),
        Dockerfile::InContext => Ok(DockerfileSource::Remote {
            filename: "Dockerfile".into(),
        }),
    }
}

fn dockerfile_source(
    dockerfile: &Dockerfile,
    context: &Path,
) -> Result<DockerfileSource, InvalidBuild> {
    let path = match dockerfile {
        Dockerfile::Inline(data) => return Ok(DockerfileSource::Inline(data.clone())),
        Dockerfile::InContext => context.join("Dockerfile"),
        Dockerfile::Path(p) => p.clone(),
    };
    let invalid = |message: String| InvalidBuild::Dockerfile { message };
    let meta = std::fs::metadata(&path)
        .map_err(|_| invalid(format!("no Dockerfile at {}", path.display())))?;
    if !meta.is_file() {
        return Err(invalid(format!(
            "Dockerfile {} is not a regular file",
            path.display()
        )));
    }
    let path = std::fs::canonicalize(&path)
        .map_err(|e| invalid(format!("cannot resolve Dockerfile {}: {e}", path.display())))?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(invalid(format!(
            "Dockerfile {} has no file name",
            path.display()
        )));
    };
    Ok(DockerfileSource::File {
        dir: dir.to_path_buf(),
        filename: name.to_string_lossy().into_owned(),
    })
}

/// A stable key per context directory, so the daemon keeps the previous
/// upload and the next build sends only what changed. FNV-1a: stable across
/// runs and platforms, unlike std's randomly seeded hasher.
pub(super) fn shared_key(context: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in context.to_string_lossy().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
