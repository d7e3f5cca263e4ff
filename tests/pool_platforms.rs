//! A multi-platform build split over two real runners (#14 point 5): each
//! platform is built on the node configured for it, pushed under a
//! platform tag, and rbuild publishes the index that joins them. The
//! Dockerfile needs no emulation (`FROM scratch` + `COPY`), since the
//! runners' workers are all linux/amd64 and no emulator is installed.

mod support;

use std::path::{Path, PathBuf};

use rbuild::docker_api::Engine;
use support::fleet::{Runner, runners};
use support::registry::request;
use support::{assert_success, context, rbuild, stack, stderr, unique};

/// Runner 1 builds `first`, runner 2 builds `second`.
fn builders(dir: &Path, rs: &[Runner], first: &[&str], second: &[&str]) -> PathBuf {
    let list = |p: &[&str]| {
        p.iter()
            .map(|x| format!("{x:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "builder \"mp\" {{\n  node \"r1\" {{\n    endpoint = \"{}\"\n    platforms = [{}]\n  }}\n  \
         node \"r2\" {{\n    endpoint = \"{}\"\n    platforms = [{}]\n  }}\n}}\n",
        rs[0].address,
        list(first),
        rs[1].address,
        list(second)
    );
    let path = dir.join("builders.hcl");
    std::fs::write(&path, text).unwrap();
    path
}

fn project(id: &str) -> tempfile::TempDir {
    context(&[("Dockerfile", "FROM scratch\nCOPY id /id\n"), ("id", id)])
}

fn split_build(file: &Path, ctx: &Path, extra: &[&str]) -> std::process::Output {
    rbuild()
        .env("RBUILD_BUILDERS", file)
        .args(["--builder", "mp", "build", "--progress", "plain"])
        .args(["--platform", "linux/amd64,linux/arm64"])
        .args(extra)
        .arg(ctx)
        .output()
        .unwrap()
}

/// `repo`'s manifest `reference` as JSON, and its digest.
fn manifest(registry: &str, repo: &str, reference: &str) -> (serde_json::Value, String) {
    let resp = request(
        registry,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
    );
    assert_eq!(resp.status, 200, "{repo}:{reference}: HTTP {}", resp.status);
    let digest = resp.header("docker-content-digest").unwrap().to_string();
    (resp.json(), digest)
}

fn platform(entry: &serde_json::Value) -> String {
    let p = &entry["platform"];
    format!(
        "{}/{}",
        p["os"].as_str().unwrap(),
        p["architecture"].as_str().unwrap()
    )
}

/// The platforms of the image manifests (attestations aside) in the
/// index `repo:tag`, sorted.
fn image_platforms(registry: &str, repo: &str, tag: &str) -> Vec<String> {
    let (index, _) = manifest(registry, repo, tag);
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{repo}:{tag} is not an index: {index}"))
        .iter()
        .filter(|e| e["annotations"]["vnd.docker.reference.type"].is_null())
        .map(platform)
        .collect();
    platforms.sort();
    platforms
}

#[tokio::test(flavor = "multi_thread")]
async fn each_platform_is_built_on_its_node_and_the_index_joins_them() {
    let stack = stack();
    let rs = runners(2);
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &rs, &["linux/amd64"], &["linux/arm64"]);
    let id = unique("split");
    let ctx = project(&id);
    let repo = format!("rbuild-test/{id}");
    let image = format!("{}/{repo}:1", stack.registry);
    let cache = format!("{}/{repo}-cache", stack.registry);
    let report = dir.path().join("report.json");
    let meta = dir.path().join("meta.json");
    let out = split_build(
        &file,
        ctx.path(),
        &["-t", &image, "--push", "--cache", &cache],
    );
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("building linux/amd64 on node \"r1\""), "{err}");
    assert!(err.contains("building linux/arm64 on node \"r2\""), "{err}");

    // The index under the tag: both platforms, each with its provenance.
    let (index, _) = manifest(&stack.registry, &repo, "1");
    let entries = index["manifests"].as_array().unwrap();
    let images: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["annotations"]["vnd.docker.reference.type"].is_null())
        .collect();
    let mut platforms: Vec<String> = images.iter().map(|e| platform(e)).collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index}");
    for image_entry in &images {
        let digest = image_entry["digest"].as_str().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e["annotations"]["vnd.docker.reference.digest"] == digest),
            "no attestation manifest for {digest}: {index}"
        );
        // The manifest's config is of its platform, and its layer holds the file.
        let (m, _) = manifest(&stack.registry, &repo, digest);
        let config = request(
            &stack.registry,
            "GET",
            &format!(
                "/v2/{repo}/blobs/{}",
                m["config"]["digest"].as_str().unwrap()
            ),
        )
        .json();
        assert_eq!(
            format!(
                "{}/{}",
                config["os"].as_str().unwrap(),
                config["architecture"].as_str().unwrap()
            ),
            platform(image_entry)
        );
    }

    // Who built what, as the engines themselves keep it: each runner's
    // store has its own platform's image and not the other's.
    let (r1, r2) = (
        Engine::new(rs[0].engine_socket.clone()),
        Engine::new(rs[1].engine_socket.clone()),
    );
    let amd64 = format!("{image}-linux-amd64");
    let arm64 = format!("{image}-linux-arm64");
    assert!(
        r1.image_id(&amd64).await.unwrap().is_some(),
        "r1 did not build amd64"
    );
    assert!(
        r1.image_id(&arm64).await.unwrap().is_none(),
        "r1 built arm64"
    );
    assert!(
        r2.image_id(&arm64).await.unwrap().is_some(),
        "r2 did not build arm64"
    );
    assert!(
        r2.image_id(&amd64).await.unwrap().is_none(),
        "r2 built amd64"
    );

    // Each platform keeps its own cache, so the nodes did not overwrite
    // each other's cache manifest.
    for suffix in ["linux-amd64", "linux-arm64"] {
        manifest(
            &stack.registry,
            &format!("{repo}-cache"),
            &format!("latest-{suffix}"),
        );
    }

    // A second build reuses each node's cache and says where each part ran,
    // in the report and the metadata file.
    let again = split_build(
        &file,
        ctx.path(),
        &[
            "-t",
            &image,
            "--push",
            "--cache",
            &cache,
            "--report",
            report.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    assert_success(&again);
    let line = stderr(&again)
        .lines()
        .find(|l| l.starts_with("rbuild: "))
        .unwrap()
        .to_string();
    assert!(
        line.contains("built linux/amd64 on r1, linux/arm64 on r2"),
        "{line}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let nodes: Vec<(String, String)> = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_string(),
                n["platforms"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("r1".to_string(), "linux/amd64".to_string()),
            ("r2".to_string(), "linux/arm64".to_string())
        ]
    );
    let err = stderr(&again);
    for p in ["linux/amd64", "linux/arm64"] {
        let copy = err
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("[{p}] "))
                    .filter(|l| l.contains("COPY id /id"))
            })
            .and_then(|l| l.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| panic!("no COPY step for {p}:\n{err}"));
        assert!(
            err.contains(&format!("[{p}] {copy} CACHED")),
            "{p} COPY not cached:\n{err}"
        );
    }
    assert!(report["steps"]["cached"].as_u64().unwrap() >= 2, "{report}");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let (_, now) = manifest(&stack.registry, &repo, "1");
    assert_eq!(meta["containerimage.digest"], now.as_str(), "{meta}");
    assert!(
        meta["buildx.build.provenance/linux/arm64"].is_object(),
        "{meta}"
    );
    for engine in [&r1, &r2] {
        for name in [&amd64, &arm64] {
            let _ = engine.remove_image(name, true).await;
        }
    }
}

