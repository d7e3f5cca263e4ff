//! rbuild as a docker CLI plugin: `docker rbuild build ...` through the
//! stack's own docker CLI, on the engine the CLI's context names.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::{assert_success, context, registry, stack, stdout, unique};

/// The docker CLI the stack unpacked (Debian's docker.io ships it).
fn docker_cli() -> PathBuf {
    let unpacked =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".stack-cache/root/usr/bin/docker");
    if unpacked.is_file() {
        unpacked
    } else {
        PathBuf::from("docker")
    }
}

#[test]
fn docker_rbuild_builds_on_the_context_engine() {
    let stack = stack();
    let config = tempfile::tempdir().unwrap();
    let plugins = config.path().join("cli-plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rbuild"), plugins.join("docker-rbuild"))
        .unwrap();
    let docker = |args: &[&str]| {
        let mut cmd = Command::new(docker_cli());
        cmd.args(args)
            .env("DOCKER_CONFIG", config.path())
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("BUILDKIT_HOST");
        cmd
    };
    // The CLI lists the plugin from its metadata answer.
    let out = docker(&["--help"]).output().unwrap();
    assert!(stdout(&out).contains("rbuild*"), "{}", stdout(&out));

    let host = format!("host=unix://{}", stack.engine_socket.display());
    assert_success(
        &docker(&["context", "create", "stack", "--docker", &host])
            .output()
            .unwrap(),
    );
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN echo via-docker-cli > /via\n",
    )]);
    let image = format!("{}/rbuild/{}:1", stack.registry, unique("plugin"));
    let out = docker(&[
        "--context",
        "stack",
        "rbuild",
        "build",
        "--progress",
        "plain",
        "--build-arg",
        &format!("BASE={}", stack.base),
        "-t",
        &image,
        "--push",
        ctx.path().to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_success(&out);
    let manifest = registry::manifest(&stack.registry, &image);
    assert!(manifest["layers"].is_array(), "{manifest}");
}
