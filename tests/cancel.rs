//! Ctrl-C cancels the build on the daemon: the running step stops there,
//! rbuild exits 130, and nothing is written.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{build_cmd, context, stack, unique};

/// Processes on this machine whose command line contains `needle`; RUN steps
/// of the local engine are ordinary processes here.
fn processes_with(needle: &str) -> Vec<u32> {
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

#[test]
fn sigint_cancels_the_running_step_on_the_daemon() {
    let stack = stack();
    // A sleep length no other test uses, to find this step's process.
    let secs = 4000 + (std::process::id() % 900);
    let marker = unique("cancel");
    let ctx = context(&[(
        "Dockerfile",
        &format!("ARG BASE\nFROM ${{BASE}}\nRUN echo started-{marker} && sleep {secs}\n"),
    )]);
    let meta = ctx.path().join("meta.json");
    let mut child = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg("--metadata-file")
        .arg(&meta)
        .arg(ctx.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen
        .iter()
        .any(|l: &String| l.contains(&format!("started-{marker}")))
    {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the step never started:\n{}", seen.join("\n")));
        seen.push(line);
    }
    let sleep_cmd = format!("sleep {secs}");
    let wait_for = |want_running: bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while processes_with(&sleep_cmd).is_empty() == want_running {
            assert!(
                Instant::now() < deadline,
                "step running={want_running} not seen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(true);

    let sent = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    seen.extend(rx.try_iter());
    let output = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(took < Duration::from_secs(15), "exit took {took:?}");
    assert!(output.contains("canceled"), "{output}");
    // The daemon stopped the step: its process is gone.
    wait_for(false);
    assert!(!meta.exists(), "a canceled build wrote its metadata file");
}
