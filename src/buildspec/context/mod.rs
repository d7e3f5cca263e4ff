//! Where a build's files come from: the main context (a directory, a URL
//! the daemon fetches, an archive sent through the session, or nothing but
//! a Dockerfile) and the named contexts a Dockerfile reads with `FROM NAME`
//! or `COPY --from=NAME`.
//!
//! Named contexts take buildx's `--build-context` value forms and reach the
//! frontend as its `context:NAME` option the way buildx passes them
//! (build/opt.go `loadInputs`): a directory as a session local, an image or
//! a URL verbatim, an OCI layout as a session content store named in
//! `oci-layout://<store>@<digest>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Build, Dockerfile, InvalidBuild};
use crate::session::content;
use crate::session::upload::ContextArchive;

mod parse;

pub use super::archive::ContextInput;

/// The main build context.
#[derive(Clone, Debug)]
pub(crate) enum ContextSource {
    /// A local directory, uploaded through the session.
    Dir(PathBuf),
    /// A git or HTTP(S) URL the daemon fetches itself.
    Remote(String),
    /// A tar archive the daemon pulls through the session.
    Archive(ContextArchive),
    /// No files at all: the Dockerfile alone.
    Empty,
}

impl Default for ContextSource {
    fn default() -> Self {
        ContextSource::Dir(PathBuf::new())
    }
}

/// Where a named context comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory, uploaded through the session.
    Dir(PathBuf),
    /// An image (`docker-image://REF`): `FROM NAME` builds on it.
    Image(String),
    /// An image in a local OCI layout directory, which the daemon reads
    /// through the session (`oci-layout://DIR[:TAG][@DIGEST]`).
    OciLayout(OciLayoutRef),
    /// A git repository (`git://`, `git@`, `https://HOST/REPO.git#REF`) or
    /// an HTTP(S) tarball, fetched by the daemon.
    Remote(String),
}

/// An image in an OCI layout directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OciLayoutRef {
    /// The layout directory (holding `index.json` and `blobs/`).
    pub dir: PathBuf,
    /// The tag to look up in `index.json` when no digest is given; without
    /// either, `latest` or else the layout's only image.
    pub tag: Option<String>,
    /// The manifest or index digest (`sha256:...`).
    pub digest: Option<String>,
}

/// The named contexts of a plan: local directories to serve, frontend
/// options, and OCI layouts to serve as content stores.
#[derive(Debug, Default)]
pub(crate) struct ResolvedContexts {
    /// Directories served under their own names (`context:NAME=local:NAME`).
    pub dirs: BTreeMap<String, PathBuf>,
    /// `context:NAME` options spelled out (images, layouts, URLs).
    pub attrs: BTreeMap<String, String>,
    /// Store name -> OCI layout directory.
    pub oci_stores: BTreeMap<String, PathBuf>,
}

/// Checks every named context and spells out how the frontend reaches it.
pub(crate) fn resolve(build: &Build) -> Result<ResolvedContexts, InvalidBuild> {
    let mut out = ResolvedContexts::default();
    for (name, source) in &build.contexts {
        check_context_name(name)?;
        let key = format!("context:{name}");
        match source {
            NamedContext::Dir(dir) => {
                let path = existing_dir(dir, "does not exist").map_err(|reason| {
                    InvalidBuild::NamedContext {
                        name: name.clone(),
                        path: dir.clone(),
                        reason,
                    }
                })?;
                out.dirs.insert(name.clone(), path);
            }
            NamedContext::Image(reference) => {
                out.attrs.insert(key, format!("docker-image://{reference}"));
            }
            NamedContext::Remote(url) => {
                out.attrs.insert(key, url.clone());
            }
            NamedContext::OciLayout(layout) => {
                let (store, value) = oci_store(name, layout)?;
                out.attrs.insert(key, value);
                out.oci_stores.insert(store, layout.dir.clone());
            }
        }
    }
    for name in build.context_builds.keys() {
        check_context_name(name)?;
    }
    Ok(out)
}

/// A fresh store name for `layout` and the frontend's value naming it with
/// the resolved digest (buildx: `identity.NewID()` and `ocilayout.Ref`).
fn oci_store(name: &str, layout: &OciLayoutRef) -> Result<(String, String), InvalidBuild> {
    let invalid = |reason: String| InvalidBuild::OciLayout {
        name: name.to_string(),
        dir: layout.dir.clone(),
        reason,
    };
    existing_dir(&layout.dir, "does not exist").map_err(invalid)?;
    let digest =
        content::image_digest(&layout.dir, layout.digest.as_deref(), layout.tag.as_deref())
            .map_err(|e| invalid(e.to_string()))?;
    // Lowercase base36: a valid reference name, as the frontend parses it.
    let store = crate::session::new_id();
    let mut value = format!("oci-layout://{store}");
    if let Some(tag) = &layout.tag {
        value.push(':');
        value.push_str(tag);
    }
    value.push('@');
    value.push_str(&digest);
    Ok((store, value))
}

