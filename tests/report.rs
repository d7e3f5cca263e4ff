//! The end-of-build cache report: one line in the log, the same facts as
//! JSON with --report, for a cold build and its cached rebuild.

mod support;

use support::{assert_success, context, rbuild, stack, stderr, unique};

#[test]
fn report_line_and_json_show_cache_hits() {
    let stack = stack();
    let id = unique("report");
    let ctx = context(&[
        (
            "Dockerfile",
            &format!("ARG BASE\nFROM ${{BASE}}\nCOPY a.txt /\nRUN echo {id} > /id\n"),
        ),
        ("a.txt", "a"),
    ]);
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    let report = ctx.path().join("report.json");
    let build = || {
        let out = rbuild()
            .args([
                "build",
                "--addr",
                &stack.buildkit_host,
                "--progress",
                "plain",
            ])
            .args([
                "--build-arg",
                &format!("BASE={}", stack.base),
                "--cache",
                &cache,
            ])
            .arg("--report")
            .arg(&report)
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        (stderr(&out), json)
    };
    let (log, cold) = build();
    let line = log
        .lines()
        .rfind(|l| l.starts_with("rbuild: "))
        .expect("report line");
    assert!(line.contains(&format!("cache to {cache}")), "{line}");
    assert_eq!(cold["status"], "succeeded");
    assert_eq!(cold["cache_to"][0]["ref"], cache.as_str());
    assert!(
        cold["context"]["files_sent"].as_u64().unwrap() >= 1,
        "{cold}"
    );
    let cold_cached = cold["steps"]["cached"].as_u64().unwrap();

    let (_, warm) = build();
    assert_eq!(warm["context"]["files_sent"], 0, "{warm}");
    // Internal steps (loading the definition, exporting) run every time and
    // count as executed; the rebuild must reuse more than the cold build.
    assert!(
        warm["steps"]["cached"].as_u64().unwrap() > cold_cached,
        "the rebuild should reuse steps: cold {cold}, warm {warm}"
    );
    // The image id is the index's on an engine with the containerd store,
    // and the index holds each build's own provenance: the image manifest
    // is what stays the same.
    assert_eq!(
        warm["image_manifest"], cold["image_manifest"],
        "same inputs, same image"
    );
    assert!(warm["image_manifest"].is_string(), "{warm}");
    assert!(
        warm["image_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
}
