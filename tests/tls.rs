//! `rbuild info` over TLS to the real BuildKit, behind a TLS-terminating
//! proxy with a CA the test makes: server verification, mTLS, and the errors
//! a wrong CA, a wrong name, a missing client certificate or TLS flags on a
//! socket address give.

mod support;

use std::time::Duration;

use support::tls_proxy::{TestPki, TlsProxy};
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

fn direct_worker_ids() -> Vec<String> {
    let stack = stack();
    let out = rbuild()
        .args(["info", "--format", "json", "--addr", &stack.buildkit_host])
        .output()
        .unwrap();
    assert_success(&out);
    worker_ids(&stdout(&out))
}

/// A refused connection: non-zero exit, one line naming the address and
/// `expect`, within 5 s.
#[track_caller]
fn assert_clear_failure(args: &[&str], addr: &str, expect: &[&str]) {
    let (out, took) = run_timed(rbuild().args(["info", "--addr", addr]).args(args));
    let err = stderr(&out);
    eprintln!("{addr} {args:?}: {err}");
    assert!(!out.status.success(), "{args:?}: unexpectedly succeeded");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(addr), "address not named: {err}");
    for want in expect {
        assert!(err.contains(want), "{want:?} missing: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn info_over_tls_reaches_the_same_daemon() {
    let stack = stack();
    let pki = TestPki::new();
    let proxy = TlsProxy::start(&stack.engine_socket, &pki, false);
    let ca = pki.ca.to_str().unwrap();
    let out = rbuild()
        .args(["info", "--addr", &proxy.address()])
        .args(["--tlscacert", ca, "--tlsservername", "localhost"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("Workers:"), "{}", stdout(&out));

    let out = rbuild()
        .args(["--tlscacert", ca, "--tlsservername", "localhost"])
        .args(["info", "--format", "json", "--addr", &proxy.address()])
        .output()
        .unwrap();
    assert_success(&out);
    let ids = worker_ids(&stdout(&out));
    assert!(!ids.is_empty());
    assert_eq!(ids, direct_worker_ids());
}

#[test]
fn mtls_with_a_client_certificate_works() {
    let stack = stack();
    let pki = TestPki::new();
    let proxy = TlsProxy::start(&stack.engine_socket, &pki, true);
    let out = rbuild()
        .args(["info", "--format", "json", "--addr", &proxy.address()])
        .args(["--tlscacert", pki.ca.to_str().unwrap()])
        .args(["--tlscert", pki.client_cert.to_str().unwrap()])
        .args(["--tlskey", pki.client_key.to_str().unwrap()])
        .args(["--tlsservername", "localhost"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(worker_ids(&stdout(&out)), direct_worker_ids());

    // The same files through buildctl's --tlsdir layout.
    let out = rbuild()
        .args(["info", "--format", "json", "--addr", &proxy.address()])
        .args(["--tlsdir", pki.dir.path().to_str().unwrap()])
        .args(["--tlsservername", "localhost"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(worker_ids(&stdout(&out)), direct_worker_ids());
}

#[test]
fn a_wrong_ca_or_name_is_refused_clearly() {
    let stack = stack();
    let pki = TestPki::new();
    let other = TestPki::new();
    let proxy = TlsProxy::start(&stack.engine_socket, &pki, false);
    assert_clear_failure(
        &[
            "--tlscacert",
            other.ca.to_str().unwrap(),
            "--tlsservername",
            "localhost",
        ],
        &proxy.address(),
        &["certificate", "not signed by a trusted CA", "--tlscacert"],
    );
    // Without --tlsservername the address host must match; it does not.
    assert_clear_failure(
        &["--tlscacert", pki.ca.to_str().unwrap()],
        &proxy.address(),
        &["certificate", "127.0.0.1", "--tlsservername"],
    );
}

#[test]
fn an_mtls_daemon_without_a_client_certificate_is_refused_clearly() {
    let stack = stack();
    let pki = TestPki::new();
    let proxy = TlsProxy::start(&stack.engine_socket, &pki, true);
    assert_clear_failure(
        &[
            "--tlscacert",
            pki.ca.to_str().unwrap(),
            "--tlsservername",
            "localhost",
        ],
        &proxy.address(),
        &["client certificate", "--tlscert"],
    );
}

#[test]
fn tls_flags_with_a_socket_address_are_refused() {
    let pki = TestPki::new();
    let ca = pki.ca.to_str().unwrap();
    for addr in [
        "unix:///run/buildkit/buildkitd.sock",
        "docker:///var/run/docker.sock",
    ] {
        assert_clear_failure(&["--tlscacert", ca], addr, &["TLS", "tcp://"]);
    }
}

/// An X.509 v1 certificate, as `openssl x509 -req` makes one without an
/// extensions file, and its key.
fn v1_client_cert(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (key, csr, cert) = (dir.join("v1.key"), dir.join("v1.csr"), dir.join("v1.pem"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    let p = |p: &std::path::Path| p.to_str().unwrap().to_string();
    run(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &p(&key),
        "-subj",
        "/CN=v1-client",
        "-out",
        &p(&csr),
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-signkey",
        &p(&key),
        "-days",
        "2",
        "-out",
        &p(&cert),
    ]);
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in", &p(&cert)])
        .output()
        .unwrap();
    assert!(
        stdout(&text).contains("Version: 1 (0x0)"),
        "not a v1 certificate"
    );
    (cert, key)
}

#[test]
fn a_v1_client_certificate_is_presented_as_buildctl_does() {
    let stack = stack();
    let pki = TestPki::new();
    let (cert, key) = v1_client_cert(pki.dir.path());
    let pem = std::fs::read_to_string(&cert).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
    let proxy = TlsProxy::start_expecting(&stack.engine_socket, &pki, der);
    let out = rbuild()
        .args(["info", "--addr", &proxy.address()])
        .args([
            "--tlscacert",
            pki.ca.to_str().unwrap(),
            "--tlsservername",
            "localhost",
        ])
        .args([
            "--tlscert",
            cert.to_str().unwrap(),
            "--tlskey",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("Workers:"), "{}", stdout(&out));

    // A key that is not the certificate's is still refused, saying so.
    let out = rbuild()
        .args(["info", "--addr", &proxy.address()])
        .args([
            "--tlscacert",
            pki.ca.to_str().unwrap(),
            "--tlsservername",
            "localhost",
        ])
        .args([
            "--tlscert",
            pki.client_cert.to_str().unwrap(),
            "--tlskey",
            &key.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not the key of the client certificate"),
        "{}",
        stderr(&out)
    );
}
