//! `--cache REF` is best-effort: a shared cache only speeds builds up, so
//! its outage must never fail a build or lose the image. A cache registry
//! that refuses connections, or one that stops in the middle of the cache
//! export, gives a WARNING naming the ref and the cause; the image is still
//! pushed, loaded and written, rbuild exits 0, and the report and the
//! metadata file say the cache export failed. An explicit `--cache-to`
//! keeps buildx's semantics: without `ignore-error=true` the build fails,
//! with an error that says it was the cache export, to which ref.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rbuild::docker_api::Engine;
use support::faults::{Running, assert_dir_holds, one_error_line, tar_build};
use support::registry::request;
use support::tcp_cut::TcpCut;
use support::*;

/// A loopback port nothing listens on: a cache registry that is down.
fn refusing() -> String {
    let port = support::own_registry::free_port();
    format!("127.0.0.1:{port}/rbuild-test/cache")
}

/// [`tar_build`] with the report too: `out/report.json`.
fn build(stack: &Stack, dockerfile: &str, out: &Path) -> Command {
    let mut cmd = tar_build(stack, dockerfile, out);
    cmd.arg("--report").arg(out.join("report.json"));
    cmd
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The manifest `image` (in the stack registry) points at, by HEAD.
fn manifest_digest(stack: &Stack, image: &str) -> Option<String> {
    let rest = image.strip_prefix(&format!("{}/", stack.registry)).unwrap();
    let (repo, tag) = rest.rsplit_once(':').unwrap();
    let resp = request(
        &stack.registry,
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
    );
    (resp.status == 200)
        .then(|| resp.header("Docker-Content-Digest").map(str::to_string))
        .flatten()
}

/// Checks that the report and the metadata file say the export failed,
/// naming `cache`, and that the pushed image is the one the metadata names.
#[track_caller]
fn check_cache_failed(stack: &Stack, out: &Path, cache: &str, image: &str) {
    let report = json(&out.join("report.json"));
    assert_eq!(report["status"], "succeeded", "{report}");
    assert_eq!(report["cache"]["export"], "failed", "{report}");
    let meta = json(&out.join("meta.json"));
    let cache_meta = &meta["rbuild.cache"];
    assert_eq!(cache_meta["export"], "failed", "{meta}");
    let failures = cache_meta["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f["direction"] == "export" && f["target"] == cache && f["error"] != ""),
        "{meta}"
    );
    let pushed = manifest_digest(stack, image).expect("the image is in the registry");
    assert_eq!(meta["containerimage.digest"], pushed.as_str(), "{meta}");
    assert!(
        std::fs::metadata(out.join("app.tar")).unwrap().len() > 1024,
        "no tar"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cache_registry_that_refuses_connections_only_warns() {
    let stack = stack();
    let cache = refusing();
    let image = format!("{}/rbuild-test/{}:1", stack.registry, unique("best-effort"));
    let out = tempfile::tempdir().unwrap();
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nRUN echo {} > /id\n",
        unique("id")
    );
    let run = build(&stack, &dockerfile, out.path())
        .args(["--cache", &cache, "-t", &image, "--push", "--load"])
        .output()
        .unwrap();
    assert_success(&run);
    let err = stderr(&run);
    assert!(!err.contains("error:"), "{err}");
    for warning in [
        format!("WARNING: cache import from {cache} failed"),
        format!("WARNING: cache export to {cache} failed, the outputs are complete"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&warning) && l.contains("connection refused")),
            "no {warning:?} with its cause:\n{err}"
        );
    }
    assert!(err.contains("cache export FAILED"), "{err}");
    check_cache_failed(&stack, out.path(), &cache, &image);
    let engine = Engine::new(stack.engine_socket.clone());
    assert!(
        engine.image_id(&image).await.unwrap().is_some(),
        "not loaded"
    );
    engine.remove_image(&image, true).await.unwrap();
}

#[test]
fn a_cache_registry_stopped_during_the_export_only_warns() {
    let stack = stack();
    let proxy = TcpCut::start(&stack.registry);
    let cache = format!("{}/rbuild-test/{}", proxy.addr, unique("cut-cache"));
    let image = format!("{}/rbuild-test/{}:1", stack.registry, unique("cut-image"));
    let out = tempfile::tempdir().unwrap();
    // About 30 MB of new layer to upload, twice: as the image and the cache.
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nRUN head -c 30000000 /dev/urandom > /big && echo {}\n",
        unique("big")
    );
    // The import is a download: only the export's upload passes 4 MB.
    proxy.cut_after_sent(4 << 20);
    let (status, _, err) = Running::spawn(
        build(&stack, &dockerfile, out.path()).args(["--cache", &cache, "-t", &image, "--push"]),
    )
    .finish(Duration::from_secs(180));
    assert!(
        proxy.is_cut(),
        "the cache export never reached 4 MB:\n{err}"
    );
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("WARNING: cache export to {cache} failed")),
        "{err}"
    );
    check_cache_failed(&stack, out.path(), &cache, &image);
}

#[test]
fn an_explicit_cache_to_without_ignore_error_fails_naming_the_cache_export() {
    let stack = stack();
    let cache = refusing();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nRUN echo {} > /id\n",
        unique("id")
    );
    let run = build(&stack, &dockerfile, out.path())
        .args(["--cache-to", &format!("type=registry,ref={cache},mode=max")])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let line = one_error_line(&stderr(&run));
    assert!(
        line.starts_with(&format!("error: cache export to {cache} failed: "))
            && line.contains("connection refused")
            && line.contains("ignore-error=true"),
        "{line}"
    );
    // The report of a failed build is written; nothing else is.
    let report = json(&out.path().join("report.json"));
    assert_eq!(report["status"], "failed");
    std::fs::remove_file(out.path().join("report.json")).unwrap();
    assert_dir_holds(out.path(), &[("app.tar", "previous")]);
}