/// The name becomes a frontend option (and for directories a session
/// source name next to `context` and `dockerfile`, which it must not shadow).
fn check_context_name(name: &str) -> Result<(), InvalidBuild> {
    let reason = match name {
        "" => Some("the name is empty"),
        "context" | "dockerfile" => Some("the name is reserved"),
        n if n.contains(':') || n.contains(',') => Some("the name may not hold ':' or ','"),
        _ => None,
    };
    match reason {
        Some(reason) => Err(InvalidBuild::ContextName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

impl Build {
    /// A build of a remote context the daemon fetches itself: a git
    /// repository (`git://host/repo.git#ref`, `https://host/repo.git#ref:dir`,
    /// `git@host:repo.git`) or an HTTP(S) tarball. The Dockerfile is read
    /// from it too, unless [`Build::dockerfile_path`] names a local file.
    pub fn remote(url: impl Into<String>) -> Build {
        Build {
            context: ContextSource::Remote(url.into()),
            ..Build::default()
        }
    }

    /// A build whose context is a tar archive (plain, gzip, bzip2 or xz),
    /// sent to the daemon through the session when it asks for it. The
    /// Dockerfile is read from the archive unless one is set.
    pub fn archive(archive: ContextArchive) -> Build {
        Build {
            context: ContextSource::Archive(archive),
            ..Build::default()
        }
    }

    /// A build with an empty context: the Dockerfile alone.
    pub fn dockerfile_only(text: impl Into<Bytes>) -> Build {
        Build {
            context: ContextSource::Empty,
            dockerfile: Dockerfile::Inline(text.into()),
            ..Build::default()
        }
    }

    /// A build of what a stream given as the context held (buildx's `-`):
    /// an archive is the context, a Dockerfile is built with no context.
    pub fn from_input(input: ContextInput) -> Build {
        match input {
            ContextInput::Archive(archive) => Build::archive(archive),
            ContextInput::Dockerfile(text) => Build::dockerfile_only(text),
        }
    }

    /// The remote context's URL, for a [`Build::remote`] build.
    pub fn remote_context(&self) -> Option<&str> {
        match &self.context {
            ContextSource::Remote(url) => Some(url),
            _ => None,
        }
    }

    /// The context directory (empty for a remote, archive or empty context).
    pub fn context(&self) -> &Path {
        match &self.context {
            ContextSource::Dir(dir) => dir,
            _ => Path::new(""),
        }
    }

    /// An extra named context, a local directory the Dockerfile uses as
    /// `FROM name` or `COPY --from=name`.
    pub fn named_context(self, name: impl Into<String>, dir: impl Into<PathBuf>) -> Build {
        self.named_context_source(name, NamedContext::Dir(dir.into()))
    }

    /// A named context that is an image (`FROM name` builds on it).
    pub fn named_context_image(
        self,
        name: impl Into<String>,
        reference: impl Into<String>,
    ) -> Build {
        self.named_context_source(name, NamedContext::Image(reference.into()))
    }

    /// A named context from any source; `value.parse()` reads buildx's
    /// `--build-context` forms. A name given again replaces the earlier one.
    pub fn named_context_source(mut self, name: impl Into<String>, source: NamedContext) -> Build {
        let name = name.into();
        self.context_builds.remove(&name);
        self.contexts.insert(name, source);
        self
    }

    /// A named context that is the result another build of the same
    /// `Client::build_all` produces: `index` is that build's position in the
    /// list (bake's `contexts = { name = "target:other" }`). The other
    /// build's frontend result is handed over inside the daemon, as buildx
    /// does it (a frontend input through the gateway API): nothing is
    /// tagged or pushed for it. This build's frontend starts once the
    /// other's has run, and the other keeps its build open until this one
    /// is done.
    pub fn named_context_from(mut self, name: impl Into<String>, index: usize) -> Build {
        let name = name.into();
        self.contexts.remove(&name);
        self.context_builds.insert(name, index);
        self
    }

    /// The builds (by index) whose images this build uses as contexts.
    pub fn depends_on(&self) -> Vec<usize> {
        self.context_builds.values().copied().collect()
    }
}

/// The canonical directory, or why `path` is not one (`missing` when there
/// is nothing at all).
pub(crate) fn existing_dir(path: &Path, missing: &str) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(path).map_err(|_| missing.to_string())?;
    if !meta.is_dir() {
        return Err("is not a directory".to_string());
    }
    std::fs::canonicalize(path).map_err(|e| format!("cannot be resolved: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_has_one_source() {
        let b = Build::new(".")
            .named_context("a", "/x")
            .named_context_from("a", 1)
            .named_context_image("b", "img")
            .named_context("b", "/y");
        assert!(!b.contexts.contains_key("a"));
        assert_eq!(b.context_builds.get("a"), Some(&1));
        assert_eq!(b.contexts.get("b"), Some(&NamedContext::Dir("/y".into())));
    }
}
