//! A test's own `docker-registry` (the stack's binary, distribution 2.8)
//! with a config the test chooses: plain HTTP to fill it with BuildKit,
//! then TLS with htpasswd or token auth on the same storage. Also a test CA
//! whose certificates that registry serves and trusts.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::{Stack, context, rbuild, stderr, unique};

/// The stack's `docker-registry`: in this checkout's `.stack-cache`, else
/// the binary of the registry the stack runs (a worktree has no cache).
pub fn registry_binary() -> PathBuf {
    let local =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".stack-cache/root/usr/bin/docker-registry");
    if local.is_file() {
        return local;
    }
    let run = std::env::var("RBUILD_STACK_RUN").unwrap_or_else(|_| "/run/rbuild".into());
    let running = std::fs::read_to_string(Path::new(&run).join("registry.pid"))
        .ok()
        .and_then(|pid| std::fs::read_link(format!("/proc/{}/exe", pid.trim())).ok());
    match running {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "no docker-registry binary: neither {} nor a running stack registry \
             (run `scripts/stack up` first)",
            local.display()
        ),
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}

/// A CA, and a server certificate it signed for 127.0.0.1, as PEM files.
pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "rbuild registry test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let (cert, key) = leaf(&issuer, "127.0.0.1", ExtendedKeyUsagePurpose::ServerAuth);
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        TestCa {
            ca: write("ca.pem", issuer.pem()),
            cert: write("cert.pem", cert.pem()),
            key: write("key.pem", key.serialize_pem()),
            issuer,
            dir,
        }
    }
}

/// A certificate for `name` signed by `issuer`, with its key.
pub fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert, key)
}

/// The config of a registry on `addr` storing into `storage`; `extra` is
/// appended (an `auth:` section), `tls` adds the CA's server certificate.
pub fn config(
    addr: &str,
    storage: &Path,
    delete: bool,
    tls: Option<&TestCa>,
    extra: &str,
) -> String {
    let tls = tls
        .map(|ca| {
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.cert.display(),
                ca.key.display()
            )
        })
        .unwrap_or_default();
    format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: {delete}\n\
         http:\n  addr: {addr}\n  secret: {}\n{tls}{extra}",
        storage.display(),
        unique("secret"),
    )
}

/// One line of the registry's request log.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub uri: String,
    pub status: u16,
}

/// A running registry, killed (by its pid) on drop.
pub struct OwnRegistry {
    child: Child,
    pub addr: String,
    log: PathBuf,
}

impl OwnRegistry {
    /// Writes `config` as `dir/NAME.yml` and serves it on `addr`; the log
    /// goes to `dir/NAME.log`.
    pub fn start(dir: &Path, name: &str, addr: &str, config: &str) -> OwnRegistry {
        let path = dir.join(format!("{name}.yml"));
        std::fs::write(&path, config).unwrap();
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(registry_binary())
            .arg("serve")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("start docker-registry");
        let mut registry = OwnRegistry {
            child,
            addr: addr.to_string(),
            log,
        };
        registry.wait_listening();
        registry
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("registry exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "registry on {} did not listen:\n{}",
                self.addr,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Method, URI and status of every request the registry answered; a
    /// refused one is logged as an authorization error, not a response.
    pub fn requests(&self) -> Vec<Request> {
        self.log().lines().filter_map(request_line).collect()
    }

    /// How many client connections (remote ports) the requests came on.
    pub fn connections(&self) -> usize {
        let ports: std::collections::BTreeSet<String> = self
            .log()
            .lines()
            .filter(|l| request_line(l).is_some())
            .filter_map(|l| field(l, "http.request.remoteaddr="))
            .collect();
        ports.len()
    }
}

fn request_line(line: &str) -> Option<Request> {
    let status = if line.contains("msg=\"response completed\"") {
        field(line, "http.response.status=")?.parse().ok()?
    } else if line.contains("msg=\"error authorizing context") {
        401
    } else {
        return None;
    };
    Some(Request {
        method: field(line, "http.request.method=")?,
        uri: field(line, "http.request.uri=")?,
        status,
    })
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A logfmt value, quoted or not.
fn field(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let value = match rest.strip_prefix('"') {
        Some(quoted) => &quoted[..quoted.find('"')?],
        None => rest.split_whitespace().next()?,
    };
    Some(value.to_string())
}

/// Exports a registry cache per tag of `caches` into `repo` (a plain-HTTP
/// registry BuildKit can reach), oldest first, and pushes `image` if given.
/// `FROM scratch` with one COPY each: nothing runs, so it is quick.
pub fn fill(stack: &Stack, repo: &str, caches: &[&str], image: Option<&str>) {
    let build = |tag: &str, extra: &[&str]| {
        let ctx = context(&[
            ("Dockerfile", "FROM scratch\nCOPY own.txt /own.txt\n"),
            ("own.txt", &unique(tag)),
        ]);
        let out = rbuild()
            .args([
                "build",
                "--addr",
                &stack.buildkit_host,
                "--progress",
                "quiet",
            ])
            .args(extra)
            .arg(ctx.path())
            .output()
            .expect("rbuild runs");
        assert!(out.status.success(), "build {tag}: {}", stderr(&out));
    };
    for tag in caches {
        let to = format!("type=registry,ref={repo}:{tag},mode=max");
        build(tag, &["--cache-to", &to]);
    }
    if let Some(tag) = image {
        build(tag, &["-t", &format!("{repo}:{tag}"), "--push"]);
    }
}

/// A DOCKER_CONFIG dir whose config.json logs `user` in at `host`.
pub fn docker_config(host: &str, user: &str, password: &str) -> tempfile::TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = format!(r#"{{"auths": {{"{host}": {{"auth": "{auth}"}}}}}}"#);
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}
