//! buildx build lines that CI pipelines pass, taken as they are.

mod support;

use support::{assert_success, build_cmd, context, rbuild, stack, stderr, stdout};

#[test]
fn cacheonly_output_progress_none_and_ipv6_hosts() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN grep v6host /etc/hosts\n",
    )]);
    let cache = tempfile::tempdir().unwrap();
    // Only the cache is exported: the cache dir is written, no image is.
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--add-host", "v6host:[fd00::5]", "-o", "type=cacheonly"])
        .args([
            "--cache-to",
            &format!("type=local,dest={}", cache.path().display()),
        ])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("fd00::5") && err.contains("v6host"), "{err}");
    assert!(!err.contains("exporting to image"), "{err}");
    assert!(cache.path().join("index.json").is_file());

    // --progress none: nothing at all on either stream.
    let out = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "none",
        ])
        .args([
            "--build-arg",
            &format!("BASE={}", stack.base),
            "-t",
            "rbuild-none:1",
        ])
        .args(["--add-host", "v6host:[fd00::5]"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""));
}
