//! Real-world `docker buildx build` lines, from buildx's documentation and
//! the CI templates that generate them (GitHub Actions' build-push-action,
//! GitLab CI, Jenkins), run as `rbuild build --print-request ...` with the
//! `docker buildx build` prefix swapped: each must map to the request buildx
//! would send. Lines with a flag rbuild cannot honour must fail in one line
//! that says so, never be ignored. No daemon is needed: `--print-request`
//! resolves everything a build resolves before connecting.

mod support;

use serde_json::Value;

#[path = "buildx_lines/corpus.rs"]
mod corpus;

use corpus::{CORPUS, ENGINE, UNSUPPORTED};

/// Splits a command line as a shell would, for the quoting these lines use.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// A project these lines can build: a Dockerfile, the files they name.
fn project() -> tempfile::TempDir {
    let dir = support::context(&[
        ("Dockerfile", "FROM busybox\nRUN true\n"),
        ("docker/Dockerfile.prod", "FROM busybox\n"),
        ("secrets/aws.txt", "key\n"),
        ("extra/file", "x\n"),
    ]);
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    dir
}

fn print_request(
    dir: &std::path::Path,
    addr: &str,
    args: &str,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = support::rbuild();
    cmd.current_dir(dir)
        .args(["build", "--addr", addr, "--print-request"])
        .args(words(args));
    for var in [
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_CACHE_URL",
        "ACTIONS_RESULTS_URL",
        "BUILDX_NO_DEFAULT_ATTESTATIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

#[test]
fn real_world_lines_map_to_the_request_buildx_sends() {
    assert!(CORPUS.len() >= 30, "the corpus keeps at least 30 lines");
    let dir = project();
    for l in CORPUS {
        let out = print_request(dir.path(), l.addr, l.args, l.env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: `{}` failed: {stderr}",
            l.source,
            l.args
        );
        let request: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: not JSON ({e}): {}",
                l.source,
                String::from_utf8_lossy(&out.stdout)
            )
        });
        for (pointer, want) in l.expect {
            let got = request
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{}: no {pointer} in {request:#}", l.source));
            assert_eq!(
                got.as_str(),
                Some(*want),
                "{}: {pointer} in {request:#}",
                l.source
            );
        }
        // No credential crosses into what is shown.
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            !shown.contains("a.b.c") && !shown.contains("not-printed"),
            "{}: {shown}",
            l.source
        );
    }
}

#[test]
fn buildx_defaults_and_no_effect_flags_are_visible() {
    let dir = project();
    // The default provenance, as buildx adds it, unless turned off.
    let request = |args: &str, env: &[(&str, &str)]| -> Value {
        let out = print_request(dir.path(), ENGINE, args, env);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let default = request("--push -t a/b .", &[]);
    assert_eq!(
        default["frontend_attrs"]["attest:provenance"],
        "mode=min,inline-only=true"
    );
    let off = request("--provenance=false --push -t a/b .", &[]);
    assert!(
        off["frontend_attrs"].get("attest:provenance").is_none(),
        "{off}"
    );
    let env_off = request(
        "--push -t a/b .",
        &[("BUILDX_NO_DEFAULT_ATTESTATIONS", "1")],
    );
    assert!(
        env_off["frontend_attrs"].get("attest:provenance").is_none(),
        "{env_off}"
    );

    // Flags buildx accepts without effect: a warning each, never silence.
    let out = print_request(dir.path(), ENGINE, "--rm --squash --compress -t app .", &[]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for flag in ["--rm", "--squash", "--compress"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with("WARNING: ") && l.contains(flag) && l.contains("no effect")),
            "{flag}: {stderr}"
        );
    }
}

#[test]
fn unsupported_flags_fail_in_one_line_that_says_so() {
    let dir = project();
    for (args, flag) in UNSUPPORTED {
        let out = print_request(dir.path(), ENGINE, args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "`{args}` was accepted");
        assert_eq!(stderr.trim().lines().count(), 1, "`{args}`: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("not supported"),
            "`{args}`: {stderr}"
        );
    }
}
