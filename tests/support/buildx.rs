//! The engines of the stack's two generations, and sid's buildx (0.29.1,
//! `scripts/stack up --buildx-new`) to compare rbuild's output with.

use std::path::Path;
use std::process::Command;

/// `docker:///…` of the modern engine (runner 2: Docker Engine 28, whose
/// Dockerfile frontend has build checks); fails with how to start it.
pub fn modern_engine() -> String {
    match std::env::var("RBUILD_TEST_MODERN_ENGINE") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "RBUILD_TEST_MODERN_ENGINE is not set: these tests need runner 2 of the stack \
             (Docker Engine 28). Run them with scripts/test, or first: \
             eval \"$(scripts/stack up --runners 2 --buildx-new)\""
        ),
    }
}

/// `docker:///…` of the old engine (runner 1: Docker Engine 26.1, BuildKit
/// 0.13, no build checks in its frontend).
pub fn old_engine() -> String {
    let runners = super::fleet::runners(1);
    runners[0].address.clone()
}

/// `docker-buildx` 0.29.1 run standalone against the engine at `address`
/// (`docker:///SOCKET`), with a configuration directory of its own.
pub fn buildx_new(address: &str, config: &Path) -> Command {
    let binary = match std::env::var("RBUILD_TEST_BUILDX_NEW") {
        Ok(v) if !v.is_empty() => v,
        _ => panic!(
            "RBUILD_TEST_BUILDX_NEW is not set: run the tests with scripts/test, or first: \
             eval \"$(scripts/stack up --runners 2 --buildx-new)\""
        ),
    };
    let socket = address.strip_prefix("docker://").unwrap_or(address);
    let mut cmd = Command::new(binary);
    cmd.env("DOCKER_HOST", format!("unix://{socket}"))
        .env("DOCKER_CONFIG", config)
        .env_remove("BUILDX_BUILDER")
        .env_remove("BUILDKIT_PROGRESS")
        .env("BUILDX_NO_DEFAULT_ATTESTATIONS", "1");
    cmd
}
