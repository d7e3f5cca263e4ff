//! `rbuild cache` against a registry that serves HTTPS with a test CA's
//! certificate and wants an htpasswd login: the test fills its own
//! `docker-registry` over plain HTTP with BuildKit caches and an image,
//! then restarts it on the same storage with TLS and htpasswd, first with
//! deletes disabled, then enabled. Checked: the CA from `--ca-file` or
//! `SSL_CERT_FILE`, the login from a `DOCKER_CONFIG` written here, the
//! page size sent as `n`, pooled connections, and one clear line for each
//! thing the user must fix (CA, login, deletes). Distribution 2.8 does not
//! page tag lists, so `Link` paging is tested in `src/registry/wire_tests.rs`.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::own_registry::{OwnRegistry, TestCa, config, docker_config, fill, free_port};
use support::registry::request;
use support::{assert_success, rbuild, stack, stderr, stdout, unique};

const USER: &str = "cache-admin";

/// `rbuild cache ARGS` with only the trust and login the test gives.
fn cache(docker_config: &Path, ssl_cert_file: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = rbuild();
    cmd.arg("cache")
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(file) = ssl_cert_file {
        cmd.env("SSL_CERT_FILE", file);
    }
    cmd.output().expect("rbuild runs")
}

fn json(out: &Output) -> Value {
    assert_success(out);
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) {
    assert!(!out.status.success(), "should fail: {}", stdout(out));
    let err = stderr(out);
    eprint!("as expected: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} missing in: {err}");
    }
}

fn kinds(rows: &Value) -> Vec<(String, String)> {
    rows.as_array()
        .expect("ls rows")
        .iter()
        .map(|r| {
            (
                r["tag"].as_str().unwrap().into(),
                r["kind"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn cache_over_https_with_a_login_prunes_only_where_deletes_are_allowed() {
    let stack = stack();
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("storage");
    let repo = format!("rbuild-test/{}", unique("tls"));
    {
        let addr = format!("127.0.0.1:{}", free_port());
        let conf = config(&addr, &storage, true, None, "");
        let _plain = OwnRegistry::start(dir.path(), "fill", &addr, &conf);
        fill(
            &stack,
            &format!("{addr}/{repo}"),
            &["c1", "c2"],
            Some("img"),
        );
    }

    let ca = TestCa::new();
    let password = unique("pw-Tq3");
    let hash = bcrypt::hash_with_result(&password, 5)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: rbuild-test\n    path: {}\n",
        htpasswd.display()
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("https://{addr}/{repo}");
    let login = docker_config(&addr, USER, &password);
    let ca_file = ca.ca.to_str().unwrap();
    let conf = config(&addr, &storage, false, Some(&ca), &auth);
    let locked = OwnRegistry::start(dir.path(), "no-delete", &addr, &conf);

    // The page size goes out as `n`; distribution 2.8 ignores it and
    // sends no `Link` (its tag list has no paging), so one page it is.
    let out = cache(
        login.path(),
        None,
        &[
            "ls",
            &url,
            "--ca-file",
            ca_file,
            "--page-size",
            "2",
            "--format",
            "json",
            "--debug",
        ],
    );
    let rows = json(&out);
    let expect = [("c1", "cache"), ("c2", "cache"), ("img", "image")];
    let mut seen = kinds(&rows);
    seen.sort();
    let expect: Vec<(String, String)> = expect
        .iter()
        .map(|(t, k)| (t.to_string(), k.to_string()))
        .collect();
    assert_eq!(seen, expect);
    // Not even in the debug log: neither the password nor its Basic form.
    let basic = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"))
    };
    assert!(stderr(&out).contains("registry request"), "debug log on");
    for text in [stdout(&out), stderr(&out)] {
        assert!(
            !text.contains(&password) && !text.contains(&basic),
            "the login leaked"
        );
    }
    let requests = locked.requests();
    let pages: Vec<&str> = requests
        .iter()
        .filter(|r| r.status == 200 && r.uri.contains("/tags/list"))
        .map(|r| r.uri.as_str())
        .collect();
    assert_eq!(pages.len(), 1, "{requests:?}");
    assert!(pages[0].ends_with("/tags/list?n=2"), "{pages:?}");
    // One 401 taught the client the login; every other call sent it.
    let refused = requests.iter().filter(|r| r.status == 401).count();
    assert_eq!(refused, 1, "{requests:?}");
    assert!(
        locked.connections() < requests.len(),
        "{} requests should share connections, used {}",
        requests.len(),
        locked.connections()
    );

    // SSL_CERT_FILE in place of --ca-file.
    let out = cache(
        login.path(),
        Some(&ca.ca),
        &["du", &url, "--format", "json"],
    );
    let du = json(&out);
    assert_eq!(
        (du["tags"].clone(), du["cache_tags"].clone()),
        (3.into(), 2.into())
    );

    // What the user must fix, each in one line.
    let out = cache(login.path(), None, &["ls", &url]);
    assert_fails_with(
        &out,
        &["not signed by a trusted CA", "--ca-file", "SSL_CERT_FILE"],
    );
    let nobody = tempfile::tempdir().unwrap();
    let out = cache(nobody.path(), None, &["ls", &url, "--ca-file", ca_file]);
    assert_fails_with(
        &out,
        &["needs credentials", &format!("docker login {addr}")],
    );
    let wrong = docker_config(&addr, USER, "not-the-password");
    let out = cache(wrong.path(), None, &["ls", &url, "--ca-file", ca_file]);
    assert_fails_with(
        &out,
        &["refused the credentials", &format!("docker login {addr}")],
    );

    // Deletes disabled: the prune stops at the first delete, nothing gone.
    let prune = ["prune", &url, "--keep", "1", "--yes", "--ca-file", ca_file];
    let out = cache(login.path(), None, &prune);
    assert_fails_with(
        &out,
        &[
            "does not allow deletes",
            "HTTP 405",
            "storage: delete: enabled: true",
        ],
    );
    let out = cache(
        login.path(),
        None,
        &["ls", &url, "--ca-file", ca_file, "--format", "json"],
    );
    assert_eq!(kinds(&json(&out)).len(), 3, "nothing was deleted");
    drop(locked);

    let conf = config(&addr, &storage, true, Some(&ca), &auth);
    let open = OwnRegistry::start(dir.path(), "delete", &addr, &conf);
    let done = json(&cache(
        login.path(),
        None,
        &[&prune[..], &["--format", "json"]].concat(),
    ));
    let c1 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tag"] == "c1")
        .map(|r| r["digest"].clone())
        .unwrap();
    assert_eq!(done["after"]["outcome"]["deleted"], serde_json::json!([c1]));
    assert_eq!(done["after"]["outcome"]["failed"], serde_json::json!([]));
    let deletes: Vec<_> = open
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].status, 202, "{deletes:?}");
    drop(open);

    // Read back over plain HTTP on the same storage, without rbuild.
    let check_addr = format!("127.0.0.1:{}", free_port());
    let conf = config(&check_addr, &storage, true, None, "");
    let _check = OwnRegistry::start(dir.path(), "check", &check_addr, &conf);
    let listed = request(&check_addr, "GET", &format!("/v2/{repo}/tags/list")).json();
    let mut tags: Vec<&str> = listed["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    tags.sort();
    assert_eq!(tags, ["c2", "img"]);
}
