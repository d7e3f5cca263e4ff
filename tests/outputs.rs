//! Several outputs in one solve, written safely: tar, local, oci, stdout,
//! --load through a plain buildkitd-style connection, and the guarantee that a
//! failed build leaves previous files untouched.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use rbuild::docker_api::Engine;
use support::proxy::GrpcProxy;
use support::{assert_success, build_cmd, context, rbuild, stack, stderr, unique};

fn tar_list(path: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(path).output().unwrap();
    assert!(out.status.success(), "not a tar: {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

const DOCKERFILE: &str = "ARG BASE\nFROM ${BASE}\nRUN mkdir -p /out && echo built > /out/result.txt \
                          && printf '#!/bin/sh\\n' > /out/run.sh && chmod 755 /out/run.sh\n";

#[test]
fn tar_local_and_oci_outputs_in_one_solve() {
    let stack = stack();
    let ctx = context(&[("Dockerfile", DOCKERFILE)]);
    let out_dir = tempfile::tempdir().unwrap();
    let tar = out_dir.path().join("rootfs.tar");
    let oci = out_dir.path().join("image-oci.tar");
    let local = out_dir.path().join("rootfs");
    // A file already in the local destination that the export must keep.
    std::fs::create_dir(&local).unwrap();
    std::fs::write(local.join("kept.txt"), "mine").unwrap();
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-o", &format!("type=tar,dest={}", tar.display())])
        .args(["-o", &format!("type=local,dest={}", local.display())])
        .args(["-o", &format!("type=oci,dest={}", oci.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(tar_list(&tar).contains(&"out/result.txt".to_string()));
    let oci_entries = tar_list(&oci);
    assert!(
        oci_entries.contains(&"index.json".to_string()),
        "{oci_entries:?}"
    );
    assert!(
        oci_entries.contains(&"oci-layout".to_string()),
        "{oci_entries:?}"
    );
    assert_eq!(
        std::fs::read_to_string(local.join("out/result.txt")).unwrap(),
        "built\n"
    );
    let mode = std::fs::metadata(local.join("out/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    assert_eq!(
        std::fs::read_to_string(local.join("kept.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_link(local.join("linuxrc")).unwrap(),
        Path::new("/bin/busybox"),
        "symlinks are exported as links"
    );
    // Only the outputs are left in the directory: no temp files.
    let mut names: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["image-oci.tar", "rootfs", "rootfs.tar"]);
}

#[test]
fn a_failed_build_leaves_previous_outputs_untouched() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN echo partial > /p\nRUN exit 7\n",
    )]);
    let out_dir = tempfile::tempdir().unwrap();
    let tar = out_dir.path().join("app.tar");
    std::fs::write(&tar, "previous build").unwrap();
    let local = out_dir.path().join("dir");
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-o", &format!("type=tar,dest={}", tar.display())])
        .args(["-o", &format!("type=local,dest={}", local.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&tar).unwrap(), "previous build");
    assert!(!local.exists(), "a failed build created the local output");
    let names: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "temp files left behind");
}

#[test]
fn tar_to_stdout() {
    let stack = stack();
    let ctx = context(&[("Dockerfile", DOCKERFILE)]);
    let out = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "quiet",
            "--no-cache",
        ])
        .args(["--build-arg", &format!("BASE={}", stack.base), "-o", "-"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("stdout.tar");
    std::fs::write(&tar, &out.stdout).unwrap();
    assert!(tar_list(&tar).contains(&"out/result.txt".to_string()));
}

/// Over a plain HTTP/2 connection (as to a standalone buildkitd) `--load`
/// streams a docker tarball into the engine at DOCKER_HOST; the second time
/// the engine already has the image and it is only tagged.
#[tokio::test(flavor = "multi_thread")]
async fn load_streams_into_the_engine_then_takes_the_fast_path() {
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let engine = Engine::new(stack.engine_socket.clone());
    let id = unique("load");
    let ctx = context(&[(
        "Dockerfile",
        &format!("ARG BASE\nFROM ${{BASE}}\nRUN echo {id} > /id\n"),
    )]);
    let first = format!("rbuild-test/{id}:first");
    let second = format!("rbuild-test/{id}:second");
    let build = |tag: &str| {
        rbuild()
            .args([
                "build",
                "--addr",
                &proxy.address(),
                "--progress",
                "plain",
                "--load",
            ])
            .args(["--build-arg", &format!("BASE={}", stack.base), "-t", tag])
            .arg(ctx.path())
            .env(
                "DOCKER_HOST",
                format!("unix://{}", stack.engine_socket.display()),
            )
            .env("RBUILD_LOG", "rbuild=debug")
            .output()
            .unwrap()
    };
    let out = build(&first);
    assert_success(&out);
    assert!(
        engine.image_id(&first).await.unwrap().is_some(),
        "not loaded"
    );
    assert!(!stderr(&out).contains("already in the engine"));
    let out = build(&second);
    assert_success(&out);
    assert!(
        stderr(&out).contains("already in the engine"),
        "the second load streamed the tarball again:\n{}",
        stderr(&out)
    );
    assert!(
        engine.image_id(&second).await.unwrap().is_some(),
        "not tagged"
    );
    for tag in [&first, &second] {
        engine.remove_image(tag, true).await.unwrap();
    }
}

#[test]
fn cache_problems_warn_and_the_build_goes_on() {
    let stack = stack();
    let ctx = context(&[("Dockerfile", DOCKERFILE)]);
    // A cache ref that does not exist yet: only a warning.
    let missing = format!("{}/rbuild-test/{}", stack.registry, unique("nocache"));
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--cache-from", &missing])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stderr(&out).contains("WARNING"), "{}", stderr(&out));
    // An unreachable cache registry with ignore-error=true: the image is
    // still produced, and rbuild says the cache was not exported.
    let image = format!("{}/rbuild-test/{}:1", stack.registry, unique("ignore"));
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args([
            "--cache-to",
            "type=registry,ref=127.0.0.1:1/unreachable,ignore-error=true",
        ])
        .args(["-t", &image, "--push"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains("WARNING: cache export to 127.0.0.1:1/unreachable failed"),
        "{err}"
    );
    support::registry::manifest(&stack.registry, &image);
}

#[test]
fn bad_specs_fail_before_connecting() {
    let ctx = context(&[("Dockerfile", "FROM scratch\n")]);
    let cases = [
        (vec!["--cache-to", "type=nope,ref=x"], "unknown cache type"),
        (
            vec!["--cache-to", "type=registry,ref=x,mode=all"],
            "min or max",
        ),
        (vec!["--cache-from", "type=registry"], "needs ref="),
        (vec!["-o", "type=tar"], "needs dest=FILE"),
        (
            vec!["-o", "type=tar,dest=/nonexistent/dir/x.tar"],
            "does not exist",
        ),
        (vec!["-o", "type=zip,dest=x"], "unknown output type"),
    ];
    for (args, want) in cases {
        // An address that cannot answer: the error must come first.
        let out = rbuild()
            .args(["build", "--addr", "unix:///nonexistent/bk.sock"])
            .args(&args)
            .arg(ctx.path())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// BuildKit merges all exporters' responses into one map (BuildKit issue
/// #4532); --metadata-file also reports each output under its own entry.
#[test]
fn metadata_file_describes_each_output() {
    let stack = stack();
    let ctx = context(&[("Dockerfile", DOCKERFILE)]);
    let out_dir = tempfile::tempdir().unwrap();
    let oci = out_dir.path().join("image-oci.tar");
    let meta = out_dir.path().join("meta.json");
    let image = format!("{}/rbuild-test/{}:1", stack.registry, unique("meta"));
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-o", &format!("type=oci,dest={}", oci.display())])
        .args(["-t", &image, "--push"])
        .arg("--metadata-file")
        .arg(&meta)
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let outputs = meta["rbuild.outputs"].as_array().expect("rbuild.outputs");
    assert_eq!(outputs.len(), 2, "{meta}");
    // The OCI tarball's entry names the manifest inside that tarball.
    let index = Command::new("tar")
        .arg("-xOf")
        .arg(&oci)
        .arg("index.json")
        .output()
        .unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index.stdout).unwrap();
    assert_eq!(outputs[0]["type"], "oci");
    assert_eq!(
        outputs[0]["containerimage.digest"], index["manifests"][0]["digest"],
        "{meta}"
    );
    // The pushed image's entry names the manifest in the registry.
    let pushed = support::registry::manifest(&stack.registry, &image);
    let pushed_digest = outputs[1]["containerimage.digest"]
        .as_str()
        .expect("digest");
    let repo = image
        .strip_prefix(&format!("{}/", stack.registry))
        .and_then(|r| r.rsplit_once(':'))
        .unwrap()
        .0;
    let head = support::registry::request(
        &stack.registry,
        "HEAD",
        &format!("/v2/{repo}/manifests/{pushed_digest}"),
    );
    assert_eq!(head.status, 200, "{meta}");
    assert!(pushed["layers"].is_array());
    assert_ne!(
        outputs[0]["containerimage.digest"],
        outputs[1]["containerimage.digest"]
    );
}
