//! The daemon asks `FileSync` for more than the build may send: paths outside the context,
//! through symlinks, files `.dockerignore` excludes, the neighbours of a Dockerfile kept
//! outside the context, entries that were never listed. Nothing of it is read or sent.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::FakeDaemon;
use crate::buildspec::{AttestSupport, Build};
use crate::credentials::DockerConfig;
use crate::daemon::DaemonKind;
use crate::proto::fsutil::types::Packet;
use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::moby::filesync::v1::file_sync_client::FileSyncClient;
use crate::request::{self as plan, BuildPlan};
use crate::session::SessionConfig;
use crate::session::filesync::stat::mode;

/// What the secret files outside the context hold; it must never arrive.
const SECRET: &[u8] = b"the runner's deploy key";

/// What one transfer gave the daemon: every listed path, and the content of every
/// regular file (all of them requested).
#[derive(Debug, Default)]
pub(super) struct Received {
    pub paths: Vec<String>,
    pub links: BTreeMap<String, String>,
    pub files: BTreeMap<String, Bytes>,
}

impl Received {
    fn assert_no_secret(&self) {
        for (path, data) in &self.files {
            assert!(
                !data.windows(SECRET.len()).any(|w| w == SECRET),
                "{path} carried the secret"
            );
        }
        for path in &self.paths {
            assert!(
                !path.starts_with('/') && !path.split('/').any(|c| c == ".."),
                "{path} is not inside the source"
            );
        }
    }
}

fn packet(kind: PacketType, id: u32) -> Packet {
    Packet {
        r#type: kind as i32,
        id,
        ..Packet::default()
    }
}

/// Opens `DiffCopy` for source `dir` with `md`, then plays the fsutil receiver: requests
/// every regular file listed, plus the ids in `extra`, and ends with FIN.
pub(super) async fn diff_copy(
    channel: &Channel,
    dir: &str,
    md: &[(&'static str, &str)],
    extra: &[u32],
) -> Result<Received, Status> {
    let (tx, rx) = mpsc::channel::<Packet>(1024);
    let mut request = Request::new(ReceiverStream::new(rx));
    let dir: MetadataValue<_> = dir.parse().expect("ascii");
    request.metadata_mut().insert("dir-name", dir);
    for (key, value) in md {
        let value: MetadataValue<_> = value.parse().expect("ascii");
        request.metadata_mut().append(*key, value);
    }
    let mut client = FileSyncClient::new(channel.clone());
    let mut stream = client.diff_copy(request).await?.into_inner();
    let mut got = Received::default();
    let mut listed: Vec<(String, bool)> = Vec::new();
    let mut open = 0usize;
    while let Some(p) = stream.message().await? {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => match p.stat {
                Some(stat) => {
                    let regular = stat.mode & mode::TYPE == 0;
                    if stat.mode & mode::SYMLINK != 0 {
                        got.links.insert(stat.path.clone(), stat.linkname.clone());
                    }
                    got.paths.push(stat.path.clone());
                    listed.push((stat.path, regular));
                }
                None => {
                    let wanted = listed.iter().enumerate().filter(|(_, (_, r))| *r);
                    for (id, _) in wanted {
                        tx.send(packet(PacketType::PacketReq, id as u32)).await.ok();
                        open += 1;
                    }
                    for &id in extra {
                        tx.send(packet(PacketType::PacketReq, id)).await.ok();
                        open += 1;
                    }
                    if open == 0 {
                        tx.send(packet(PacketType::PacketFin, 0)).await.ok();
                    }
                }
            },
            Ok(PacketType::PacketData) => {
                let path = listed
                    .get(p.id as usize)
                    .map(|(path, _)| path.clone())
                    .unwrap_or_else(|| format!("<id {}>", p.id));
                if p.data.is_empty() {
                    open -= 1;
                    got.files.entry(path).or_default();
                    if open == 0 {
                        tx.send(packet(PacketType::PacketFin, 0)).await.ok();
                    }
                } else {
                    let entry = got.files.entry(path).or_default();
                    *entry = [entry.as_ref(), p.data.as_ref()].concat().into();
                }
            }
            Ok(PacketType::PacketFin) => return Ok(got),
            Ok(PacketType::PacketErr) => {
                return Err(Status::unknown(String::from_utf8_lossy(&p.data)));
            }
            _ => {}
        }
    }
    Err(Status::aborted("the sender ended without FIN"))
}

/// A context holding a `.dockerignore`, secrets it excludes and symlinks pointing out,
/// beside a directory with the runner's secrets; and the plan for a build of it.
struct Layout {
    root: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        let root = tempfile::tempdir().unwrap();
        let write = |rel: &str, data: &[u8]| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        };
        write("outside/id_rsa", SECRET);
        write("ctx/Dockerfile", b"FROM scratch\nCOPY . /\n");
        write("ctx/.dockerignore", b"secrets\n**/*.key\n");
        write("ctx/app/main.rs", b"fn main() {}\n");
        write("ctx/secrets/token", SECRET);
        write("ctx/app/deploy.key", SECRET);
        // Kept apart from the context, beside the runner's own files.
        write("ci/app.Dockerfile", b"FROM scratch\n");
        write("ci/registry-password", SECRET);
        let ctx = root.path().join("ctx");
        symlink(root.path().join("outside"), ctx.join("abs")).unwrap();
        symlink("../outside", ctx.join("rel")).unwrap();
        symlink(root.path().join("outside/id_rsa"), ctx.join("key-link")).unwrap();
        Layout { root }
    }

    fn path(&self, rel: &str) -> std::path::PathBuf {
        self.root.path().join(rel)
    }

    fn plan(&self, build: Build) -> BuildPlan {
        let build = build.registry_auth(DockerConfig::default());
        plan::prepare(
            &build,
            DaemonKind::Buildkitd,
            None,
            AttestSupport::No("test".into()),
            &crate::upstream::Resolved::default(),
        )
        .expect("a valid build")
    }

    fn config(&self, plan: &BuildPlan) -> SessionConfig {
        SessionConfig {
            sources: plan.sources(),
            ..SessionConfig::default()
        }
    }
}

