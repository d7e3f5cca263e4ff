//! A git repository served by `git daemon` on loopback, for contexts the
//! daemon fetches with git (the engine runs the host's git).

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `git daemon` for one test, stopped by its own pid when dropped.
pub struct GitDaemon {
    child: Child,
    pub port: u16,
}

impl GitDaemon {
    /// `git://127.0.0.1:PORT/repo.git#REF`.
    pub fn url(&self, reference: &str) -> String {
        format!("git://127.0.0.1:{}/repo.git#{reference}", self.port)
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.email=test@rbuild",
            "-c",
            "user.name=rbuild test",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository `repo.git` under `base` holding `files` (relative
/// path, contents) on branch `main`, served on loopback.
pub fn serve_repo(base: &Path, files: &[(&str, &str)]) -> GitDaemon {
    let work = base.join("work");
    for (path, contents) in files {
        let full = work.join(path);
        std::fs::create_dir_all(full.parent().expect("a file has a parent")).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    git(&work, &["init", "-q", "-b", "main", "."]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "init"]);
    git(base, &["clone", "-q", "--bare", "work", "repo.git"]);
    // A free port: bind, read it, release it for the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // git-daemon itself, not `git daemon`: a `git` wrapper may run it as a
    // child, which killing the wrapper would leave behind holding the
    // test's output pipes.
    let exec_path = Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git runs");
    let exec_path = String::from_utf8_lossy(&exec_path.stdout)
        .trim()
        .to_string();
    let child = Command::new(Path::new(&exec_path).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon starts");
    // Owned at once, so a failure below still stops it.
    let daemon = GitDaemon { child, port };
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return daemon;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("git daemon did not listen on {port}");
}
