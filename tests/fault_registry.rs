//! A registry stopped in the middle of an upload: the image push, the cache
//! export. The registry is the stack's, reached through a proxy on its own
//! loopback port (plain HTTP to BuildKit, like the stack's) that cuts every
//! connection and stops listening once a few MB went up, as a registry that
//! was killed would look. The shared registry itself keeps running.

mod support;

use std::process::Command;
use std::time::Duration;

use support::faults::{Running, assert_dir_holds, one_error_line, tar_build};
use support::registry::request;
use support::tcp_cut::TcpCut;
use support::*;

/// A Dockerfile whose one layer (about 30 MB of random bytes) takes a
/// while to upload; `id` makes it new.
fn big_layer(id: &str) -> String {
    format!("ARG BASE\nFROM ${{BASE}}\nRUN head -c 30000000 /dev/urandom > /big && echo {id}\n")
}

/// The manifest digest a tag points at, through the stack registry.
fn tag_digest(stack: &Stack, repo: &str, tag: &str) -> Option<String> {
    let resp = request(
        &stack.registry,
        "HEAD",
        &format!("/v2/{repo}/manifests/{tag}"),
    );
    (resp.status == 200)
        .then(|| resp.header("Docker-Content-Digest").map(str::to_string))
        .flatten()
}

/// Runs `cmd` with the proxy armed to cut after 4 MB went up; returns the
/// one error line.
fn run_until_cut(proxy: &TcpCut, cmd: &mut Command) -> String {
    proxy.cut_after_sent(4 << 20);
    let (status, took, err) = Running::spawn(cmd).finish(Duration::from_secs(180));
    assert!(proxy.is_cut(), "the upload never reached 4 MB:\n{err}");
    assert_eq!(status.code(), Some(1), "{err}");
    eprintln!("failed after {took:?}:\n{err}");
    one_error_line(&err)
}

#[test]
fn a_registry_stopped_during_the_push_fails_the_build_and_keeps_the_tag() {
    let stack = stack();
    let proxy = TcpCut::start(&stack.registry);
    let repo = format!("rbuild-test/{}", unique("push-cut"));
    let image = format!("{}/{repo}:1", proxy.addr);
    let out = tempfile::tempdir().unwrap();
    // The tag's previous image, pushed before the fault.
    let first = tar_build(&stack, "FROM scratch\nCOPY Dockerfile /\n", out.path())
        .args(["-t", &image, "--push"])
        .output()
        .unwrap();
    assert_success(&first);
    let previous = tag_digest(&stack, &repo, "1").expect("the first push landed");
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    std::fs::remove_file(out.path().join("meta.json")).unwrap();

    let mut cmd = tar_build(&stack, &big_layer(&unique("push")), out.path());
    cmd.args(["-t", &image, "--push"]);
    let line = run_until_cut(&proxy, &mut cmd);
    assert!(
        line.contains(&proxy.addr) && line.contains("push"),
        "the error does not say the push to the registry failed: {line}"
    );
    assert!(line.contains("check"), "no hint what to check: {line}");
    assert_eq!(tag_digest(&stack, &repo, "1"), Some(previous));
    assert_dir_holds(out.path(), &[("app.tar", "previous")]);
}

#[test]
fn a_registry_stopped_during_the_cache_export_is_named_as_the_cache_export() {
    let stack = stack();
    let proxy = TcpCut::start(&stack.registry);
    let cache = format!("{}/rbuild-test/{}", proxy.addr, unique("cache-cut"));
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    let mut cmd = tar_build(&stack, &big_layer(&unique("cache")), out.path());
    cmd.args(["--cache-to", &format!("type=registry,ref={cache},mode=max")]);
    let line = run_until_cut(&proxy, &mut cmd);
    assert!(
        line.contains(&format!("cache export to {cache} failed")),
        "the error does not name the cache export: {line}"
    );
    assert!(
        line.contains("ignore-error=true"),
        "no way out named: {line}"
    );
    assert_dir_holds(out.path(), &[("app.tar", "previous")]);
}