fn outside_abs(layout: &Layout) -> String {
    layout.path("outside/id_rsa").display().to_string()
}

#[tokio::test]
async fn nothing_outside_the_context_is_listed_or_read() {
    let layout = Layout::new();
    let plan = layout.plan(Build::new(layout.path("ctx")));
    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(layout.config(&plan)).await;

    let abs = outside_abs(&layout);
    let asks: Vec<Vec<(&'static str, &str)>> = vec![
        // Everything it may have, with no patterns at all.
        vec![],
        // Climbing out lexically, absolutely and through each symlink.
        vec![
            ("followpaths", "../outside/id_rsa"),
            ("followpaths", &abs),
            ("followpaths", "rel/id_rsa"),
            ("followpaths", "abs/id_rsa"),
            ("followpaths", "key-link"),
        ],
        vec![("include-patterns", "../**"), ("include-patterns", "/**")],
        vec![
            ("include-patterns", "rel/*"),
            ("include-patterns", "abs/**"),
        ],
    ];
    for md in &asks {
        let got = diff_copy(&d.channel, "context", md, &[])
            .await
            .expect("served");
        got.assert_no_secret();
        // Symlinks travel as links: their targets are the daemon's to resolve, in its
        // own file system, never ours.
        for link in ["abs", "rel", "key-link"] {
            if got.paths.iter().any(|p| p == link) {
                assert!(got.links.contains_key(link), "{link} sent as a link");
                assert!(!got.files.contains_key(link), "{link} not read");
            }
        }
    }
    let all = diff_copy(&d.channel, "context", &[], &[]).await.unwrap();
    assert!(all.files.contains_key("app/main.rs"), "{:?}", all.paths);
    session.close().await;
}

