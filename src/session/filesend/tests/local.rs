//! `local` exports: the test plays the daemon's fsutil sender.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use crate::proto::fsutil::types::packet::PacketType;
use crate::proto::fsutil::types::{Packet, Stat};
use crate::session::filesync::stat::mode;

use super::*;

const DIR: u32 = mode::DIR;
const LINK: u32 = mode::SYMLINK | 0o777;
/// 2023-11-14T22:13:20.123456789Z, with nanoseconds that must survive.
const MTIME: i64 = 1_700_000_000_123_456_789;

/// A listing: each entry with the content it serves when requested.
type Listing<'a> = Vec<(Stat, &'a [u8])>;

fn stat(path: &str, mode: u32, linkname: &str) -> Stat {
    Stat {
        path: path.to_owned(),
        mode,
        linkname: linkname.to_owned(),
        mod_time: MTIME,
        ..Stat::default()
    }
}

fn encode(kind: PacketType, id: u32, stat: Option<Stat>, data: &[u8]) -> Bytes {
    let packet = Packet {
        r#type: kind as i32,
        id,
        stat,
        data: Bytes::copy_from_slice(data),
    };
    packet.encode_to_vec().into()
}

/// Plays fsutil's sender (`send.go`): lists every entry, answers each `REQ` with the file in
/// two chunks plus an empty EOF, and answers `FIN` with `FIN`. Returns the requested IDs.
async fn send_tree(
    channel: &Channel,
    md: &[(&'static str, &str)],
    entries: &[(Stat, &[u8])],
) -> Result<Vec<u32>, Status> {
    let (tx, rx) = mpsc::channel(4 * entries.len() + 8);
    for (stat, content) in entries {
        // fsutil lists a file with its size.
        let mut stat = stat.clone();
        if stat.mode & (mode::DIR | mode::SYMLINK) == 0 {
            stat.size = content.len() as i64;
        }
        tx.send(encode(PacketType::PacketStat, 0, Some(stat), &[]))
            .await
            .expect("queued");
    }
    tx.send(encode(PacketType::PacketStat, 0, None, &[]))
        .await
        .expect("queued");
    let mut responses = open_call(channel, md, rx).await?;
    let (mut requested, mut fin_sent) = (Vec::new(), false);
    while let Some(raw) = responses.message().await? {
        let packet = Packet::decode(raw).expect("packet");
        match PacketType::try_from(packet.r#type).expect("type") {
            PacketType::PacketReq => {
                requested.push(packet.id);
                let content = entries[packet.id as usize].1;
                let (a, b) = content.split_at(content.len() / 2);
                for chunk in [a, b].into_iter().filter(|c| !c.is_empty()) {
                    let _ = tx
                        .send(encode(PacketType::PacketData, packet.id, None, chunk))
                        .await;
                }
                let _ = tx
                    .send(encode(PacketType::PacketData, packet.id, None, &[]))
                    .await;
            }
            PacketType::PacketFin => {
                fin_sent = true;
                let _ = tx.send(encode(PacketType::PacketFin, 0, None, &[])).await;
            }
            other => panic!("unexpected {other:?} from the receiver"),
        }
    }
    // The daemon never half-closes; the receiver ends the call after our FIN.
    drop(tx);
    assert!(fin_sent, "the call ended OK only after FIN");
    Ok(requested)
}

fn md_of(path: &Path) -> std::fs::Metadata {
    std::fs::symlink_metadata(path).expect("lstat")
}

#[tokio::test]
async fn local_export_of_a_tree_merges_at_commit() {
    let base = tempfile::tempdir().expect("tempdir");
    let dest = base.path().join("out");
    std::fs::create_dir_all(dest.join("bin")).expect("mkdir");
    std::fs::write(dest.join("bin/old"), "kept").expect("write");
    std::fs::write(dest.join("keep.txt"), "kept").expect("write");
    std::fs::write(dest.join("link"), "replaced by a symlink").expect("write");

    let tool: &[u8] = b"#!/bin/sh\necho hi\n";
    let entries: Listing = vec![
        (stat("bin", DIR | 0o755, ""), b""),
        (stat("bin/tool", 0o755, ""), tool),
        (stat("bin/tool-link", 0o755, "bin/tool"), b""),
        (stat("data", DIR | 0o750, ""), b""),
        (stat("data/empty", 0o644, ""), b""),
        (stat("data/über.txt", 0o640, ""), "grüße".as_bytes()),
        (
            stat("dev", mode::DEVICE | mode::CHAR_DEVICE | 0o666, ""),
            b"",
        ),
        (stat("fifo", mode::NAMED_PIPE | 0o600, ""), b""),
        (stat("link", LINK, "bin/tool"), b""),
        (stat("outside-link", LINK, "/etc/passwd"), b""),
        (stat("setuid", mode::SETUID | 0o755, ""), b"suid"),
        (stat("sticky", DIR | mode::STICKY | 0o777, ""), b""),
    ];
    let (channel, outputs) = serve(HashMap::from([(0, ExportTarget::Dir(dest.clone()))])).await;
    let requested = send_tree(&channel, &[], &entries).await.expect("export");
    assert_eq!(requested, [1, 4, 5, 10], "regular non-hardlink files only");
    assert!(!dest.join("data").exists(), "nothing in dest before commit");

    assert_eq!(outputs.commit().await.expect("commit"), [dest.as_path()]);
    assert_eq!(names(base.path()), ["out"], "no staging dir left");
    let at = |p: &str| dest.join(p);
    assert_eq!(
        std::fs::read_to_string(at("keep.txt")).expect("kept"),
        "kept"
    );
    assert_eq!(
        std::fs::read_to_string(at("bin/old")).expect("kept"),
        "kept"
    );
    assert_eq!(std::fs::read(at("bin/tool")).expect("tool"), tool);
    assert_eq!(md_of(&at("bin/tool")).mode() & 0o7777, 0o755);
    assert_eq!(
        md_of(&at("bin/tool")).ino(),
        md_of(&at("bin/tool-link")).ino()
    );
    assert_eq!(md_of(&at("data")).mode() & 0o7777, 0o750);
    assert_eq!(md_of(&at("data/empty")).len(), 0);
    assert_eq!(
        std::fs::read_to_string(at("data/über.txt")).expect("utf-8"),
        "grüße"
    );
    assert_eq!(md_of(&at("data/über.txt")).mode() & 0o7777, 0o640);
    assert!(!at("dev").exists(), "device nodes are skipped");
    assert!(md_of(&at("fifo")).file_type().is_fifo());
    assert_eq!(
        std::fs::read_link(at("link")).expect("link"),
        Path::new("bin/tool")
    );
    let outside = std::fs::read_link(at("outside-link")).expect("link");
    assert_eq!(outside, Path::new("/etc/passwd"));
    assert_eq!(md_of(&at("setuid")).mode() & 0o7777, 0o4755);
    assert_eq!(md_of(&at("sticky")).mode() & 0o7777, 0o1777);
    for path in [
        "bin/tool",
        "data",
        "data/über.txt",
        "link",
        "fifo",
        "sticky",
    ] {
        let md = md_of(&at(path));
        assert_eq!(
            (md.mtime(), md.mtime_nsec()),
            (MTIME / 1_000_000_000, MTIME % 1_000_000_000),
            "{path}"
        );
    }
}

#[tokio::test]
async fn escapes_are_refused_and_touch_nothing() {
    let base = tempfile::tempdir().expect("tempdir");
    let (dest, outside) = (base.path().join("dest"), base.path().join("outside"));
    std::fs::create_dir(&dest).expect("mkdir");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(dest.join("sentinel"), "old").expect("write");
    let outside_str = outside.to_str().expect("utf-8 temp path");
    let cases: Vec<(Listing, &str)> = vec![
        (vec![(stat("../x", 0o644, ""), b"x")], "`..`"),
        (
            vec![(stat("/tmp/rbuild-escape", 0o644, ""), b"x")],
            "absolute",
        ),
        (
            vec![
                (stat("a", LINK, outside_str), b""),
                (stat("a/passwd", 0o644, ""), b"x"),
            ],
            "through the symlink \"a\"",
        ),
        (
            vec![
                (stat("d", DIR | 0o755, ""), b""),
                (stat("d/l", LINK, outside_str), b""),
                (stat("d/l/x", DIR | 0o755, ""), b""),
            ],
            "through the symlink \"d/l\"",
        ),
        (vec![(stat("h", 0o644, "../sentinel"), b"")], "hardlink"),
        (vec![(stat("h", 0o644, "/etc/passwd"), b"")], "hardlink"),
    ];
    for (entries, want) in cases {
        let target = HashMap::from([(0, ExportTarget::Dir(dest.clone()))]);
        let (channel, outputs) = serve(target).await;
        let err = send_tree(&channel, &[], &entries).await.expect_err(want);
        assert!(err.message().contains(want), "{want}: {err:?}");
        let err = outputs.commit().await.expect_err("failed export");
        assert!(err.to_string().contains(want), "{err}");
        assert_eq!(names(&dest), ["sentinel"], "{want}");
        assert!(names(&outside).is_empty(), "{want}");
        assert_eq!(
            names(base.path()),
            ["dest", "outside"],
            "{want}: staging left"
        );
    }
    assert!(!Path::new("/tmp/rbuild-escape").exists());
}

#[tokio::test]
async fn concurrent_exporters_and_platform_streams() {
    let base = tempfile::tempdir().expect("tempdir");
    let (tar, dir) = (base.path().join("image.tar"), base.path().join("a/b/out"));
    let targets = HashMap::from([
        (0, ExportTarget::File(tar.clone())),
        (1, ExportTarget::Dir(dir.clone())),
    ]);
    let (channel, outputs) = serve(targets).await;
    let data = tarball(1 << 20, 3);
    let chunks: Vec<&[u8]> = data.chunks(64 << 10).collect();
    let platform = |p: &str| -> Listing<'static> {
        vec![
            (stat(p, DIR | 0o755, ""), b""),
            (stat(&format!("{p}/bin"), DIR | 0o755, ""), b""),
            (stat(&format!("{p}/bin/app"), 0o755, ""), b"\x7fELF"),
        ]
    };
    let (amd64, arm64) = (platform("linux_amd64"), platform("linux_arm64"));
    let id1 = [("buildkit-attachable-exporter-id", "1")];
    let (file, a, b) = tokio::join!(
        send_file(
            &channel,
            &[("buildkit-attachable-exporter-id", "0")],
            &chunks
        ),
        send_tree(&channel, &id1, &amd64),
        send_tree(&channel, &id1, &arm64),
    );
    file.expect("tar");
    assert_eq!((a.expect("amd64"), b.expect("arm64")), (vec![2], vec![2]));
    assert_eq!(names(base.path()).len(), 2, "a temp file and a staging dir");

    let written = outputs.commit().await.expect("commit");
    assert_eq!(written, [tar.clone(), dir.clone()]);
    assert!(std::fs::read(&tar).expect("tar") == data);
    assert_eq!(names(&dir), ["linux_amd64", "linux_arm64"]);
    assert_eq!(
        std::fs::read(dir.join("linux_arm64/bin/app")).expect("app"),
        b"\x7fELF"
    );
    let mode = md_of(&dir).permissions().mode();
    assert_eq!(mode & 0o700, 0o700, "a new dest is a normal directory");
}

#[tokio::test]
async fn many_files_and_large_ones() {
    let base = tempfile::tempdir().expect("tempdir");
    let dest = base.path().join("out");
    let big = tarball(6 << 20, 5);
    let names_: Vec<String> = (0..2000).map(|i| format!("d/f{i:05}")).collect();
    let mut entries: Listing = vec![
        (stat("big", 0o644, ""), &big),
        (stat("d", DIR | 0o755, ""), b""),
    ];
    entries.extend(names_.iter().map(|n| (stat(n, 0o600, ""), n.as_bytes())));
    let (channel, outputs) = serve(HashMap::from([(0, ExportTarget::Dir(dest.clone()))])).await;
    let requested = send_tree(&channel, &[], &entries).await.expect("export");
    assert_eq!(requested.len(), 2001);
    outputs.commit().await.expect("commit");
    assert!(std::fs::read(dest.join("big")).expect("big") == big);
    assert_eq!(names(&dest.join("d")).len(), 2000);
    let last = std::fs::read_to_string(dest.join("d/f01999")).expect("last");
    assert_eq!(last, "d/f01999");
}
