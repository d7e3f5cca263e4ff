//! Build outputs: what the daemon's exporters produce and where it lands.
//!
//! A build names its outputs as typed [`Output`]s ([`Output::registry`],
//! [`Output::tar`], [`Output::local`], ... or [`Output::parse`] of buildx's
//! `type=...` syntax). Internally each output becomes one exporter of a single
//! `SolveRequest` — its index is the exporter id the daemon echoes back when
//! it sends files — plus the [`Destination`] of what comes back; the build's
//! result reports each one as an [`OutputResult`] of an [`OutputKind`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::daemon::DaemonKind;

mod files;
mod load;
mod parse;
mod result;
mod stream;
mod typed;

pub(crate) use files::check_destinations;
pub use files::write_atomically;
pub(crate) use load::LoadSink;
pub(crate) use parse::parse_output;
pub(crate) use result::attribute;
pub use result::{OutputKind, OutputResult};
pub(crate) use stream::ChannelSink;
pub use typed::{FileDest, ImageArchive, ImageOutput, Output};

/// One exporter of a build, as the Solve request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Export {
    /// The daemon's exporter type (`image`, `moby`, `tar`, `local`, ...).
    pub(crate) kind: String,
    /// Its attributes, as sent.
    pub(crate) attrs: BTreeMap<String, String>,
    /// Where the exporter's files go on this machine, if it sends any.
    pub(crate) dest: Destination,
}

/// Where an exporter's result ends up on the client side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Nothing comes back (the image stays on the daemon or in a registry).
    Daemon,
    /// One file (tar, oci, docker), written atomically.
    File(PathBuf),
    /// One file streamed to standard output.
    Stdout,
    /// A directory tree (local), merged into the directory.
    Dir(PathBuf),
    /// A docker-format tarball loaded into the Docker Engine at `DOCKER_HOST`.
    Load,
    /// One file's bytes handed to the caller's channel as they arrive.
    Stream(Channel),
}

/// A caller's byte channel; equal when it is the same channel.
#[derive(Clone, Debug)]
pub struct Channel(pub tokio::sync::mpsc::Sender<bytes::Bytes>);

impl PartialEq for Channel {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_channel(&other.0)
    }
}

impl Eq for Channel {}

/// Outputs that cannot go together, found before the daemon is contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OutputError {
    /// An image output pushes but nothing names the image.
    #[error("pushing needs an image name: tag the build or give the output a name")]
    PushWithoutName,
    /// More than one output writes to standard output.
    #[error("only one output can go to stdout")]
    TwoStdouts,
}

const FLAG: &str = "output";

/// Resolves typed outputs into the exporters of one solve; every mistake is
/// reported here, before the daemon is contacted.
pub(crate) fn resolve(
    outputs: &[crate::output::Output],
    tags: &[String],
    daemon: DaemonKind,
) -> Result<Vec<Export>, OutputError> {
    use crate::output::Output;
    let cache_only = outputs.iter().any(|o| matches!(o, Output::CacheOnly));
    let mut exports: Vec<Export> = outputs.iter().filter_map(|o| o.to_export(tags)).collect();
    if exports.is_empty() && !cache_only && (!tags.is_empty() || daemon != DaemonKind::Buildkitd) {
        // buildx's docker driver keeps the image in the engine by default.
        let mut attrs = BTreeMap::new();
        if !tags.is_empty() {
            attrs.insert("name".to_string(), tags.join(","));
        }
        exports.push(image_export(attrs));
    }
    for e in &exports {
        if e.kind == "image"
            && e.attrs.get("push").is_some_and(|p| p == "true")
            && !e.attrs.contains_key("name")
        {
            return Err(OutputError::PushWithoutName);
        }
    }
    if exports
        .iter()
        .filter(|e| e.dest == Destination::Stdout)
        .count()
        > 1
    {
        return Err(OutputError::TwoStdouts);
    }
    Ok(on_daemon(exports, daemon))
}

/// On a Docker Engine the engine itself is the image store: `image` becomes
/// `moby` (stored in the engine, pushed when asked) and `--load` needs no
/// tarball at all, so both collapse into one `moby` exporter.
fn on_daemon(exports: Vec<Export>, daemon: DaemonKind) -> Vec<Export> {
    if daemon == DaemonKind::Buildkitd {
        return exports;
    }
    let mut out: Vec<Export> = Vec::new();
    for mut e in exports {
        let into_engine =
            e.kind == "image" || (e.dest == Destination::Load && daemon == DaemonKind::Engine);
        if !into_engine {
            out.push(e);
            continue;
        }
        e.kind = "moby".to_string();
        e.dest = Destination::Daemon;
        if let Some(existing) = out.iter_mut().find(|x| x.kind == "moby") {
            for (k, v) in e.attrs {
                if k == "push" && existing.attrs.get("push").is_some_and(|p| p == "true") {
                    continue;
                }
                existing.attrs.insert(k, v);
            }
        } else {
            out.push(e);
        }
    }
    out
}

impl Export {
    /// An image comes out of it (annotations apply to it).
    pub(crate) fn produces_image(&self) -> bool {
        matches!(self.kind.as_str(), "image" | "moby" | "oci" | "docker")
    }
}

