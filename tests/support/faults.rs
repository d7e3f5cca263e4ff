//! What every fault test checks the same way: rbuild's stderr read line by
//! line while it runs (to strike at the right moment), the one `error:`
//! line it ends with, and destinations left as they were.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A running rbuild whose stderr is collected line by line.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Spawns `cmd` with stderr piped (stdout is left to the caller).
    pub fn spawn(cmd: &mut Command) -> Running {
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("rbuild starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads stderr until a line matches, failing the test after `within`
    /// or when rbuild exits first.
    pub fn wait_for(&mut self, within: Duration, what: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if what(&line) {
                        return line;
                    }
                }
                Err(_) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    panic!("never seen within {within:?}:\n{}", self.seen.join("\n"));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("rbuild ended first:\n{}", self.seen.join("\n"));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Sends `signal` (`INT`, `TERM`) to rbuild.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits for the exit (killing rbuild after `within`: a hang fails the
    /// test), then returns the status, how long it took, and all of stderr.
    pub fn finish(mut self, within: Duration) -> (ExitStatus, Duration, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for rbuild") {
                break status;
            }
            if started.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.seen.extend(self.lines.try_iter());
                panic!(
                    "rbuild still runs {within:?} after the fault:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let took = started.elapsed();
        // The reader thread ends with the pipe; take everything it read.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
        (status, took, self.seen.join("\n"))
    }
}

/// Processes on this machine whose command line contains `needle`; RUN
/// steps of the local engine are ordinary processes here.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && !cmdline.contains("rbuild") {
            found.push(pid);
        }
    }
    found
}

/// Waits until a process with `needle` in its command line runs (or, with
/// `running` false, until none does).
#[track_caller]
pub fn wait_for_process(needle: &str, running: bool, within: Duration) {
    let deadline = Instant::now() + within;
    while processes_with(needle).is_empty() == running {
        assert!(
            Instant::now() < deadline,
            "{needle:?} running={running} not seen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `error:` lines of rbuild's stderr; a fault must give exactly one.
#[track_caller]
pub fn one_error_line(stderr: &str) -> String {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    errors[0].to_string()
}

/// Asserts that `dir` holds exactly `files` (name, contents; a directory's
/// contents are not compared): the previous outputs untouched and no temp
/// file left beside them.
#[track_caller]
pub fn assert_dir_holds(dir: &Path, files: &[(&str, &str)]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read the destination directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "in {}", dir.display());
    for (name, contents) in files {
        if dir.join(name).is_dir() {
            continue;
        }
        let got = std::fs::read_to_string(dir.join(name)).expect("read a previous output");
        assert_eq!(&got, contents, "{name} changed");
    }
}

/// `rbuild build` of `dockerfile` (in a fresh context kept for the command's
/// life) on the stack's base, its filesystem to `out/app.tar` and its
/// metadata to `out/meta.json`; stdout discarded. Callers add what they test.
pub fn tar_build(stack: &super::Stack, dockerfile: &str, out: &Path) -> Command {
    let ctx = super::context(&[("Dockerfile", dockerfile)]);
    let mut cmd = super::build_cmd(stack);
    cmd.args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg("-o")
        .arg(format!("type=tar,dest={}", out.join("app.tar").display()))
        .arg("--metadata-file")
        .arg(out.join("meta.json"))
        .arg(ctx.keep())
        .stdout(Stdio::null());
    cmd
}
