//! `--check` on the old engine (Docker Engine 26.1, BuildKit 0.13), whose
//! built-in Dockerfile frontend has no build checks: one `error:` line that
//! names the daemon and what to do; asked to, the retry with a newer
//! frontend image, which this machine's daemon cannot pull, and says so.
//! Outline and targets, which that frontend has, work there.

mod support;

use support::buildx::old_engine;
use support::{context, rbuild, stack, stderr, stdout};

fn check(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    rbuild()
        .current_dir(dir)
        .args([
            "build",
            "--addr",
            &old_engine(),
            "--progress",
            "plain",
            "--check",
        ])
        .args(extra)
        .arg(".")
        .output()
        .unwrap()
}

/// The one `error:` line of a run.
#[track_caller]
fn error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_string()
}

#[test]
fn a_check_on_the_old_engine_fails_in_one_line_saying_why() {
    let stack = stack();
    let dir = context(&[(
        "Dockerfile",
        &format!("FROM {} as Build\nMAINTAINER someone\n", stack.base),
    )]);
    let out = check(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let line = error_line(&out);
    assert!(
        line.contains(&format!("BuildKit at {}", old_engine()))
            && line.contains("does not answer frontend.lint")
            && line.contains("Docker Engine 27")
            && line.contains("# syntax=docker/dockerfile:1.8")
            && line.ends_with("(--call-fallback)"),
        "{line}"
    );

    // Asked to, the retry with buildx's fallback image: this machine's
    // daemon cannot reach Docker Hub, and the line says so.
    let out = check(dir.path(), &["--call-fallback"]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.contains("does not answer frontend.lint")
            && line.contains("the newer frontend docker/dockerfile:1.8.1@sha256:e87caa74")
            && line.contains("failed there: ")
            && line.contains("the daemon pulls it itself"),
        "{line}"
    );
    // A fallback image of one's own, which the registry does not have.
    let missing = format!("{}/rbuild/no-such-frontend:1", stack.registry);
    let out = check(dir.path(), &[&format!("--call-fallback={missing}")]);
    let line = error_line(&out);
    assert!(
        line.contains(&format!("the newer frontend {missing} failed there: "))
            && line.contains("not found"),
        "{line}"
    );

    // The calls this frontend has work.
    let out = rbuild()
        .current_dir(dir.path())
        .args([
            "build",
            "--addr",
            &old_engine(),
            "--progress",
            "plain",
            "--call",
            "targets",
            ".",
        ])
        .output()
        .unwrap();
    support::assert_success(&out);
    assert_eq!(
        stdout(&out),
        "TARGET          DESCRIPTION\nbuild (default) \n"
    );
}
