//! A daemon killed in the middle of a build: the test proxy between rbuild
//! and the engine's BuildKit closes every connection and stops listening,
//! which is what a client sees of a daemon killed with SIGKILL (the shared
//! engine itself is never killed). rbuild must say so within 5 s, with one
//! line, and leave the previous output in place.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::faults::{Running, assert_dir_holds, one_error_line, wait_for_process};
use support::proxy::GrpcProxy;
use support::*;

/// A build through `proxy` of `dockerfile` into `out/app.tar`.
fn build(stack: &Stack, proxy: &GrpcProxy, dockerfile: &str, out: &Path) -> Command {
    let ctx = context(&[("Dockerfile", dockerfile)]);
    let mut cmd = rbuild();
    cmd.args(["build", "--addr", &proxy.address(), "--progress", "plain"])
        .args(["--no-cache", "--build-arg", &format!("BASE={}", stack.base)])
        .arg("-o")
        .arg(format!("type=tar,dest={}", out.join("app.tar").display()))
        .arg("--metadata-file")
        .arg(out.join("meta.json"))
        .arg(ctx.keep())
        .stdout(Stdio::null());
    cmd
}

/// Cuts the proxy and checks what rbuild did about it.
fn cut_and_check(proxy: &GrpcProxy, build: Running, out: &Path) {
    proxy.cut();
    let (status, took, err) = build.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        took < Duration::from_secs(5),
        "noticed after {took:?}:\n{err}"
    );
    let line = one_error_line(&err);
    assert!(
        line.contains("lost the connection to BuildKit at")
            && line.contains(&proxy.address())
            && line.contains("is the daemon still running"),
        "{line}"
    );
    assert_dir_holds(out, &[("app.tar", "previous")]);
}

#[test]
fn a_daemon_killed_during_a_step_is_reported_within_5s_and_the_step_stops() {
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let marker = unique("killed");
    // A sleep length no other test uses, to find the step's process.
    let sleep = format!("sleep {}", 5000 + std::process::id() % 900);
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    let dockerfile = format!("ARG BASE\nFROM ${{BASE}}\nRUN echo started-{marker} && {sleep}\n");
    let mut running = Running::spawn(&mut build(&stack, &proxy, &dockerfile, out.path()));
    // The step's output, not its name line (which quotes the command).
    running.wait_for(Duration::from_secs(60), |l| {
        l.contains(&format!("started-{marker}")) && !l.contains("RUN")
    });
    wait_for_process(&sleep, true, Duration::from_secs(15));
    cut_and_check(&proxy, running, out.path());
    // The daemon saw its client go and stopped the build.
    wait_for_process(&sleep, false, Duration::from_secs(15));
}

#[test]
fn a_daemon_killed_while_the_output_streams_back_leaves_the_previous_file() {
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    let dockerfile = format!(
        "ARG BASE\nFROM ${{BASE}}\nRUN head -c 200000000 /dev/urandom > /big && echo {}\n",
        unique("stream")
    );
    let running = Running::spawn(&mut build(&stack, &proxy, &dockerfile, out.path()));
    // Cut once the staged file beside the destination is filling up.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let staged = std::fs::read_dir(out.path()).unwrap().flatten().any(|e| {
            e.file_name().to_string_lossy().ends_with(".rbuild-tmp")
                && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
        });
        if staged {
            break;
        }
        assert!(Instant::now() < deadline, "the tar never started to arrive");
        std::thread::sleep(Duration::from_millis(10));
    }
    cut_and_check(&proxy, running, out.path());
}
