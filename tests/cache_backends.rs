//! Cache backends beyond the registry, against the engine's BuildKit:
//! `type=gha` takes the Actions runtime token and cache URL from the
//! environment and the daemon presents the token to the cache service (a
//! stand-in HTTP server on loopback, which the engine reaches because it
//! runs on this host); `type=s3` and `type=azblob`, which the engine lacks,
//! fail in one line naming the daemons that have them; and no credential
//! shows in progress, `--debug` logs, the metadata file or the report.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use support::{assert_success, context, rbuild, stack, stderr, stdout, unique};

/// Every variable the cache backends read, so the runner's own never leak
/// into a test.
const CACHE_VARS: &[&str] = &[
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_CACHE_URL",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_CACHE_SERVICE_V2",
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
];

/// A build of a fresh step (so there is a layer to export) with only the
/// cache variables `vars` set; the AWS shared files point nowhere.
fn cache_build(vars: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    cache_build_with(vars, "plain")
}

fn cache_build_with(vars: &[(&str, &str)], progress: &str) -> (Command, tempfile::TempDir) {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo {} > /marker\n",
            stack.base,
            unique("cache-backends")
        ),
    )]);
    let mut cmd = rbuild();
    cmd.args(["build", "--addr", &stack.buildkit_host, "--no-cache"])
        .args(["--progress", progress]);
    for v in CACHE_VARS {
        cmd.env_remove(v);
    }
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
        .env("AWS_CONFIG_FILE", "/nonexistent/config");
    cmd.envs(vars.iter().copied());
    (cmd, ctx)
}

/// A GitHub Actions cache stand-in: answers every request with an error
/// and records each request's head (request line and headers).
struct CacheService {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CacheService {
    fn start() -> CacheService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (heads.clone(), stop.clone());
        // Bounded: stops when dropped, and after two minutes in any case.
        let thread = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !s.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if let Some(head) = answer(conn) {
                            h.lock().unwrap().push(head);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        CacheService {
            port,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for CacheService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head and body) and refuses it, as the cache service
/// refuses a request it cannot serve.
fn answer(conn: TcpStream) -> Option<String> {
    conn.set_nonblocking(false).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<u64>().ok())?
        })
        .unwrap_or(0);
    std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink()).ok()?;
    let body = r#"{"message":"rbuild stand-in: no cache here"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    reader.get_mut().write_all(response.as_bytes()).ok()?;
    Some(head)
}

/// An unsigned but well-formed runtime token: the daemon's cache client
/// parses it as a JWT and reads its access scopes and validity window.
fn runtime_token() -> String {
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let scopes = serde_json::json!([{"Scope": "refs/heads/main", "Permission": 3}]);
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let claims = serde_json::json!({
        "ac": scopes.to_string(),
        "nbf": now - 60,
        "iat": now - 60,
        "exp": now + 3600,
    });
    format!(
        "{}.{}.cmJ1aWxkLXRlc3Qtc2lnbmF0dXJlLW1hcmtlcg",
        b64(&header),
        b64(&claims)
    )
}

fn bearer_reached(service: &CacheService, token: &str) -> bool {
    let want = format!("Bearer {token}");
    service.heads().iter().any(|head| {
        head.lines().any(|l| {
            l.split_once(':').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("authorization") && value.trim() == want
            })
        })
    })
}

#[test]
fn gha_presents_the_runtime_token_to_the_cache_service() {
    let service = CacheService::start();
    let token = runtime_token();
    let url = service.url();
    let spec = "type=gha,scope=rbuild-test,ignore-error=true,timeout=30s";

    // API v1: ACTIONS_CACHE_URL.
    let (mut cmd, ctx) = cache_build(&[
        ("ACTIONS_RUNTIME_TOKEN", &token),
        ("ACTIONS_CACHE_URL", &url),
    ]);
    let out = cmd
        .args(["--cache-to", spec])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        bearer_reached(&service, &token),
        "the token did not reach the stand-in; requests: {:#?}\n--- stderr\n{}",
        service.heads(),
        stderr(&out)
    );
    assert!(
        service
            .heads()
            .iter()
            .any(|h| h.contains("/_apis/artifactcache/")),
        "{:#?}",
        service.heads()
    );

    // Cache service v2: only ACTIONS_RESULTS_URL, which also stands in for
    // the v1 URL (the engine's BuildKit speaks v1 only).
    let before = service.heads().len();
    let (mut cmd, ctx) = cache_build(&[
        ("ACTIONS_RUNTIME_TOKEN", &token),
        ("ACTIONS_RESULTS_URL", &url),
        ("ACTIONS_CACHE_SERVICE_V2", "true"),
    ]);
    let out = cmd
        .args(["--cache-to", spec])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        service.heads().len() > before,
        "no request with the results URL"
    );
    assert!(bearer_reached(&service, &token));
}

