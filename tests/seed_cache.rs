//! The seed scenario end to end on the real stack: runner A builds with the
//! shared registry cache, pushes, loads and writes a tar in ONE solve; the
//! engine is pruned (a fresh runner); runner B builds from the registry cache
//! alone and every step is reused.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rbuild::docker_api::Engine;
use support::fleet::seed_project;
use support::steps::{Step, steps};
use support::{assert_success, context, rbuild, registry, stack, stderr, stdout, unique};

/// The slow step every runner would otherwise redo.
const SLOW_SECS: u64 = 6;

fn tar_entries(path: &std::path::Path) -> BTreeSet<String> {
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "tar -tf failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Both tests prune the engine to play a fresh runner; one at a time.
static ENGINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The index digest and the linux/amd64 image manifest a build's
/// `--metadata-file` reports for its image output.
fn image_digests(meta: &std::path::Path) -> (String, String) {
    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    let output = md["rbuild.outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["rbuild.image.manifests"].is_object())
        .unwrap_or_else(|| panic!("no image output with manifests: {md}"));
    (
        output["containerimage.digest"]
            .as_str()
            .unwrap()
            .to_string(),
        output["rbuild.image.manifests"]["linux/amd64"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_cache_makes_a_fresh_runner_fast() {
    let _engine = ENGINE.lock().await;
    let stack = stack();
    let engine = Engine::new(stack.engine_socket.clone());
    let id = unique("seed");
    // Unique content so no earlier run's cache can serve runner A.
    let ctx = seed_project(&id, SLOW_SECS);
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    let image = format!("{}/rbuild-test/{id}:1", stack.registry);
    let tar = ctx.path().join("app.tar");
    let build = |extra: &[&str]| {
        let mut cmd = rbuild();
        cmd.args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "rawjson",
        ])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--cache", &cache, "-t", &image, "--push", "--load"])
        .args(extra)
        .arg(ctx.path());
        let start = Instant::now();
        let out = cmd.output().unwrap();
        (out, start.elapsed())
    };

    // Runner A: cache export, push, load and tar in one solve.
    let tar_spec = format!("type=tar,dest={}", tar.display());
    let meta_a = ctx.path().join("meta-a.json");
    let meta_b = ctx.path().join("meta-b.json");
    let (out, took_a) = build(&["-o", &tar_spec, "--metadata-file", meta_a.to_str().unwrap()]);
    assert_success(&out);
    assert!(
        took_a >= Duration::from_secs(SLOW_SECS),
        "the slow step did not run"
    );
    let a = steps(&stdout(&out));
    assert!(
        a.values()
            .any(|s| s.name.contains("RUN echo resolving") && s.logged && !s.cached),
        "runner A should run the slow step"
    );
    // The registry holds the image and the cache manifest.
    let manifest = registry::manifest(&stack.registry, &image);
    assert!(
        manifest["layers"].as_array().is_some_and(|l| l.len() >= 4),
        "{manifest}"
    );
    let cache_index = registry::request(
        &stack.registry,
        "GET",
        &format!("/v2/rbuild-test/{id}-cache/manifests/latest"),
    );
    assert_eq!(cache_index.status, 200, "cache manifest missing");
    assert!(
        String::from_utf8_lossy(&cache_index.body).contains("application/vnd.buildkit.cacheconfig"),
        "not a BuildKit cache manifest"
    );
    // The engine holds the image.
    assert!(
        engine.image_id(&image).await.unwrap().is_some(),
        "image not loaded"
    );
    // The tar holds the image's files.
    let entries = tar_entries(&tar);
    for want in [
        "app/deps.lock",
        "app/manifest.txt",
        "app/src/main.sh",
        "bin/busybox",
    ] {
        assert!(
            entries.contains(want),
            "{want} missing from the tar: {entries:?}"
        );
    }

    // A fresh runner: no build cache, no image.
    engine.prune_build_cache().await.unwrap();
    engine.remove_image(&image, true).await.unwrap();
    assert!(engine.image_id(&image).await.unwrap().is_none());

    // Runner B: everything comes from the registry cache.
    let (out, took_b) = build(&["--metadata-file", meta_b.to_str().unwrap()]);
    assert_success(&out);
    let b = steps(&stdout(&out));
    let runs: Vec<&Step> = b.values().filter(|s| s.name.contains("] RUN ")).collect();
    assert_eq!(
        runs.len(),
        2,
        "{:?}",
        b.values().map(|s| &s.name).collect::<Vec<_>>()
    );
    for step in runs {
        // A step that executed would have printed; a reused one did not.
        assert!(!step.logged, "runner B re-ran {:?}", step.name);
    }
    assert!(
        b.values()
            .any(|s| s.name.contains("RUN echo resolving") && s.cached),
        "the slow step should be CACHED on runner B"
    );
    assert!(
        took_b < Duration::from_secs(SLOW_SECS) / 2,
        "runner B took {took_b:?}, the slow step alone takes {SLOW_SECS}s"
    );
    assert!(
        engine.image_id(&image).await.unwrap().is_some(),
        "not loaded again"
    );
    // The same image on both runners. The index around it differs: its
    // provenance attestation (buildx's default) records each build's own
    // invocation id and times, so the image manifest is what to compare.
    let (index_a, image_a) = image_digests(&meta_a);
    let (index_b, image_b) = image_digests(&meta_b);
    assert_eq!(image_a, image_b, "runner B built a different image");
    assert_ne!(index_a, index_b, "each build has its own provenance");
    eprintln!("seed scenario: runner A {took_a:?}, runner B {took_b:?}");
    let _ = stderr(&out);
    engine.remove_image(&image, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn local_cache_directory_export_and_import() {
    let _engine = ENGINE.lock().await;
    let stack = stack();
    let engine = Engine::new(stack.engine_socket.clone());
    let id = unique("localcache");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "ARG BASE\nFROM ${{BASE}}\nRUN echo slow && sleep {SLOW_SECS} && echo {id} > /id\n"
        ),
    )]);
    let cache_dir = tempfile::tempdir().unwrap();
    let dir = cache_dir.path().join("cache");
    let build = |cache_flag: &str, spec: String| {
        let start = Instant::now();
        let out = rbuild()
            .args([
                "build",
                "--addr",
                &stack.buildkit_host,
                "--progress",
                "rawjson",
            ])
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .args([cache_flag, &spec])
            .arg(ctx.path())
            .output()
            .unwrap();
        (out, start.elapsed())
    };
    let (out, _) = build("--cache-to", format!("type=local,dest={}", dir.display()));
    assert_success(&out);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index entry")
        .to_string();
    let blob = dir
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    assert!(blob.exists(), "cache manifest blob missing");

    engine.prune_build_cache().await.unwrap();
    let (out, took) = build("--cache-from", format!("type=local,src={}", dir.display()));
    assert_success(&out);
    let b = steps(&stdout(&out));
    let run = b
        .values()
        .find(|s| s.name.contains("] RUN "))
        .expect("RUN step");
    assert!(!run.logged, "the RUN step ran again");
    assert!(took < Duration::from_secs(SLOW_SECS), "took {took:?}");
}
