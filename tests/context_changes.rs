//! A context whose files change while they are uploaded (an editor saving,
//! a code generator running beside the build): every build either uses a
//! consistent version of each file or fails with one line naming the file,
//! never a torn mix of two versions.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::faults::one_error_line;
use support::*;

/// Files a background thread keeps rewriting in place.
const HOT: usize = 8;

/// Version `n` of a hot file: a header naming it, then a filler byte and a
/// length that both depend on `n`, so a torn copy shows.
fn version(n: u64) -> Vec<u8> {
    let fill = b'a' + (n % 26) as u8;
    let len = 50_000 + (n % 13) as usize * 7_000;
    let mut data = format!("version {n}\n").into_bytes();
    data.resize(len, fill);
    data
}

/// Whether `data` is what the file held at one instant: a rewrite in
/// place passes through an empty file and prefixes of the new version, so
/// those are states it had; a mix of two versions never was.
fn consistent(data: &[u8]) -> bool {
    if data.is_empty() {
        return true;
    }
    let Some(end) = data.iter().position(|&b| b == b'\n') else {
        return b"version ".starts_with(data) || data.starts_with(b"version ");
    };
    let n = std::str::from_utf8(&data[..end])
        .ok()
        .and_then(|h| h.strip_prefix("version "))
        .and_then(|n| n.parse().ok());
    n.is_some_and(|n| version(n).starts_with(data))
}

/// Rewrites every hot file in place (truncate, then small writes) until
/// `stop`, pausing now and then so that a consistent build is possible.
fn rewrite(dir: &Path, stop: &AtomicBool) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for i in 0..HOT {
            let path = dir.join(format!("hot-{i}.txt"));
            let mut file = std::fs::File::create(&path).unwrap();
            for piece in version(n).chunks(4096) {
                file.write_all(piece).unwrap();
            }
            n += 1;
        }
        if n.is_multiple_of(40) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn files_rewritten_during_the_upload_give_a_consistent_build_or_a_clear_error() {
    let stack = stack();
    let ctx = context(&[("Dockerfile", "FROM scratch\nCOPY . /ctx\n")]);
    for i in 0..HOT {
        std::fs::write(ctx.path().join(format!("hot-{i}.txt")), version(0)).unwrap();
    }
    // Bulk that takes a moment to upload, so the rewrites overlap it.
    std::fs::File::create(ctx.path().join("bulk"))
        .unwrap()
        .set_len(50_000_000)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (dir, stop) = (ctx.path().to_path_buf(), stop.clone());
        std::thread::spawn(move || rewrite(&dir, &stop))
    };
    let (mut built, mut refused) = (0, 0);
    for round in 0..4 {
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("result");
        let run = build_cmd(&stack)
            .args([
                "--build-arg",
                &format!("round={round}-{}", unique("changes")),
            ])
            .args(["-o", &format!("type=local,dest={}", dest.display())])
            .arg(ctx.path())
            .output()
            .unwrap();
        if run.status.success() {
            built += 1;
            for i in 0..HOT {
                let data = std::fs::read(dest.join(format!("ctx/hot-{i}.txt"))).unwrap();
                assert!(
                    consistent(&data),
                    "round {round}: hot-{i}.txt is a torn copy ({} bytes, starts {:?})",
                    data.len(),
                    String::from_utf8_lossy(&data[..data.len().min(20)])
                );
            }
        } else {
            refused += 1;
            assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
            let line = one_error_line(&stderr(&run));
            assert!(
                line.contains("changed while") && line.contains("hot-"),
                "round {round}: {line}"
            );
            assert!(!dest.exists(), "a failed build wrote its output");
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!("{built} consistent builds, {refused} refused with a clear error");
}
