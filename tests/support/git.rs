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

/// A new commit on `main` of the repository [`serve_repo`] made under
/// `base`, with `files` written: the upstream moves on. Returns its id.
pub fn commit_and_push(base: &Path, files: &[(&str, &str)]) -> String {
    let work = base.join("work");
    for (path, contents) in files {
        std::fs::write(work.join(path), contents).unwrap();
    }
    git(&work, &["commit", "-q", "-am", "next"]);
    let bare = base.join("repo.git");
    git(&work, &["push", "-q", &bare.display().to_string(), "main"]);
    head(&work)
}

/// The commit `main` of the work tree under `dir` is at.
pub fn head(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An image with git in it, for `RUN git clone` steps: the stack's busybox
/// has none and nothing can be pulled here, so the host's git binary (its
/// exec-path link included) and the shared libraries `ldd` lists for it
/// are copied onto the base image and pushed to the stack's registry.
/// Built once per test binary.
pub fn git_image(stack: &super::Stack) -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| build_git_image(stack)).clone()
}

fn build_git_image(stack: &super::Stack) -> String {
    let output = |cmd: &mut Command| {
        let out = cmd.output().expect("runs");
        assert!(out.status.success(), "{cmd:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let git_path = output(Command::new("sh").args(["-c", "command -v git"]));
    let exec_path = output(Command::new("git").arg("--exec-path"));
    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path().join("rootfs");
    let place = |host: &str| {
        let to = root.join(host.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().expect("a file has a parent")).unwrap();
        // Follows symlinks: the image gets the library under each name.
        std::fs::copy(host, &to).unwrap_or_else(|e| panic!("copy {host}: {e}"));
    };
    place(&git_path);
    let libs = output(Command::new("ldd").arg(&git_path));
    for lib in libs.split_whitespace().filter(|w| w.starts_with('/')) {
        place(lib);
    }
    // Git runs its helpers (index-pack) as `git` from its exec path.
    let helper = root.join(exec_path.trim_start_matches('/')).join("git");
    std::fs::create_dir_all(helper.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&git_path, &helper).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "ARG BASE\nFROM ${BASE}\nCOPY rootfs/ /\n",
    )
    .unwrap();
    let image = format!(
        "{}/rbuild-test/git-base:{}",
        stack.registry,
        super::unique("git")
    );
    let out = super::rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "plain",
        ])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-t", &image, "--push"])
        .arg(ctx.path())
        .output()
        .expect("rbuild runs");
    super::assert_success(&out);
    image
}
