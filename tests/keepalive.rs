//! A daemon that stops answering in the middle of a build is noticed through
//! HTTP/2 keepalive pings instead of being waited on forever. The real
//! engine's BuildKit runs the build; the test proxy between them freezes
//! (keeps both sockets open, forwards nothing), as a hung daemon or a peer
//! host that vanished without a FIN would look to the client.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::proxy::GrpcProxy;
use support::*;

fn sleeping_build(
    stack: &Stack,
    proxy: &GrpcProxy,
    keepalive: &str,
    id: &str,
) -> std::process::Command {
    let ctx = context(&[(
        "Dockerfile",
        &format!("ARG BASE\nFROM ${{BASE}}\nRUN echo {id} && sleep 40\n"),
    )]);
    let mut cmd = rbuild();
    cmd.args(["build", "--addr", &proxy.address(), "--progress", "plain"])
        .args(["--keepalive", keepalive, "--no-cache"])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.keep())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn a_daemon_that_stops_answering_fails_the_build_within_the_keepalive() {
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let id = unique("keepalive");
    let mut child = sleeping_build(&stack, &proxy, "2", &id).spawn().unwrap();

    // Let the session come up and the RUN step start, then hang the "daemon".
    std::thread::sleep(Duration::from_secs(4));
    assert!(child.try_wait().unwrap().is_none(), "the build ended early");
    proxy.freeze();
    let frozen_at = Instant::now();

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if frozen_at.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("rbuild still waits on a frozen daemon after 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let waited = frozen_at.elapsed();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        !status.success(),
        "a build cut off from its daemon succeeded"
    );
    // 2 s interval + 2 s ping timeout, plus scheduling slack; the RUN step
    // alone would have taken 40 s.
    assert!(
        waited < Duration::from_secs(15),
        "noticed only after {waited:?}"
    );
    assert!(
        err.contains("stopped answering") && err.contains("--keepalive"),
        "the error does not say what happened: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