pub(crate) fn image_export(attrs: BTreeMap<String, String>) -> Export {
    Export {
        kind: "image".to_string(),
        attrs,
        dest: Destination::Daemon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::output::Output;

    /// The CLI's order: `-o` values, then `--push`, then `--load`.
    struct Flags(Vec<Output>, Vec<String>);

    fn flags(outputs: &[&str], tags: &[&str], push: bool, load: bool) -> Flags {
        let mut list: Vec<Output> = outputs.iter().map(|s| Output::parse(s).unwrap()).collect();
        if push {
            list.push(Output::registry());
        }
        if load {
            list.push(Output::load());
        }
        Flags(list, tags.iter().map(|s| s.to_string()).collect())
    }

    fn resolve(f: &Flags, daemon: DaemonKind) -> Result<Vec<Export>, OutputError> {
        super::resolve(&f.0, &f.1, daemon)
    }

    #[test]
    fn the_seed_command_is_one_solve_on_an_engine() {
        // -t r/app:1 --push --load -o type=tar,dest=app.tar
        let e = resolve(
            &flags(&["type=tar,dest=app.tar"], &["r/app:1"], true, true),
            DaemonKind::Engine,
        )
        .unwrap();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].kind, "tar");
        assert_eq!(e[0].dest, Destination::File("app.tar".into()));
        assert_eq!(e[1].kind, "moby");
        assert_eq!(e[1].attrs["name"], "r/app:1");
        assert_eq!(e[1].attrs["push"], "true");
    }

    #[test]
    fn load_on_buildkitd_streams_a_docker_tarball() {
        let e = resolve(&flags(&[], &["a:1"], true, true), DaemonKind::Buildkitd).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].kind.as_str(), &e[0].dest),
            ("image", &Destination::Daemon)
        );
        assert_eq!(e[0].attrs["push"], "true");
        assert_eq!(
            (e[1].kind.as_str(), &e[1].dest),
            ("docker", &Destination::Load)
        );
        assert_eq!(e[1].attrs["name"], "a:1");
    }

    #[test]
    fn bare_forms_follow_buildx() {
        assert_eq!(
            parse_output("out").unwrap().dest,
            Destination::Dir("out".into())
        );
        let e = parse_output("-").unwrap();
        assert_eq!((e.kind.as_str(), e.dest), ("tar", Destination::Stdout));
        let e = parse_output("type=registry,name=r/a").unwrap();
        assert_eq!(
            (e.kind.as_str(), e.attrs["push"].as_str()),
            ("image", "true")
        );
        assert_eq!(parse_output("type=docker").unwrap().dest, Destination::Load);
        assert_eq!(
            parse_output("type=oci,dest=a.tar").unwrap().dest,
            Destination::File("a.tar".into())
        );
    }

    #[test]
    fn output_mistakes_are_explained() {
        let cases = [
            ("type=tar", "needs dest=FILE"),
            ("type=local", "needs dest=DIR"),
            ("type=zip,dest=a", "unknown output type"),
            ("type=tar,dest=a,colour=red", "unknown attribute"),
            ("type=image,push=perhaps", "not a boolean"),
            ("type=image,dest=x", "takes no dest"),
        ];
        for (input, want) in cases {
            let err = parse_output(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
        let err = resolve(
            &flags(&["-", "type=tar,dest=-"], &[], false, false),
            DaemonKind::Engine,
        )
        .unwrap_err();
        assert!(err.to_string().contains("stdout"));
        let err = resolve(&flags(&[], &[], true, false), DaemonKind::Buildkitd).unwrap_err();
        assert!(err.to_string().contains("image name"));
    }

    #[test]
    fn destinations_are_checked_before_the_build() {
        let dir = tempfile::tempdir().unwrap();
        let ok = parse_output(&format!("type=tar,dest={}/a.tar", dir.path().display())).unwrap();
        assert!(check_destinations(&[ok]).is_ok());
        let bad = parse_output("type=tar,dest=/nonexistent/dir/a.tar").unwrap();
        assert!(
            check_destinations(&[bad])
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        let dir_as_file = parse_output(&format!("type=tar,dest={}", dir.path().display())).unwrap();
        assert!(check_destinations(&[dir_as_file]).is_err());
    }

    #[test]
    fn each_output_gets_only_its_own_metadata() {
        let exports = resolve(
            &flags(
                &["type=oci,dest=a.tar", "type=tar,dest=b.tar"],
                &["r/a:1"],
                true,
                false,
            ),
            DaemonKind::Engine,
        )
        .unwrap();
        // oci (0), tar (1), moby (2): the merged map is the moby image's.
        let merged = BTreeMap::from([
            (
                "containerimage.digest".to_string(),
                "sha256:moby".to_string(),
            ),
            ("image.name".to_string(), "r/a:1".to_string()),
            ("cache.manifest".to_string(), "x".to_string()),
        ]);
        let oci = BTreeMap::from([(
            "containerimage.digest".to_string(),
            "sha256:oci".to_string(),
        )]);
        let per = BTreeMap::from([(0u32, oci)]);
        let results = attribute(&exports, &merged, &per);
        assert_eq!(results[0].metadata["containerimage.digest"], "sha256:oci");
        assert!(results[1].metadata.is_empty(), "tar reports nothing");
        assert_eq!(results[2].exporter, "moby");
        assert_eq!(results[2].metadata["containerimage.digest"], "sha256:moby");
        assert!(!results[2].metadata.contains_key("cache.manifest"));
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        // Only the destination is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
