//! Typed build outputs: what a [`Build`](crate::Build) produces and where it
//! lands. Each [`Output`] becomes one exporter of the same solve; the daemon
//! kind (a Docker Engine's BuildKit or a standalone buildkitd) decides the
//! exporter names, so callers never spell them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::output::{Destination, Export};
use crate::spec::SpecError;

/// One output of a build.
///
/// ```
/// use rbuild::Output;
/// let push = Output::registry();                       // push the tagged image
/// let tar = Output::tar("app.tar");                     // a tarball of the filesystem
/// let parsed = Output::parse("type=oci,dest=app.oci")?; // buildx's -o syntax
/// # Ok::<(), rbuild::SpecError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Output {
    /// An image. On a Docker Engine it is stored in the engine; on buildkitd
    /// it stays in the daemon's store unless pushed.
    Image(ImageOutput),
    /// A docker-format image archive: loaded into the Docker Engine, or
    /// written to a file or stream.
    Docker {
        /// Where the archive goes.
        dest: ImageArchive,
        /// Image exporter options (`compression`, `oci-mediatypes`, ...).
        attrs: BTreeMap<String, String>,
    },
    /// An OCI image layout tarball.
    Oci {
        /// Where the tarball goes.
        dest: FileDest,
        /// Image exporter options.
        attrs: BTreeMap<String, String>,
    },
    /// The final filesystem as a tarball.
    Tar(FileDest),
    /// The final filesystem merged into a local directory.
    Local {
        /// The directory (created when missing; its parent must exist).
        dir: PathBuf,
        /// Exporter options (`platform-split`).
        attrs: BTreeMap<String, String>,
    },
    /// Nothing is exported: the build only warms the cache.
    CacheOnly,
    /// Escape hatch: an exporter of the daemon's by its own name and raw
    /// attributes, for options this type does not model.
    Exporter {
        /// The daemon's exporter type (`image`, `tar`, ...).
        kind: String,
        /// Its attributes, sent as they are.
        attrs: BTreeMap<String, String>,
        /// Where its files go, for exporters that send files back.
        dest: Option<FileDest>,
    },
}

/// An image output: names, push, and exporter options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageOutput {
    /// Image names; empty means the build's tags.
    pub names: Vec<String>,
    /// Push to the names' registries.
    pub push: bool,
    /// Other image exporter options (`compression=zstd`, `oci-mediatypes`,
    /// `annotation.*`, ...), with booleans already normalised.
    pub attrs: BTreeMap<String, String>,
}

/// Where a single-file output goes.
#[derive(Clone, Debug)]
pub enum FileDest {
    /// A file, written beside its final name and renamed into place only
    /// when the whole build succeeded.
    Path(PathBuf),
    /// Standard output (cannot be made atomic).
    Stdout,
    /// A stream for the caller: chunks arrive as the daemon sends them;
    /// the channel closes when the export ends.
    Stream(mpsc::Sender<Bytes>),
}

/// Where a docker-format archive goes.
#[derive(Clone, Debug)]
pub enum ImageArchive {
    /// Into the Docker Engine's image store (`--load`).
    Load,
    /// A file or stream.
    File(FileDest),
}

impl Output {
    /// The image, pushed to the registry its names say.
    pub fn registry() -> Output {
        Output::Image(ImageOutput {
            push: true,
            ..ImageOutput::default()
        })
    }

    /// The image in the daemon's store (on an engine: its image list).
    pub fn image() -> Output {
        Output::Image(ImageOutput::default())
    }

    /// The image loaded into the Docker Engine.
    pub fn load() -> Output {
        Output::Docker {
            dest: ImageArchive::Load,
            attrs: BTreeMap::new(),
        }
    }

    /// The filesystem as a tarball at `path`.
    pub fn tar(path: impl Into<PathBuf>) -> Output {
        Output::Tar(FileDest::Path(path.into()))
    }

    /// An OCI layout tarball at `path`.
    pub fn oci(path: impl Into<PathBuf>) -> Output {
        Output::Oci {
            dest: FileDest::Path(path.into()),
            attrs: BTreeMap::new(),
        }
    }

    /// The filesystem merged into directory `dir`.
    pub fn local(dir: impl Into<PathBuf>) -> Output {
        Output::Local {
            dir: dir.into(),
            attrs: BTreeMap::new(),
        }
    }

    /// Parses buildx's `-o` syntax: `type=KIND,key=value,...`, a bare
    /// directory (local) or `-` (a tar on stdout).
    ///
    /// # Errors
    ///
    /// [`SpecError`] when `spec` is not `type=...,key=value` CSV, names an unknown type, or
    /// lacks or misuses an attribute (`dest`, `name`, `push`, ...).
    pub fn parse(spec: &str) -> Result<Output, SpecError> {
        // Not an exporter of the daemon's: the solve simply has none.
        if spec.trim() == "type=cacheonly" {
            return Ok(Output::CacheOnly);
        }
        crate::output::parse_output(spec).map(Output::from_export)
    }

