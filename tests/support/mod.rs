//! Shared test support: the real stack's coordinates, the rbuild binary, and a
//! byte proxy that exposes the engine's BuildKit as a plain HTTP/2 socket.
//!
//! Tests never skip: without the stack's variables they fail and say how to
//! bring the stack up.

#![allow(dead_code)] // each test binary uses a different part

pub mod buildx;
pub mod faults;
pub mod fleet;
pub mod git;
pub mod http_file;
pub mod own_registry;
pub mod proxy;
pub mod registry;
pub mod sshd;
pub mod steps;
pub mod tcp_cut;
pub mod tls_proxy;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The stack that `scripts/stack up` started, read from its `export` lines.
pub struct Stack {
    /// `docker:///…/docker.sock`: the engine's BuildKit.
    pub buildkit_host: String,
    /// The engine socket path.
    pub engine_socket: PathBuf,
    /// `host:port` of the test registry.
    pub registry: String,
    /// A busybox image in that registry, for `FROM`.
    pub base: String,
}

fn required(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "{name} is not set: these tests need the real BuildKit + registry stack. \
             Run them with scripts/test, or first: eval \"$(scripts/stack up)\""
        ),
    }
}

pub fn stack() -> Stack {
    let buildkit_host = required("BUILDKIT_HOST");
    let docker_host = required("DOCKER_HOST");
    let engine_socket = PathBuf::from(
        docker_host
            .strip_prefix("unix://")
            .unwrap_or_else(|| panic!("DOCKER_HOST={docker_host} is not a unix:// socket")),
    );
    Stack {
        buildkit_host,
        engine_socket,
        registry: required("RBUILD_TEST_REGISTRY"),
        base: required("RBUILD_TEST_BASE"),
    }
}

/// The rbuild binary built for this test run, with a clean environment for
/// the variables rbuild reads, so each test states what it uses.
pub fn rbuild() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rbuild"));
    cmd.env_remove("BUILDKIT_HOST")
        .env_remove("BUILDKIT_PROGRESS")
        .env_remove("RBUILD_LOG");
    cmd
}

/// Runs a command and returns its output with the wall time it took.
pub fn run_timed(cmd: &mut Command) -> (Output, Duration) {
    let start = Instant::now();
    let out = cmd.output().expect("rbuild binary runs");
    (out, start.elapsed())
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and shows both streams when it fails.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "rbuild failed ({:?})\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

/// A name no other test (or earlier run) uses, for images and tags.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A build context in a temp dir: `files` are (relative path, contents).
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp context");
    for (path, contents) in files {
        let full = dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&full, contents).unwrap();
    }
    dir
}

/// `rbuild build` with the stack's address and plain progress. `--no-cache`
/// because tests read RUN output, which a cached step (from an earlier run
/// of the suite) would not show.
pub fn build_cmd(stack: &Stack) -> Command {
    let mut cmd = rbuild();
    cmd.args([
        "build",
        "--addr",
        &stack.buildkit_host,
        "--progress",
        "plain",
        "--no-cache",
    ]);
    cmd
}
