//! A git URL as the build context: the daemon fetches it (the engine runs
//! the host's git), and `-f` names a file inside it. The upstream is a
//! `git daemon` on loopback serving a repository the test makes.

mod support;

use std::path::Path;
use std::process::{Child, Command};

use support::{assert_success, build_cmd, stack};

/// `git daemon` for one test, stopped by its own pid when dropped.
struct GitDaemon {
    child: Child,
    port: u16,
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn git(dir: &Path, args: &[&str]) {
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

/// A bare repository `repo.git` under a temp base path, served on loopback.
fn serve_repo(base: &Path) -> GitDaemon {
    let work = base.join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    std::fs::write(
        work.join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n",
    )
    .unwrap();
    std::fs::write(
        work.join("sub/Other.Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /other.txt\n",
    )
    .unwrap();
    std::fs::write(work.join("hello.txt"), "from git\n").unwrap();
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
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
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

#[test]
fn a_git_url_context_and_a_dockerfile_inside_it() {
    let stack = stack();
    let base = tempfile::tempdir().unwrap();
    let daemon = serve_repo(base.path());
    let url = format!("git://127.0.0.1:{}/repo.git#main", daemon.port);
    let out_dir = tempfile::tempdir().unwrap();
    let dest = |name: &str| out_dir.path().join(name);

    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-o", &format!("type=local,dest={}", dest("a").display())])
        .arg(&url)
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        std::fs::read_to_string(dest("a").join("hello.txt")).unwrap(),
        "from git\n"
    );

    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-f", "sub/Other.Dockerfile"])
        .args(["-o", &format!("type=local,dest={}", dest("b").display())])
        .arg(&url)
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        std::fs::read_to_string(dest("b").join("other.txt")).unwrap(),
        "from git\n"
    );
}
