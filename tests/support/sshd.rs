//! A real sshd for the ssh:// tests: Debian's openssh-server from the stack
//! (`RBUILD_TEST_SSHD`, which `scripts/stack env` prints), on a free
//! loopback port, with a host key and client keys made here by ssh-keygen.
//!
//! Tests share one sshd while they overlap: [`Sshd::shared`] hands out a
//! reference, and the last test to drop its reference stops sshd by pid.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A running sshd and the client side that trusts it.
pub struct Sshd {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

static SHARED: Mutex<Weak<Sshd>> = Mutex::new(Weak::new());

/// Which client configuration to log in with.
#[derive(Clone, Copy)]
pub enum Client {
    /// The known host key and the authorized client key.
    Trusted,
    /// An empty known_hosts: the host key is unknown.
    UnknownHost,
    /// A key the server does not authorize.
    Stranger,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "rbuild-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen runs (openssh-client)");
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("its address").port()
}

impl Sshd {
    /// The sshd the running tests share, started on first use.
    pub fn shared() -> Arc<Sshd> {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sshd) = slot.upgrade() {
            return sshd;
        }
        let sshd = Arc::new(Sshd::start());
        *slot = Arc::downgrade(&sshd);
        sshd
    }

    fn start() -> Sshd {
        let program = match std::env::var("RBUILD_TEST_SSHD") {
            Ok(p) if !p.is_empty() => p,
            _ => panic!(
                "RBUILD_TEST_SSHD is not set: the ssh:// tests need the stack's sshd. \
                 Run them with scripts/test, or first: eval \"$(scripts/stack up)\""
            ),
        };
        let dir = tempfile::tempdir().expect("a temp dir");
        let d = dir.path();
        for key in ["host", "client", "stranger"] {
            keygen(&d.join(key));
        }
        std::fs::write(d.join("authorized_keys"), read(d.join("client.pub"))).unwrap();
        std::fs::write(d.join("empty_known_hosts"), "").unwrap();
        for (name, known_hosts, key) in [
            ("trusted", "known_hosts", "client"),
            ("unknown_host", "empty_known_hosts", "client"),
            ("stranger", "known_hosts", "stranger"),
        ] {
            // -F replaces the user's and the system's ssh config: nothing of
            // the machine's (agent, keys, known hosts) takes part.
            let config = format!(
                "Host *\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  \
                 IdentityFile {id}\n  IdentitiesOnly yes\n  IdentityAgent none\n  \
                 UpdateHostKeys no\n  ConnectTimeout 5\n",
                kh = d.join(known_hosts).display(),
                id = d.join(key).display(),
            );
            std::fs::write(d.join(format!("ssh_config_{name}")), config).unwrap();
        }
        // A port taken between the probe and sshd's bind: try another.
        for _ in 0..3 {
            let port = free_port();
            let host_key = read(d.join("host.pub"));
            let mut fields = host_key.split_whitespace();
            let (kind, key) = (fields.next().unwrap(), fields.next().unwrap());
            std::fs::write(
                d.join("known_hosts"),
                format!("[127.0.0.1]:{port} {kind} {key}\n"),
            )
            .unwrap();
            // StrictModes off: the temp dir's parents (/tmp) are world-writable.
            let config = format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\n\
                 AuthorizedKeysFile {auth}\nUsePAM no\nStrictModes no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nPidFile none\nPrintMotd no\n\
                 UseDNS no\nMaxStartups 100\nLogLevel VERBOSE\n",
                host = d.join("host").display(),
                auth = d.join("authorized_keys").display(),
            );
            std::fs::write(d.join("sshd_config"), config).unwrap();
            let log = std::fs::File::create(d.join("sshd.log")).unwrap();
            let mut child = Command::new(&program)
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = read(d.join("sshd.log"));
                    if log.contains("Address already in use") {
                        break;
                    }
                    panic!("sshd exited ({status}) at start:\n{log}");
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd { port, dir, child };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "sshd did not listen within 10 s:\n{}",
                        read(d.join("sshd.log"))
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("sshd found no free port in three tries");
    }

    /// `ssh://root@127.0.0.1:PORT`, then `tail` (a socket path, or "").
    pub fn address(&self, tail: &str) -> String {
        format!("ssh://root@127.0.0.1:{}{tail}", self.port)
    }

    /// An `RBUILD_SSH_COMMAND` that logs in as `client`.
    pub fn ssh_command(&self, client: Client) -> String {
        let name = match client {
            Client::Trusted => "trusted",
            Client::UnknownHost => "unknown_host",
            Client::Stranger => "stranger",
        };
        let config = self.dir.path().join(format!("ssh_config_{name}"));
        format!("ssh -F {}", config.display())
    }

    /// sshd's log so far, for a failing assertion.
    pub fn log(&self) -> String {
        read(self.dir.path().join("sshd.log"))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Child::kill signals this pid alone: the sshd started above.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
