//! Twenty builds of distinct contexts at once on one engine, each its own
//! rbuild process (as parallel CI jobs on one runner): every one succeeds
//! and every output holds what its own context says, so no session, upload
//! or export is crossed with another's.

mod support;

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use support::*;

const BUILDS: usize = 20;

struct Job {
    ctx: tempfile::TempDir,
    content: String,
    dest: PathBuf,
    tar: bool,
    child: Child,
}

#[test]
fn twenty_concurrent_builds_each_export_their_own_context() {
    let stack = stack();
    let out = tempfile::tempdir().unwrap();
    let dockerfile = "ARG BASE\nFROM ${BASE}\nCOPY id.txt /in\n\
                      RUN mkdir /out && cp /in /out/id && sha256sum /in | cut -d' ' -f1 > /out/sum\n\
                      FROM scratch\nCOPY --from=0 /out /\n";
    let started = Instant::now();
    let jobs: Vec<Job> = (0..BUILDS)
        .map(|i| {
            // Different sizes too, so a crossed upload cannot look right.
            let content = format!("{}\n", unique(&format!("job{i}"))).repeat(1 + i * 50);
            let ctx = context(&[("Dockerfile", dockerfile), ("id.txt", &content)]);
            let tar = i % 2 == 1;
            let dest = out.path().join(if tar {
                format!("{i}.tar")
            } else {
                format!("{i}")
            });
            let kind = if tar { "tar" } else { "local" };
            let child = build_cmd(&stack)
                .args(["--build-arg", &format!("BASE={}", stack.base)])
                .args(["-o", &format!("type={kind},dest={}", dest.display())])
                .arg(ctx.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            Job {
                ctx,
                content,
                dest,
                tar,
                child,
            }
        })
        .collect();
    for (i, job) in jobs.into_iter().enumerate() {
        let run = job.child.wait_with_output().unwrap();
        assert_success(&run);
        let dir = if job.tar {
            let unpacked = out.path().join(format!("{i}-unpacked"));
            std::fs::create_dir(&unpacked).unwrap();
            let tar = std::process::Command::new("tar")
                .arg("-xf")
                .arg(&job.dest)
                .arg("-C")
                .arg(&unpacked)
                .status()
                .unwrap();
            assert!(tar.success(), "build {i}: not a tar");
            unpacked
        } else {
            job.dest.clone()
        };
        let id = std::fs::read_to_string(dir.join("id")).unwrap();
        assert!(id == job.content, "build {i} exported another context");
        let sum = std::fs::read_to_string(dir.join("sum")).unwrap();
        assert_eq!(sum.trim(), sha256_hex(job.content.as_bytes()), "build {i}");
        drop(job.ctx);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(300), "20 builds took {took:?}");
    eprintln!("{BUILDS} concurrent builds in {took:?}");
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
