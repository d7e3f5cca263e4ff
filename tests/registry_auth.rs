//! Pushes to a registry that demands a password: rbuild serves the Docker
//! config's credentials to the daemon over the session's Auth service, the
//! push fails clearly without them, and the password shows up in no output.
//! With two logins in the config, only the registry the build names gets
//! its own; the other one's is withheld until `--auth-host` allows it.
//!
//! The test owns a second registry (the stack's `docker-registry` binary with
//! htpasswd auth) on a free loopback port; BuildKit talks plain HTTP to
//! loopback registries.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use support::{assert_success, build_cmd, context, stack, stderr, stdout, unique};

const USER: &str = "rbuild-user";

/// A `docker-registry` with htpasswd auth, killed (by its pid) on drop.
struct AuthRegistry {
    child: Child,
    addr: String,
    password: String,
    dir: tempfile::TempDir,
}

impl AuthRegistry {
    fn start() -> AuthRegistry {
        // This checkout's stack cache, else the running stack's registry binary.
        let binary = support::own_registry::registry_binary();
        let dir = tempfile::tempdir().expect("registry dir");
        // Unique per run, so a leak check cannot match by accident.
        let password = unique("pw-Zq7");
        let hash = bcrypt::hash_with_result(&password, 5)
            .expect("bcrypt")
            .format_for_version(bcrypt::Version::TwoY);
        std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n\
             http:\n  addr: {addr}\n  secret: {secret}\n\
             auth:\n  htpasswd:\n    realm: rbuild-test\n    path: {htpasswd}\n",
            storage = dir.path().join("storage").display(),
            secret = unique("http-secret"),
            htpasswd = dir.path().join("htpasswd").display(),
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(&binary)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let registry = AuthRegistry {
            child,
            addr,
            password,
            dir,
        };
        registry.wait_ready();
        registry
    }

    /// Ready when `/v2/` asks for credentials.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(status) = self.get("/v2/", None) {
                assert_eq!(status, 401, "registry without auth on {}", self.addr);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "registry on {} did not start:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The status of a GET, with basic auth when `auth` is Some.
    fn get(&self, path: &str, auth: Option<&str>) -> std::io::Result<u16> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let header = auth
            .map(|a| format!("Authorization: Basic {a}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/vnd.oci.image.index.v1+json, \
             application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json\r\n{header}\
             Connection: close\r\n\r\n",
            self.addr
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let head = String::from_utf8_lossy(&raw);
        head.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("no HTTP status line"))
    }

    fn basic_auth(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{}", self.password))
    }

    /// A DOCKER_CONFIG dir whose config.json holds this registry's login.
    fn docker_config(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            self.addr,
            self.basic_auth()
        );
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// A context whose image is new on every run, so each push uploads.
fn fresh_context() -> tempfile::TempDir {
    context(&[
        (
            "Dockerfile",
            "ARG BASE\nFROM ${BASE}\nCOPY stamp.txt /stamp.txt\n",
        ),
        ("stamp.txt", &unique("stamp")),
    ])
}

fn push(config: &Path, image: &str, ctx: &Path, extra: &[&str]) -> Output {
    let stack = stack();
    build_cmd(&stack)
        .env("DOCKER_CONFIG", config)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-t", image, "--push"])
        .args(extra)
        .arg(ctx)
        .output()
        .expect("rbuild runs")
}

#[track_caller]
fn assert_no_password(out: &Output, registry: &AuthRegistry) {
    for (name, text) in [("stdout", stdout(out)), ("stderr", stderr(out))] {
        assert!(
            !text.contains(&registry.password) && !text.contains(&registry.basic_auth()),
            "the password leaked into {name}"
        );
    }
}

#[test]
fn push_with_docker_config_credentials() {
    let registry = AuthRegistry::start();
    let config = registry.docker_config();
    let ctx = fresh_context();
    let repo = unique("auth");
    let image = format!("{}/{repo}:1", registry.addr);
    let cache = format!("{}/{repo}-cache:latest", registry.addr);
    let cache_to = format!("type=registry,ref={cache},mode=max");
    let out = push(
        config.path(),
        &image,
        ctx.path(),
        &["--debug", "--cache-to", &cache_to],
    );
    assert_success(&out);
    assert_no_password(&out, &registry);

    let auth = registry.basic_auth();
    let manifest = format!("/v2/{repo}/manifests/1");
    assert_eq!(registry.get(&manifest, Some(&auth)).unwrap(), 200);
    let cache_manifest = format!("/v2/{repo}-cache/manifests/latest");
    assert_eq!(registry.get(&cache_manifest, Some(&auth)).unwrap(), 200);
    // The registry really demands the login.
    assert_eq!(registry.get(&manifest, None).unwrap(), 401);
}

#[test]
fn push_without_credentials_fails_clearly() {
    let registry = AuthRegistry::start();
    let empty = tempfile::tempdir().unwrap();
    let ctx = fresh_context();
    let image = format!("{}/{}:1", registry.addr, unique("anon"));
    let out = push(empty.path(), &image, ctx.path(), &["--debug"]);
    assert!(
        !out.status.success(),
        "push without credentials succeeded:\n{}",
        stderr(&out)
    );
    // The daemon, asked anonymously by our Auth service, says e.g. "failed
    // to push HOST/x:1: unexpected status from HEAD request to http://...:
    // 401 Unauthorized".
    let err = stderr(&out);
    assert!(
        err.contains("failed to push") && err.contains("401 Unauthorized"),
        "no auth failure in:\n{err}"
    );
    assert_no_password(&out, &registry);
}

/// A DOCKER_CONFIG dir with the logins of both registries.
fn two_logins(a: &AuthRegistry, b: &AuthRegistry) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}, "{}": {{"auth": "{}"}}}}}}"#,
        a.addr,
        a.basic_auth(),
        b.addr,
        b.basic_auth()
    );
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}

