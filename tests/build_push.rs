//! Build + push against the real engine, then read the image back from the
//! registry: layers, labels, history; plus the files rbuild writes.

mod support;

use support::registry;
use support::{assert_success, build_cmd, context, stack, stderr, unique};

#[test]
fn build_and_push_then_read_the_image_back() {
    let stack = stack();
    let ctx = context(&[
        (
            "Dockerfile",
            "ARG BASE\nFROM ${BASE}\nARG GREETING=unset\nCOPY hello.txt /hello.txt\n\
             RUN echo \"$GREETING\" > /greeting && cat /hello.txt\nLABEL stage=final\n",
        ),
        ("hello.txt", "hello from the context\n"),
    ]);
    let image = format!("{}/rbuild-test/{}:v1", stack.registry, unique("push"));
    let meta = ctx.path().join("meta.json");
    let iid = ctx.path().join("iid.txt");
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--build-arg", "GREETING=hi there"])
        .args(["--label", "org.example.team=ci"])
        .args(["-t", &image, "--push"])
        .arg("--metadata-file")
        .arg(&meta)
        .arg("--iidfile")
        .arg(&iid)
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    // RUN output reaches plain progress, prefixed with its step number.
    let progress = stderr(&out);
    assert!(
        progress.contains("hello from the context"),
        "RUN output missing:\n{progress}"
    );
    assert!(progress.contains("RUN echo"), "{progress}");

    let manifest = registry::manifest(&stack.registry, &image);
    let layers = manifest["layers"].as_array().expect("layers");
    // busybox base layer + COPY + RUN.
    assert_eq!(layers.len(), 3, "{manifest}");
    let config = registry::config(&stack.registry, &image);
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.example.team"], "ci", "{config}");
    assert_eq!(labels["stage"], "final", "{config}");
    let history: Vec<String> = config["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        history
            .iter()
            .any(|h| h.contains("COPY hello.txt /hello.txt")),
        "{history:?}"
    );
    assert!(
        history.iter().any(|h| h.contains("echo \"$GREETING\"")),
        "{history:?}"
    );

    // --metadata-file is buildx-shaped and names the pushed image.
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let digest = meta["containerimage.digest"].as_str().expect("digest");
    assert!(digest.starts_with("sha256:"), "{meta}");
    assert!(
        meta["image.name"]
            .as_str()
            .unwrap_or_default()
            .contains(&image),
        "{meta}"
    );
    assert!(
        meta["containerimage.descriptor"]["size"].as_u64().is_some(),
        "{meta}"
    );
    // The pushed manifest is the one the metadata names.
    let by_digest = format!("{}@{digest}", image.split(':').next().unwrap_or_default());
    let repo = image.rsplit_once(':').unwrap().0;
    let fetched = registry::request(
        &stack.registry,
        "HEAD",
        &format!(
            "/v2/{}/manifests/{digest}",
            repo.strip_prefix(&format!("{}/", stack.registry)).unwrap()
        ),
    );
    assert_eq!(fetched.status, 200, "{by_digest}");
    // --iidfile holds docker's image id, as buildx writes it: the config
    // digest when the daemon reports one; an engine with the containerd
    // image store reports the index (image + default provenance) instead,
    // which is the id that engine gives the image.
    let iid = std::fs::read_to_string(&iid).unwrap();
    let want = match meta["containerimage.config.digest"].as_str() {
        Some(config) => {
            assert_eq!(config, manifest["config"]["digest"].as_str().unwrap());
            config
        }
        None => {
            assert_eq!(
                meta["containerimage.descriptor"]["mediaType"],
                "application/vnd.oci.image.index.v1+json",
                "{meta}"
            );
            digest
        }
    };
    assert_eq!(iid, want, "iidfile is the image id");
}

#[test]
fn target_stage_dockerfile_outside_context_and_stdin() {
    let stack = stack();
    let ctx = context(&[("data.txt", "context data\n")]);
    let elsewhere = context(&[(
        "build.Dockerfile",
        "ARG BASE\nFROM ${BASE} AS first\nRUN echo stage-first-ran\n\
         FROM first AS second\nRUN echo stage-second-ran\n",
    )]);
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--target", "first"])
        .arg("-f")
        .arg(elsewhere.path().join("build.Dockerfile"))
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let progress = stderr(&out);
    assert!(progress.contains("stage-first-ran"), "{progress}");
    assert!(!progress.contains("stage-second-ran"), "{progress}");

    // -f - reads the Dockerfile from stdin.
    use std::io::Write;
    let mut child = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-f", "-"])
        .arg(ctx.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"ARG BASE\nFROM ${BASE}\nCOPY data.txt /\nRUN cat /data.txt && echo from-stdin\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    let progress = stderr(&out);
    assert!(progress.contains("from-stdin"), "{progress}");
    assert!(progress.contains("context data"), "{progress}");
}

#[test]
fn build_subcommand_and_bare_path_are_the_same() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN echo bare-path-build\n",
    )]);
    // `rbuild PATH` without the word build.
    let out = support::rbuild()
        .args(["--addr", &stack.buildkit_host, "--progress", "plain"])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stderr(&out).contains("bare-path-build"));
}