#[test]
fn what_only_one_node_could_do_fails_in_one_line_before_building() {
    let stack = stack();
    let rs = runners(2);
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &rs, &["linux/amd64"], &["linux/arm64"]);
    let ctx = project("refused");
    let image = format!("{}/rbuild-test/{}:1", stack.registry, unique("split-load"));
    for (extra, says) in [
        (vec!["-t", image.as_str(), "--load"], "--load"),
        (vec!["-t", image.as_str()], "--push"),
    ] {
        let out = split_build(&file, ctx.path(), &extra);
        assert!(!out.status.success(), "{extra:?} succeeded");
        let err = stderr(&out);
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.contains("across nodes") && last.contains(says),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(!err.contains("#1 "), "a build started: {err}");
    }
}

#[test]
fn a_node_that_builds_every_platform_takes_the_whole_build() {
    let stack = stack();
    let rs = runners(2);
    let dir = tempfile::tempdir().unwrap();
    let both = ["linux/amd64", "linux/arm64"];
    let file = builders(dir.path(), &rs, &both, &both);
    let id = unique("whole");
    let ctx = project(&id);
    let repo = format!("rbuild-test/{id}");
    let image = format!("{}/{repo}:1", stack.registry);
    let report = dir.path().join("report.json");
    let out = split_build(
        &file,
        ctx.path(),
        &["-t", &image, "--push", "--report", report.to_str().unwrap()],
    );
    assert_success(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["nodes"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(
        image_platforms(&stack.registry, &repo, "1"),
        ["linux/amd64", "linux/arm64"]
    );
    // No platform tags: one node pushed the index itself.
    let resp = request(
        &stack.registry,
        "GET",
        &format!("/v2/{repo}/manifests/1-linux-amd64"),
    );
    assert_eq!(resp.status, 404);
}

#[test]
fn a_failing_platform_fails_the_build_naming_it_and_publishes_nothing() {
    let stack = stack();
    let rs = runners(2);
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &rs, &["linux/amd64"], &["linux/arm64"]);
    // Only amd64 has its file: the arm64 part's COPY fails.
    let ctx = context(&[
        (
            "Dockerfile",
            "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /\n",
        ),
        ("amd64.txt", "x"),
    ]);
    let repo = format!("rbuild-test/{}", unique("split-fail"));
    let image = format!("{}/{repo}:1", stack.registry);
    let out = split_build(&file, ctx.path(), &["-t", &image, "--push"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    let last = err
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(last.contains("linux/arm64 on node r2"), "{err}");
    let resp = request(&stack.registry, "GET", &format!("/v2/{repo}/manifests/1"));
    assert_eq!(resp.status, 404, "an index was published");
}

#[tokio::test(flavor = "multi_thread")]
async fn bake_splits_a_multi_platform_target_and_places_the_others_as_usual() {
    let stack = stack();
    let rs = runners(2);
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &rs, &["linux/amd64"], &["linux/arm64"]);
    let id = unique("bake-split");
    let repo = format!("rbuild-test/{id}");
    let image = format!("{}/{repo}:1", stack.registry);
    let single = format!("{}/{repo}-single:1", stack.registry);
    let bake_file = format!(
        "group \"default\" {{\n  targets = [\"multi\", \"single\"]\n}}\n\
         target \"multi\" {{\n  platforms = [\"linux/amd64\", \"linux/arm64\"]\n  tags = [\"{image}\"]\n  output = [\"type=registry\"]\n}}\n\
         target \"single\" {{\n  tags = [\"{single}\"]\n  output = [\"type=registry\"]\n}}\n"
    );
    let ctx = context(&[
        ("Dockerfile", "FROM scratch\nCOPY id /id\n"),
        ("id", &id),
        ("docker-bake.hcl", &bake_file),
    ]);
    let out = rbuild()
        .current_dir(ctx.path())
        .env("RBUILD_BUILDERS", &file)
        .args(["--builder", "mp", "bake", "--progress", "plain"])
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("[multi] rbuild: "))
        .unwrap_or_else(|| panic!("no report line for multi:\n{err}"));
    assert!(
        line.contains("built linux/amd64 on r1, linux/arm64 on r2"),
        "{line}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("[single] rbuild: ") && l.contains("built on r")),
        "{err}"
    );
    assert_eq!(
        image_platforms(&stack.registry, &repo, "1"),
        ["linux/amd64", "linux/arm64"]
    );
    manifest(&stack.registry, &format!("{repo}-single"), "1");
    let r2 = Engine::new(rs[1].engine_socket.clone());
    let arm64 = format!("{image}-linux-arm64");
    assert!(
        r2.image_id(&arm64).await.unwrap().is_some(),
        "r2 did not build arm64"
    );
    let _ = r2.remove_image(&arm64, true).await;
    let r1 = Engine::new(rs[0].engine_socket.clone());
    let _ = r1.remove_image(&format!("{image}-linux-amd64"), true).await;
}