/// Requests the registry let in with a login.
fn logged_in(registry: &AuthRegistry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("msg=\"authorized request\""))
        .count()
}

/// Lines of the registry's log that record a request refused for want of a login.
fn refused(registry: &AuthRegistry) -> usize {
    registry
        .log()
        .lines()
        .filter(|l| l.contains("error authorizing context"))
        .count()
}

/// Scoped credentials: with two logins in the Docker config, the daemon gets
/// only the one for the registry the build names; asked for the other (here
/// by a Dockerfile inside a tar context, which rbuild does not read), it gets
/// nothing and the failure says why, until `--auth-host` allows the host.
#[test]
fn only_the_registries_a_build_names_get_credentials() {
    let (used, other) = (AuthRegistry::start(), AuthRegistry::start());
    let config = two_logins(&used, &other);
    let stack = stack();

    // Pushing to `used` sends its login; `other` hears nothing at all.
    let image = format!("{}/{}:1", used.addr, unique("scoped"));
    let out = push(config.path(), &image, fresh_context().path(), &["--debug"]);
    assert_success(&out);
    let log = stderr(&out);
    // The debug line, with the log's colour codes between its fields.
    let served = |host: &str| {
        log.lines().any(|l| {
            l.contains("registry credentials")
                && l.contains(&format!("\"{host}\""))
                && l.ends_with("true")
        })
    };
    assert!(
        served(&used.addr),
        "the used registry's login was not served:\n{log}"
    );
    assert!(
        !log.contains(&other.addr),
        "the other registry came up:\n{log}"
    );
    assert_eq!(logged_in(&other), 0, "the other registry saw its login");
    assert_no_password(&out, &used);
    assert_no_password(&out, &other);

    // Base images on `other`, pushed by builds that name it: one for the build
    // that is refused, a fresh one for the build that is allowed (an engine
    // may reuse a resolution it made once).
    let bases = [unique("denied"), unique("allowed")].map(|n| format!("{}/{n}:1", other.addr));
    for base in &bases {
        assert_success(&push(config.path(), base, fresh_context().path(), &[]));
    }
    let work = tempfile::tempdir().unwrap();
    let tars = bases.clone().map(|base| {
        let src = context(&[("Dockerfile", &format!("FROM {base}\nRUN true\n"))]);
        let tar = work.path().join(format!("{}.tar", unique("ctx")));
        let made = Command::new("tar")
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .current_dir(src.path())
            .output()
            .expect("tar runs");
        assert!(made.status.success(), "tar: {}", stderr(&made));
        tar
    });
    // A Dockerfile rbuild cannot see: the daemon asks for `other`'s login.
    // `--pull`: the engine holds the pushed images and would not ask otherwise.
    let from_tar = |tar: &Path, extra: &[&str]| {
        build_cmd(&stack)
            .env("DOCKER_CONFIG", config.path())
            .args(["--pull", "--debug"])
            .args(extra)
            .arg("-")
            .stdin(std::fs::File::open(tar).unwrap())
            .output()
            .expect("rbuild runs")
    };
    let (before, refusals) = (logged_in(&other), refused(&other));
    let out = from_tar(&tars[0], &[]);
    assert!(
        !out.status.success(),
        "pulled without a login:\n{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "no registry credentials were sent for {}",
            other.addr
        )),
        "the failure does not name the withheld host:\n{err}"
    );
    assert_eq!(
        logged_in(&other),
        before,
        "the other login reached its registry"
    );
    assert!(
        refused(&other) > refusals,
        "the daemon never asked the registry"
    );
    assert_no_password(&out, &other);

    // Allowed explicitly, the build gets the login and pulls with it.
    let out = from_tar(&tars[1], &["--auth-host", &other.addr]);
    assert_success(&out);
    assert!(logged_in(&other) > before, "no login reached the registry");
    assert_no_password(&out, &other);
}
