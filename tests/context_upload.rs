//! The context upload against the real daemon: .dockerignore semantics as
//! the files that actually arrive in the build show them, file metadata,
//! incremental re-uploads, and bounded memory for big files.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use support::{assert_success, build_cmd, context, stack, stderr};

/// Lines the build printed with `PREFIX` (RUN output in plain progress is
/// `#N 0.123 PREFIX...`).
fn tagged_lines(progress: &str, prefix: &str) -> Vec<String> {
    progress
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let (step, elapsed, rest) = (parts.next()?, parts.next()?, parts.next()?);
            let is_log = step.starts_with('#') && elapsed.parse::<f64>().is_ok();
            rest.strip_prefix(prefix)
                .filter(|_| is_log)
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn dockerignore_decides_what_reaches_the_build() {
    let stack = stack();
    let ctx = context(&[
        (
            "Dockerfile",
            "ARG BASE\nFROM ${BASE}\nCOPY . /ctx\n\
             RUN cd /ctx && find . | sort | sed 's/^/LIST:/' && \
             test -x exec.sh && echo EXEC:ok && echo LINK:$(readlink link)\n",
        ),
        (
            ".dockerignore",
            "# comments are ignored\n*.log\nlogs/*.log\n!logs/keep.log\n**/*.tmp\nsecret\n\
             **/node_modules\n/rootonly.txt\ntrailingdir/\nDockerfile\n.dockerignore\n",
        ),
        ("keep.txt", "k"),
        ("drop.log", "x"),
        ("logs/a.log", "x"),
        ("logs/keep.log", "k"),
        ("logs/readme.md", "k"),
        ("nested/b.log", "k"),
        ("nested/rootonly.txt", "k"),
        ("deep/x/y/z.tmp", "x"),
        ("deep/x/y/ok.txt", "k"),
        ("secret/key", "x"),
        ("node_modules/pkg/index.js", "x"),
        ("sub/node_modules/x.js", "x"),
        ("sub/keep.md", "k"),
        ("rootonly.txt", "x"),
        ("trailingdir/f", "x"),
        ("exec.sh", "#!/bin/sh\n"),
        ("ünï.txt", "unicode"),
    ]);
    std::fs::create_dir(ctx.path().join("emptydir")).unwrap();
    std::fs::set_permissions(
        ctx.path().join("exec.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("keep.txt", ctx.path().join("link")).unwrap();

    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let progress = stderr(&out);
    let listed = tagged_lines(&progress, "LIST:");
    let want = [
        ".",
        "./deep",
        "./deep/x",
        "./deep/x/y",
        "./deep/x/y/ok.txt",
        "./emptydir",
        "./exec.sh",
        "./keep.txt",
        "./link",
        "./logs",
        "./logs/keep.log",
        "./logs/readme.md",
        "./nested",
        "./nested/b.log",
        "./nested/rootonly.txt",
        "./sub",
        "./sub/keep.md",
        "./ünï.txt",
    ];
    assert_eq!(listed, want, "\n{progress}");
    assert_eq!(tagged_lines(&progress, "EXEC:"), ["ok"]);
    assert_eq!(tagged_lines(&progress, "LINK:"), ["keep.txt"]);
}

/// `rbuild: ... context: N files (B) sent` from the end-of-build line.
fn files_sent(progress: &str) -> u64 {
    let line = progress
        .lines()
        .rfind(|l| l.contains("context:") && l.contains("sent"))
        .unwrap_or_else(|| panic!("no context summary line:\n{progress}"));
    let after = line.split("context:").nth(1).unwrap().trim();
    after
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the file count: {line}"))
}

#[test]
fn an_unchanged_rebuild_sends_only_stats() {
    let stack = stack();
    let ctx = context(&[
        (
            "Dockerfile",
            "ARG BASE\nFROM ${BASE}\nCOPY . /ctx\nRUN ls /ctx\n",
        ),
        ("a.txt", "aaaa"),
        ("b/c.txt", "cccc"),
        ("b/d.txt", "dddd"),
    ]);
    let build = || {
        let out = build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        stderr(&out)
    };
    let first = build();
    assert!(files_sent(&first) >= 4, "{first}");
    let second = build();
    assert_eq!(
        files_sent(&second),
        0,
        "unchanged rebuild sent files:\n{second}"
    );
    // Touching one file sends just that one.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(ctx.path().join("b/c.txt"), "changed").unwrap();
    let third = build();
    assert_eq!(files_sent(&third), 1, "{third}");
}

/// Peak resident memory (VmHWM) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn a_100mb_file_streams_with_bounded_client_memory() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\n\
         RUN --mount=type=bind,source=big.bin,target=/big.bin \
         echo SIZE:$(wc -c < /big.bin) && echo SUM:$(sha256sum /big.bin | cut -d' ' -f1)\n",
    )]);
    // Not all zeros, so a bug that drops or repeats chunks changes the sum.
    let mut data = Vec::with_capacity(100 << 20);
    let mut x: u32 = 1;
    while data.len() < 100 << 20 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        data.extend_from_slice(&x.to_le_bytes());
    }
    let big = ctx.path().join("big.bin");
    std::fs::write(&big, &data).unwrap();
    drop(data);
    let want_sum = {
        let out = std::process::Command::new("sha256sum")
            .arg(&big)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };

    let mut child = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let reader = std::thread::spawn({
        let stderr = child.stderr.take().unwrap();
        move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let progress = reader.join().unwrap();
    assert!(status.success(), "{progress}");
    assert_eq!(
        tagged_lines(&progress, "SIZE:"),
        [(100u64 << 20).to_string()]
    );
    assert_eq!(tagged_lines(&progress, "SUM:"), [want_sum]);
    eprintln!("peak RSS of rbuild while sending 100 MiB: {} KiB", peak);
    assert!(peak > 0, "could not sample rbuild's memory");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB grows with the file");
}
