//! `docker-container://NAME`: rbuild asks the engine to run `buildctl
//! dial-stdio` in the container and speaks HTTP/2 over its stdio.
//!
//! There is no BuildKit image to pull here (no network, and Debian packages
//! no standalone buildkitd), so the builder container is the stack's busybox
//! with rbuild itself mounted as `buildctl`: its `dial-stdio` has buildctl's
//! contract (stdio <-> daemon stream) and reaches the engine's real BuildKit
//! through the mounted engine socket. Everything rbuild's transport does —
//! exec create, the attach upgrade, demultiplexing, HTTP/2 on top — runs
//! against the real engine.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::*;

/// A container this test started; removed (by name) when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.0]);
    }
}

fn docker(args: &[&str]) -> Output {
    let stack = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stack");
    Command::new(stack)
        .arg("docker")
        .args(args)
        .output()
        .unwrap()
}

/// Starts `sleep` in the stack's busybox; with `with_buildctl`, rbuild is
/// mounted as /usr/local/bin/buildctl with the host's libraries, the engine
/// socket and BUILDKIT_HOST pointing at it.
fn builder_container(stack: &Stack, prefix: &str, with_buildctl: bool) -> Container {
    let name = unique(prefix);
    let mut args: Vec<String> = ["run", "-d", "--name", &name, "--network", "none"]
        .map(String::from)
        .to_vec();
    if with_buildctl {
        let bin = env!("CARGO_BIN_EXE_rbuild");
        for mount in [
            "/lib:/lib:ro".to_string(),
            "/lib64:/lib64:ro".to_string(),
            format!("{bin}:/usr/local/bin/buildctl:ro"),
            format!("{}:/run/docker.sock", stack.engine_socket.display()),
        ] {
            args.extend(["-v".to_string(), mount]);
        }
        args.extend([
            "-e".into(),
            "BUILDKIT_HOST=docker:///run/docker.sock".into(),
        ]);
    }
    args.extend([stack.base.clone(), "sleep".into(), "600".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&args);
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Container(name)
}

fn with_engine(cmd: &mut Command, stack: &Stack) {
    cmd.env(
        "DOCKER_HOST",
        format!("unix://{}", stack.engine_socket.display()),
    );
}

#[test]
fn builds_through_a_builder_container() {
    let stack = stack();
    let container = builder_container(&stack, "rbuild-dc", true);
    let addr = format!("docker-container://{}", container.0);

    let mut info = rbuild();
    info.args(["info", "--addr", &addr]);
    with_engine(&mut info, &stack);
    let out = info.output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("linux/amd64"), "{}", stdout(&out));

    let id = unique("dc");
    let tag = format!("rbuild-test/{id}:1");
    let ctx = context(&[(
        "Dockerfile",
        &format!("ARG BASE\nFROM ${{BASE}}\nRUN echo built-{id} > /id && cat /id\n"),
    )]);
    let mut build = rbuild();
    build
        .args([
            "build",
            "--addr",
            &addr,
            "--progress",
            "plain",
            "--no-cache",
        ])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-t", &tag, "--load"])
        .arg(ctx.path());
    with_engine(&mut build, &stack);
    let out = build.output().unwrap();
    assert_success(&out);
    assert!(
        stderr(&out).contains(&format!("built-{id}")),
        "{}",
        stderr(&out)
    );
    // --load went to the engine that runs the container.
    let run = docker(&["run", "--rm", &tag, "cat", "/id"]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        format!("built-{id}")
    );
    let _ = docker(&["rmi", &tag]);
}

#[track_caller]
fn assert_fails_clearly(out: &Output, expect: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "unexpected success: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.trim().lines().count() <= 2, "too long:\n{err}");
    for e in expect {
        assert!(err.contains(e), "{e:?} missing: {err}");
    }
}

#[test]
fn missing_stopped_and_buildctl_less_containers_fail_clearly() {
    let stack = stack();
    let info = |name: &str| {
        let mut cmd = rbuild();
        cmd.args(["info", "--addr", &format!("docker-container://{name}")]);
        with_engine(&mut cmd, &stack);
        let (out, took) = run_timed(&mut cmd);
        assert!(took.as_secs() < 10, "took {took:?}");
        out
    };

    let missing = unique("rbuild-none");
    assert_fails_clearly(
        &info(&missing),
        &[
            &format!("docker-container://{missing}"),
            "No such container",
            "docker ps",
        ],
    );

    let plain = builder_container(&stack, "rbuild-nobk", false);
    assert_fails_clearly(&info(&plain.0), &["buildctl", &plain.0]);

    let out = docker(&["stop", "-t", "0", &plain.0]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_fails_clearly(&info(&plain.0), &["not running", &plain.0]);
}