#[tokio::test]
async fn what_dockerignore_excludes_never_leaves() {
    let layout = Layout::new();
    let plan = layout.plan(Build::new(layout.path("ctx")));
    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(layout.config(&plan)).await;

    // The daemon drops the exclude patterns, asks for the excluded paths by name, and
    // "un-excludes" them with exceptions of its own.
    for md in [
        vec![],
        vec![
            ("followpaths", "secrets/token"),
            ("followpaths", "app/deploy.key"),
        ],
        vec![
            ("include-patterns", "secrets"),
            ("include-patterns", "**/*.key"),
        ],
        vec![
            ("exclude-patterns", "nothing"),
            ("exclude-patterns", "!secrets"),
            ("exclude-patterns", "!**/*.key"),
        ],
    ] {
        let got = diff_copy(&d.channel, "context", &md, &[])
            .await
            .expect("served");
        got.assert_no_secret();
        assert!(
            !got.paths
                .iter()
                .any(|p| p.starts_with("secrets") || p.ends_with(".key")),
            "{md:?} got {:?}",
            got.paths
        );
    }
    // What the frontend needs still arrives: the ignore file itself, and the rest.
    let ignore = diff_copy(
        &d.channel,
        "context",
        &[("followpaths", ".dockerignore")],
        &[],
    )
    .await
    .unwrap();
    assert_eq!(ignore.paths, [".dockerignore"]);
    let rest = diff_copy(&d.channel, "context", &[], &[]).await.unwrap();
    assert!(rest.files.contains_key("app/main.rs") && rest.files.contains_key("Dockerfile"));
    session.close().await;
}

#[tokio::test]
async fn a_dockerfile_outside_the_context_brings_no_neighbours() {
    let layout = Layout::new();
    let build = Build::new(layout.path("ctx")).dockerfile_path(layout.path("ci/app.Dockerfile"));
    let plan = layout.plan(build);
    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(layout.config(&plan)).await;

    for md in [
        vec![],
        vec![("followpaths", "registry-password")],
        vec![("include-patterns", "*")],
    ] {
        let got = diff_copy(&d.channel, "dockerfile", &md, &[])
            .await
            .expect("served");
        got.assert_no_secret();
        assert!(
            got.paths.iter().all(|p| p == "app.Dockerfile"),
            "{md:?} got {:?}",
            got.paths
        );
    }
    // The frontend's own request.
    let md = [
        ("followpaths", "app.Dockerfile"),
        ("followpaths", "app.Dockerfile.dockerignore"),
    ];
    let got = diff_copy(&d.channel, "dockerfile", &md, &[]).await.unwrap();
    assert_eq!(got.files["app.Dockerfile"].as_ref(), b"FROM scratch\n");
    session.close().await;
}

#[tokio::test]
async fn unlisted_ids_and_unknown_sources_are_refused() {
    let layout = Layout::new();
    let plan = layout.plan(Build::new(layout.path("ctx")));
    let mut daemon = FakeDaemon::start().await;
    let (session, d) = daemon.attach(layout.config(&plan)).await;

    // Ids past the listing (the excluded files have none), and a directory's id.
    for extra in [[9_999], [u32::MAX], [0]] {
        let md = [("followpaths", "app")];
        let err = diff_copy(&d.channel, "context", &md, &extra)
            .await
            .expect_err("refused");
        assert!(err.message().contains("invalid file id"), "{err:?}");
    }
    let err = diff_copy(&d.channel, "../outside", &[], &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // The session still serves the honest request afterwards.
    diff_copy(&d.channel, "context", &[], &[])
        .await
        .expect("served");
    session.close().await;
}

/// Keeps the fixture's paths honest: the secrets really are where the tests look.
#[test]
fn the_layout_holds_the_secrets() {
    let layout = Layout::new();
    for rel in [
        "outside/id_rsa",
        "ctx/secrets/token",
        "ci/registry-password",
    ] {
        assert_eq!(std::fs::read(layout.path(rel)).unwrap(), SECRET);
    }
    assert!(Path::new(&outside_abs(&layout)).is_file());
}