#[test]
fn gha_without_a_token_is_left_out_with_a_warning() {
    let (mut cmd, ctx) = cache_build(&[]);
    let out = cmd
        .args(["--cache-to", "type=gha,scope=nowhere"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains("WARNING: cache export type=gha (scope nowhere) skipped")
            && err.contains("ACTIONS_RUNTIME_TOKEN"),
        "{err}"
    );
    assert!(
        !err.contains("url not set"),
        "the entry reached the daemon: {err}"
    );
}

#[test]
fn s3_and_azblob_on_the_engine_fail_in_one_line() {
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIDRBUILDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "rbuild-test-secret"),
    ];
    for spec in [
        "type=s3,bucket=rbuild,region=us-east-1,mode=max",
        "type=azblob,account_url=https://rbuild.blob.core.windows.net,name=app",
    ] {
        let backend = if spec.contains("s3") { "s3" } else { "azblob" };
        let (mut cmd, ctx) = cache_build(&keys);
        let out = cmd
            .args(["--cache-to", spec])
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].contains(&format!("this daemon has no {backend} cache backend"))
                && errors[0].contains("Docker Engine's built-in BuildKit lacks s3 and azblob")
                && errors[0].contains("standalone buildkitd"),
            "{err}"
        );
        assert!(!err.contains("rbuild-test-secret") && !err.contains("AKIDRBUILDTEST"));
    }
    // An import the daemon cannot make is a warning: the build goes on.
    let (mut cmd, ctx) = cache_build(&keys);
    let out = cmd
        .args(["--cache-from", "type=s3,bucket=rbuild,region=us-east-1"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stderr(&out)
            .contains("WARNING: cache import type=s3 skipped: this daemon has no s3 cache backend"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn credentials_appear_in_no_output_log_or_file() {
    let service = CacheService::start();
    let token = runtime_token();
    let url = service.url();
    let secrets = [
        token.as_str(),
        "cmJ1aWxkLXRlc3Qtc2lnbmF0dXJlLW1hcmtlcg",
        "AKIDRBUILDLEAKCHECK",
        "rbuild-leak-check-secret-key",
        "rbuild-leak-check-session",
        "inline-written-secret-value",
    ];
    let files = tempfile::tempdir().unwrap();
    let metadata = files.path().join("metadata.json");
    let report = files.path().join("report.json");
    for (progress, log) in [("plain", None), ("rawjson", Some("trace"))] {
        let (mut cmd, ctx) = cache_build_with(
            &[
                ("ACTIONS_RUNTIME_TOKEN", &token),
                ("ACTIONS_CACHE_URL", &url),
                ("AWS_ACCESS_KEY_ID", secrets[2]),
                ("AWS_SECRET_ACCESS_KEY", secrets[3]),
                ("AWS_SESSION_TOKEN", secrets[4]),
            ],
            progress,
        );
        if let Some(filter) = log {
            cmd.env("RBUILD_LOG", filter);
        }
        let out = cmd
            .arg("--debug")
            .args(["--cache-to", "type=gha,scope=leak,ignore-error=true,timeout=30s"])
            .args(["--cache-from", "type=s3,bucket=rbuild,region=us-east-1"])
            .args([
                "--cache-from",
                "type=s3,bucket=other,region=us-east-1,access_key_id=AKIDOWN,secret_access_key=inline-written-secret-value",
            ])
            .arg("--metadata-file")
            .arg(&metadata)
            .arg("--report")
            .arg(&report)
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        assert!(
            bearer_reached(&service, &token),
            "the gha entry was not sent"
        );
        let shown = [
            ("stdout", stdout(&out)),
            ("stderr", stderr(&out)),
            ("metadata file", std::fs::read_to_string(&metadata).unwrap()),
            ("report", std::fs::read_to_string(&report).unwrap()),
        ];
        for (what, text) in &shown {
            for secret in secrets {
                assert!(
                    !text.contains(secret),
                    "{what} ({progress}) shows {secret:?}:\n{text}"
                );
            }
        }
        // The report still says which caches were used.
        let json: serde_json::Value = serde_json::from_str(&shown[3].1).unwrap();
        assert_eq!(json["cache_to"][0]["type"], "gha");
        assert_eq!(
            json["cache_from"][1]["attrs"]["secret_access_key"],
            "<redacted>"
        );
    }
}
