//! Failures a user meets: a failing RUN, bad input before the build starts.
//! Each gives a clear message and a non-zero exit, never a panic.

mod support;

use support::{build_cmd, context, rbuild, stack, stderr};

#[test]
fn a_failing_run_exits_1_with_its_output_and_error() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN echo about-to-fail && exit 3\n",
    )]);
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("about-to-fail"), "step output missing:\n{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "last line: {last}");
    assert!(!err.contains("panicked"), "{err}");
}

#[track_caller]
fn assert_one_line_error(out: &std::process::Output, expect: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "unexpected success: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
    assert!(err.contains(expect), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_input_is_one_clear_line() {
    let stack = stack();
    // A context directory that does not exist (checked before connecting).
    let out = rbuild()
        .args([
            "build",
            "--addr",
            "unix:///nonexistent.sock",
            "/nonexistent/ctx",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, "/nonexistent/ctx does not exist");

    // No Dockerfile in the context.
    let ctx = context(&[("README", "no dockerfile here")]);
    let out = rbuild()
        .args(["build", "--addr", &stack.buildkit_host])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, "no Dockerfile at");

    // A -f that does not exist.
    let out = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "-f",
            "/nonexistent/Dockerfile",
        ])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, "/nonexistent/Dockerfile");

    // A malformed flag value.
    let ctx = context(&[("Dockerfile", "FROM scratch\n")]);
    let out = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--label",
            "novalue",
        ])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, "KEY=VALUE");

    // --push without a name.
    let out = rbuild()
        .args(["build", "--addr", &stack.buildkit_host, "--push"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, "-t");
}

#[test]
fn a_dockerfile_syntax_error_names_the_line() {
    let stack = stack();
    let ctx = context(&[("Dockerfile", "ARG BASE\nFROM ${BASE}\nRUNN echo typo\n")]);
    let out = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "quiet",
        ])
        .arg(ctx.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.starts_with("error: "), "{err}");
    assert!(last.to_lowercase().contains("runn"), "{err}");
    assert!(last.contains("line 3"), "{err}");
}

/// `rbuild … 2>&1 | head`: the progress reader goes away mid-build. The
/// build still finishes (its outputs are written) and exits 0, with debug
/// logging on as well; no panic from printing to a closed pipe.
#[test]
fn a_progress_reader_that_goes_away_does_not_fail_the_build() {
    use std::io::Read;
    use std::process::Stdio;

    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.2; done\n",
    )]);
    let meta = ctx.path().join("meta.json");
    for mode in ["plain", "rawjson"] {
        let _ = std::fs::remove_file(&meta);
        let mut child = rbuild()
            .args(["build", "--addr", &stack.buildkit_host, "--no-cache"])
            .args(["--progress", mode, "--metadata-file"])
            .arg(&meta)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .arg(ctx.path())
            .env("RBUILD_LOG", "rbuild=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read the first bytes of the progress, then close both pipes.
        let mut first = [0u8; 64];
        let progress: &mut dyn Read = match mode {
            "rawjson" => child.stdout.as_mut().unwrap(),
            _ => child.stderr.as_mut().unwrap(),
        };
        progress.read_exact(&mut first).unwrap();
        drop(child.stdout.take());
        drop(child.stderr.take());
        let status = child.wait().unwrap();
        assert!(status.success(), "{mode}: {status:?}");
        assert!(meta.exists(), "{mode}: the metadata file was not written");
    }
}
