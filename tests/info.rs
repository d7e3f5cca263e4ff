//! `rbuild info` against the real engine: both transports, address sources,
//! and the errors a wrong or dead address gives.

mod support;

use std::time::Duration;

use support::proxy::GrpcProxy;
use support::{assert_success, rbuild, run_timed, stack, stderr, stdout};

fn worker_ids(info_json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(info_json).expect("info --format json");
    v["workers"]
        .as_array()
        .expect("workers array")
        .iter()
        .map(|w| w["id"].as_str().expect("worker id").to_string())
        .collect()
}

#[test]
fn info_over_the_engine_shows_version_and_workers() {
    let stack = stack();
    let out = rbuild()
        .args(["info", "--addr", &stack.buildkit_host])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("BuildKit: "), "{text}");
    // The engine's embedded BuildKit reports a semver version.
    let version_line = text.lines().find(|l| l.starts_with("BuildKit:")).unwrap();
    assert!(version_line.contains(" v0."), "{version_line}");
    assert!(text.contains("Workers:  1"), "{text}");
    assert!(text.contains("linux/amd64"), "{text}");
    assert!(text.contains("org.mobyproject.buildkit.worker"), "{text}");
}

#[test]
fn plain_http2_transport_reaches_the_same_daemon() {
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let via_proxy = rbuild()
        .args(["info", "--format", "json", "--addr", &proxy.address()])
        .output()
        .unwrap();
    assert_success(&via_proxy);
    let direct = rbuild()
        .args(["--addr", &stack.buildkit_host, "info", "--format", "json"])
        .output()
        .unwrap();
    assert_success(&direct);
    let ids = worker_ids(&stdout(&via_proxy));
    assert!(!ids.is_empty());
    assert_eq!(ids, worker_ids(&stdout(&direct)));
}

#[test]
fn buildkit_host_is_used_when_no_flag_is_given() {
    let stack = stack();
    let out = rbuild()
        .arg("info")
        .env("BUILDKIT_HOST", &stack.buildkit_host)
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains(&format!("Address:  {}", stack.buildkit_host)));
    // The flag wins over the variable.
    let out = rbuild()
        .args(["info", "--addr", "unix:///nonexistent/bk.sock"])
        .env("BUILDKIT_HOST", &stack.buildkit_host)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// A wrong or dead address: non-zero exit, one line naming the address and
/// what to check, within 5 s.
#[track_caller]
fn assert_clear_failure(addr: &str, expect: &str) {
    let (out, took) = run_timed(rbuild().args(["info", "--addr", addr]));
    let err = stderr(&out);
    assert!(!out.status.success(), "{addr}: unexpectedly succeeded");
    assert_eq!(err.trim().lines().count(), 1, "{addr}: not one line: {err}");
    assert!(err.contains(addr), "{addr}: address not named: {err}");
    assert!(err.contains(expect), "{addr}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(took < Duration::from_secs(5), "{addr}: took {took:?}");
}

#[test]
fn dead_and_wrong_addresses_fail_fast_and_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // No socket at all.
    assert_clear_failure("unix:///nonexistent/rbuild/bk.sock", "no socket");
    assert_clear_failure("docker:///nonexistent/docker.sock", "no socket");
    // Nothing listening on a loopback port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_clear_failure(&format!("tcp://127.0.0.1:{port}"), "refused");
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    assert_clear_failure(&format!("tcp://127.0.0.1:{silent_port}"), "within");
    // A file that is not a socket.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"").unwrap();
    assert_clear_failure(&format!("unix://{}", file.display()), "BuildKit");
    drop(silent);
}

#[test]
fn a_buildkitd_socket_given_as_an_engine_is_refused_clearly() {
    // The proxy speaks HTTP/2 only; treating it as an engine must fail with
    // a message, not hang.
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let addr = format!("docker://{}", proxy.socket.display());
    let (out, took) = run_timed(rbuild().args(["info", "--addr", &addr]));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&addr), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_malformed_address_is_a_usage_error() {
    let out = rbuild()
        .args(["info", "--addr", "localhost:1234"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SCHEME://"), "{}", stderr(&out));
}

#[test]
fn a_buildx_builder_name_resolves_through_the_store() {
    let stack = stack();
    let proxy = GrpcProxy::start(&stack.engine_socket);
    let config = tempfile::tempdir().unwrap();
    let instances = config.path().join("buildx/instances");
    std::fs::create_dir_all(&instances).unwrap();
    std::fs::write(
        instances.join("ci-remote"),
        format!(
            r#"{{"Name":"ci-remote","Driver":"remote","Nodes":[{{"Name":"ci-remote0","Endpoint":"{}","Platforms":null,"DriverOpts":null,"Flags":null,"Files":null}}],"Dynamic":false}}"#,
            proxy.address()
        ),
    )
    .unwrap();
    let out = rbuild()
        .args(["info", "--builder", "ci-remote"])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains(&proxy.address()), "{}", stdout(&out));

    let out = rbuild()
        .args(["info", "--builder", "nope"])
        .env("DOCKER_CONFIG", config.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("no buildx builder named \"nope\"") && err.contains("docker buildx ls"),
        "{err}"
    );
}
