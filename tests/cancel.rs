//! Ctrl-C cancels the build on the daemon, whatever it is doing: a running
//! step (which stops there), the context upload, the export streaming back.
//! rbuild exits 130 and writes nothing: previous outputs stay as they were.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::faults::{Running, assert_dir_holds, wait_for_process};
use support::{build_cmd, context, stack, unique};

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
    let mut build = Running::spawn(
        build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .arg("--metadata-file")
            .arg(&meta)
            .arg(ctx.path())
            .stdout(Stdio::null()),
    );
    build.wait_for(Duration::from_secs(60), |l| {
        l.contains(&format!("started-{marker}")) && !l.contains("RUN")
    });
    let sleep_cmd = format!("sleep {secs}");
    wait_for_process(&sleep_cmd, true, Duration::from_secs(15));

    build.signal("INT");
    let (status, took, output) = build.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(took < Duration::from_secs(15), "exit took {took:?}");
    assert!(output.contains("canceled"), "{output}");
    // The daemon stopped the step: its process is gone.
    wait_for_process(&sleep_cmd, false, Duration::from_secs(15));
    assert!(!meta.exists(), "a canceled build wrote its metadata file");
}

#[test]
fn sigint_during_the_context_upload_stops_it() {
    let stack = stack();
    // 300 MB take seconds to upload; sparse, so they cost no disk here.
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM scratch\nCOPY big /big\nLABEL id={}\n",
            unique("upload")
        ),
    )]);
    std::fs::File::create(ctx.path().join("big"))
        .unwrap()
        .set_len(300_000_000)
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    let mut build = Running::spawn(
        build_cmd(&stack)
            .arg("-o")
            .arg(format!(
                "type=tar,dest={}",
                out.path().join("app.tar").display()
            ))
            .arg("--metadata-file")
            .arg(out.path().join("meta.json"))
            .arg(ctx.path())
            .stdout(Stdio::null()),
    );
    // The upload's progress, in MB and not yet done.
    build.wait_for(Duration::from_secs(60), |l| {
        l.contains("transferring context:") && l.contains("MB") && !l.ends_with("done")
    });
    build.signal("INT");
    let (status, took, output) = build.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    assert!(
        !output.contains("transferring context: 300.00MB"),
        "the upload finished anyway:\n{output}"
    );
    assert!(output.lines().any(|l| l == "build canceled"), "{output}");
    assert_dir_holds(out.path(), &[("app.tar", "previous")]);
}

#[test]
fn sigint_while_the_output_streams_back_leaves_the_previous_file() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "ARG BASE\nFROM ${{BASE}}\nRUN head -c 200000000 /dev/urandom > /big && echo {}\n",
            unique("export")
        ),
    )]);
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("app.tar"), "previous").unwrap();
    let build = Running::spawn(
        build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .arg("-o")
            .arg(format!(
                "type=tar,dest={}",
                out.path().join("app.tar").display()
            ))
            .arg("--metadata-file")
            .arg(out.path().join("meta.json"))
            .arg(ctx.path())
            .stdout(Stdio::null()),
    );
    // Strike once the staged file beside the destination is filling up.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_dir(out.path()).unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().ends_with(".rbuild-tmp")
            && e.metadata().is_ok_and(|m| m.len() > 1 << 20)
    }) {
        assert!(Instant::now() < deadline, "the tar never started to arrive");
        std::thread::sleep(Duration::from_millis(10));
    }
    build.signal("INT");
    let (status, took, output) = build.finish(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{output}");
    assert!(took < Duration::from_secs(5), "exit took {took:?}");
    assert_dir_holds(out.path(), &[("app.tar", "previous")]);
}
