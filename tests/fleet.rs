//! The seed scenario across two real runners: runner A (the stack's default
//! engine) builds with the shared registry cache, pushes, loads and writes a
//! tar in one command; runner B, a different engine in its own network
//! namespace that never saw the build, builds the same context from the
//! registry cache alone.

mod support;

use std::time::{Duration, Instant};

use rbuild::docker_api::Engine;
use support::fleet::{image_manifest, runners, seed_project};
use support::steps::steps;
use support::{assert_success, rbuild, registry, stack, stdout, unique};

/// The slow step every runner would otherwise redo.
const SLOW_SECS: u64 = 8;

#[tokio::test(flavor = "multi_thread")]
async fn a_second_runner_builds_from_the_first_ones_registry_cache() {
    let stack = stack();
    let [a, b] = <[_; 2]>::try_from(runners(2)).unwrap();
    assert_ne!(a.engine_socket, b.engine_socket);
    let engine_a = Engine::new(a.engine_socket.clone());
    let engine_b = Engine::new(b.engine_socket.clone());
    let id = unique("fleet-seed");
    // Content no engine has seen: neither runner's local cache can serve it.
    let ctx = seed_project(&id, SLOW_SECS);
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    let image = format!("{}/rbuild-test/{id}:1", stack.registry);
    let tar = ctx.path().join("app.tar");
    let meta_a = ctx.path().join("meta-a.json");
    let meta_b = ctx.path().join("meta-b.json");
    let build = |addr: &str, extra: &[&str]| {
        let mut cmd = rbuild();
        cmd.args(["build", "--addr", addr, "--progress", "rawjson"])
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .args(["--cache", &cache, "-t", &image, "--push", "--load"])
            .args(extra)
            .arg(ctx.path());
        let start = Instant::now();
        let out = cmd.output().unwrap();
        (out, start.elapsed())
    };

    // Runner A: cache export, push, load into A's engine and tar, one command.
    let tar_spec = format!("type=tar,dest={}", tar.display());
    let (out, took_a) = build(
        &a.address,
        &["-o", &tar_spec, "--metadata-file", meta_a.to_str().unwrap()],
    );
    assert_success(&out);
    assert!(took_a >= Duration::from_secs(SLOW_SECS));
    let ran = steps(&stdout(&out));
    assert!(
        ran.values()
            .any(|s| s.name.contains("RUN echo resolving") && s.logged && !s.cached),
        "runner A should run the slow step"
    );
    assert!(tar.metadata().unwrap().len() > 0, "no tar written");
    assert!(engine_a.image_id(&image).await.unwrap().is_some());
    assert!(
        engine_b.image_id(&image).await.unwrap().is_none(),
        "runner B must not have seen the build"
    );
    let cache_index = registry::request(
        &stack.registry,
        "GET",
        &format!("/v2/rbuild-test/{id}-cache/manifests/latest"),
    );
    assert_eq!(cache_index.status, 200, "cache manifest missing");

    // Runner B: another engine, same command; only the registry cache helps.
    let (out, took_b) = build(&b.address, &["--metadata-file", meta_b.to_str().unwrap()]);
    assert_success(&out);
    let reused = steps(&stdout(&out));
    let runs: Vec<_> = reused
        .values()
        .filter(|s| s.name.contains("] RUN "))
        .collect();
    assert_eq!(runs.len(), 2, "{reused:?}");
    for step in runs {
        assert!(
            step.cached && !step.logged,
            "runner B re-ran {:?}",
            step.name
        );
    }
    assert_eq!(
        image_manifest(&meta_a),
        image_manifest(&meta_b),
        "runner B built a different image"
    );
    assert!(
        engine_b.image_id(&image).await.unwrap().is_some(),
        "not loaded into runner B's engine"
    );
    assert!(
        took_b * 3 < took_a,
        "runner B took {took_b:?}, runner A {took_a:?}: not several times faster"
    );
    eprintln!("fleet seed: runner A {took_a:?}, runner B {took_b:?}");
    engine_a.remove_image(&image, true).await.unwrap();
    engine_b.remove_image(&image, true).await.unwrap();
}