    /// Reads a parsed exporter back into its typed form.
    fn from_export(e: Export) -> Output {
        let file = |d: &Destination| match d {
            Destination::File(p) => Some(FileDest::Path(p.clone())),
            Destination::Stdout => Some(FileDest::Stdout),
            _ => None,
        };
        match (e.kind.as_str(), &e.dest) {
            ("image", Destination::Daemon) => {
                let mut attrs = e.attrs;
                let names = attrs
                    .remove("name")
                    .map(|n| split_names(&n))
                    .unwrap_or_default();
                let push = attrs.remove("push").is_some_and(|p| p == "true");
                Output::Image(ImageOutput { names, push, attrs })
            }
            ("docker", Destination::Load) => Output::Docker {
                dest: ImageArchive::Load,
                attrs: e.attrs,
            },
            ("docker", d) if file(d).is_some() => Output::Docker {
                dest: ImageArchive::File(file(d).unwrap_or(FileDest::Stdout)),
                attrs: e.attrs,
            },
            ("oci", d) if file(d).is_some() => Output::Oci {
                dest: file(d).unwrap_or(FileDest::Stdout),
                attrs: e.attrs,
            },
            ("tar", d) if file(d).is_some() => Output::Tar(file(d).unwrap_or(FileDest::Stdout)),
            ("local", Destination::Dir(dir)) => Output::Local {
                dir: dir.clone(),
                attrs: e.attrs,
            },
            _ => Output::Exporter {
                dest: file(&e.dest),
                kind: e.kind,
                attrs: e.attrs,
            },
        }
    }

    /// The exporter this output becomes, before daemon-specific rewriting;
    /// `tags` name image outputs that have no names of their own.
    pub(crate) fn to_export(&self, tags: &[String]) -> Option<Export> {
        let named = |mut attrs: BTreeMap<String, String>| {
            if !attrs.contains_key("name") && !tags.is_empty() {
                attrs.insert("name".to_string(), tags.join(","));
            }
            attrs
        };
        let export = match self {
            Output::Image(img) => {
                let mut attrs = img.attrs.clone();
                if !img.names.is_empty() {
                    attrs.insert("name".to_string(), img.names.join(","));
                }
                if img.push {
                    attrs.insert("push".to_string(), "true".to_string());
                }
                crate::output::image_export(named(attrs))
            }
            Output::Docker { dest, attrs } => Export {
                kind: "docker".to_string(),
                attrs: named(attrs.clone()),
                dest: match dest {
                    ImageArchive::Load => Destination::Load,
                    ImageArchive::File(f) => f.destination(),
                },
            },
            Output::Oci { dest, attrs } => Export {
                kind: "oci".to_string(),
                attrs: named(attrs.clone()),
                dest: dest.destination(),
            },
            Output::Tar(dest) => Export {
                kind: "tar".to_string(),
                attrs: BTreeMap::new(),
                dest: dest.destination(),
            },
            Output::Local { dir, attrs } => Export {
                kind: "local".to_string(),
                attrs: attrs.clone(),
                dest: Destination::Dir(dir.clone()),
            },
            Output::CacheOnly => return None,
            Output::Exporter { kind, attrs, dest } => Export {
                kind: kind.clone(),
                attrs: attrs.clone(),
                dest: dest
                    .as_ref()
                    .map_or(Destination::Daemon, FileDest::destination),
            },
        };
        Some(export)
    }
}

impl FileDest {
    fn destination(&self) -> Destination {
        match self {
            FileDest::Path(p) => Destination::File(p.clone()),
            FileDest::Stdout => Destination::Stdout,
            FileDest::Stream(tx) => Destination::Stream(crate::output::Channel(tx.clone())),
        }
    }
}

/// `a,b` as an exporter's `name` list.
fn split_names(names: &str) -> Vec<String> {
    names
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_specs_read_back_as_typed_outputs() {
        match Output::parse("type=registry,name=r/a:1,compression=zstd").unwrap() {
            Output::Image(img) => {
                assert!(img.push);
                assert_eq!(img.names, ["r/a:1"]);
                assert_eq!(img.attrs["compression"], "zstd");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Output::parse("type=docker").unwrap(),
            Output::Docker {
                dest: ImageArchive::Load,
                ..
            }
        ));
        assert!(matches!(
            Output::parse("-").unwrap(),
            Output::Tar(FileDest::Stdout)
        ));
        assert!(matches!(
            Output::parse("out").unwrap(),
            Output::Local { .. }
        ));
        assert!(matches!(
            Output::parse("type=cacheonly").unwrap(),
            Output::CacheOnly
        ));
    }

    #[test]
    fn typed_outputs_become_the_same_exporters_as_their_specs() {
        let tags = vec!["r/a:1".to_string()];
        for spec in [
            "type=registry",
            "type=image,compression=zstd",
            "type=oci,dest=a.tar",
            "type=docker,dest=d.tar",
            "type=tar,dest=t.tar",
            "type=local,dest=out",
        ] {
            let mut want = crate::output::parse_output(spec).unwrap();
            let names_image = matches!(want.kind.as_str(), "image" | "docker" | "oci");
            if names_image {
                want.attrs.insert("name".into(), tags.join(","));
            }
            let got = Output::parse(spec).unwrap().to_export(&tags).unwrap();
            assert_eq!(got, want, "{spec}");
        }
        assert!(Output::CacheOnly.to_export(&tags).is_none());
    }
}
