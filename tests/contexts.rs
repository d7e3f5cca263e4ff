//! Where a build's files come from, on the real stack: PATH `-` (a tar
//! archive on stdin is the context, anything else the Dockerfile) and the
//! `--build-context` forms (an image, an OCI layout, a git repository, an
//! HTTP URL). Bad forms fail before rbuild connects.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::git::serve_repo;
use support::{assert_success, build_cmd, context, rbuild, stack, stderr};

fn tar(args: &[&str], dir: &Path) {
    let out = Command::new("tar")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("tar runs");
    assert!(out.status.success(), "tar {args:?}: {}", stderr(&out));
}

/// Runs `cmd` with `input` on its stdin.
fn with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rbuild runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    // Written from a thread: rbuild reads stdin while the build runs.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("rbuild ends");
    writer.join().expect("writer");
    out
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

#[test]
fn a_tar_archive_on_stdin_is_the_context() {
    let stack = stack();
    let src = context(&[
        (
            "Dockerfile",
            "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n",
        ),
        (
            "sub/Other.Dockerfile",
            "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /other.txt\n",
        ),
        ("hello.txt", "from the archive\n"),
    ]);
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("ctx.tar");
    let gzip = work.path().join("ctx.tar.gz");
    tar(&["-cf", &plain.to_string_lossy(), "."], src.path());
    tar(&["-czf", &gzip.to_string_lossy(), "."], src.path());

    // A gzip archive, its Dockerfile at the top.
    let dest = work.path().join("a");
    let out = with_stdin(
        build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .args(["-o", &format!("type=local,dest={}", dest.display())])
            .arg("-"),
        &std::fs::read(&gzip).unwrap(),
    );
    assert_success(&out);
    assert_eq!(read(&dest, "hello.txt"), "from the archive\n");
    // The upload is the archive's bytes, not files.
    assert!(
        stderr(&out).contains("context: 0 files ("),
        "{}",
        stderr(&out)
    );

    // A plain tar, -f naming a Dockerfile inside it.
    let dest = work.path().join("b");
    let out = with_stdin(
        build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .args(["-f", "sub/Other.Dockerfile"])
            .args(["-o", &format!("type=local,dest={}", dest.display())])
            .arg("-"),
        &std::fs::read(&plain).unwrap(),
    );
    assert_success(&out);
    assert_eq!(read(&dest, "other.txt"), "from the archive\n");
}

#[test]
fn a_dockerfile_on_stdin_builds_with_an_empty_context() {
    let stack = stack();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("out");
    let dockerfile = "ARG BASE\nFROM ${BASE}\nRUN echo from-stdin > /made.txt\n";
    let out = with_stdin(
        build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .args(["-o", &format!("type=local,dest={}", dest.display())])
            .arg("-"),
        dockerfile.as_bytes(),
    );
    assert_success(&out);
    assert_eq!(read(&dest, "made.txt"), "from-stdin\n");

    // COPY has nothing to copy from: the context is empty.
    let out = with_stdin(
        build_cmd(&stack)
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .arg("-"),
        b"ARG BASE\nFROM ${BASE}\nCOPY Dockerfile /x\n",
    );
    assert!(!out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_image_and_an_oci_layout_as_named_contexts() {
    let stack = stack();
    let work = tempfile::tempdir().unwrap();

    // docker-image:// from the local registry.
    let ctx = context(&[(
        "Dockerfile",
        "FROM base\nRUN echo on-the-image > /img.txt\n",
    )]);
    let dest = work.path().join("image");
    let out = build_cmd(&stack)
        .args([
            "--build-context",
            &format!("base=docker-image://{}", stack.base),
        ])
        .args(["-o", &format!("type=local,dest={}", dest.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(read(&dest, "img.txt"), "on-the-image\n");

    // An OCI layout this test writes: an image built to an oci tarball,
    // unpacked.
    let producer = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN echo in-the-layout > /layout.txt\n",
    )]);
    let oci_tar = work.path().join("image.oci.tar");
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-o", &format!("type=oci,dest={}", oci_tar.display())])
        .arg(producer.path())
        .output()
        .unwrap();
    assert_success(&out);
    let layout = work.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    tar(&["-xf", &oci_tar.to_string_lossy()], &layout);
    let index: serde_json::Value =
        serde_json::from_str(&read(&layout, "index.json")).expect("index.json");
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("a manifest digest")
        .to_string();

    let ctx = context(&[("Dockerfile", "FROM base\nRUN cat /layout.txt > /seen.txt\n")]);
    // Its only image, then the same image by digest.
    for (i, value) in [
        format!("oci-layout://{}", layout.display()),
        format!("oci-layout://{}@{digest}", layout.display()),
    ]
    .iter()
    .enumerate()
    {
        let dest = work.path().join(format!("layout-{i}"));
        let out = build_cmd(&stack)
            .args(["--build-context", &format!("base={value}")])
            .args(["-o", &format!("type=local,dest={}", dest.display())])
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        assert_eq!(read(&dest, "seen.txt"), "in-the-layout\n", "{value}");
    }
}

/// Serves `body` to every HTTP request on a loopback port, from a thread
/// that ends with the test process.
fn serve_http(body: &'static str) -> u16 {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                head.push_str(&line);
                line.clear();
            }
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if !head.starts_with("HEAD ") {
                let _ = stream.write_all(body.as_bytes());
            }
        }
    });
    port
}

#[test]
fn a_git_repository_an_http_file_and_a_directory_as_named_contexts() {
    let stack = stack();
    let base = tempfile::tempdir().unwrap();
    let daemon = serve_repo(base.path(), &[("lib/hello.txt", "from git\n")]);
    let port = serve_http("over http\n");
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nCOPY --from=src lib/hello.txt /git.txt\n\
         COPY --from=web / /web/\nCOPY --from=files local.txt /local.txt\n",
    )]);
    let files = context(&[("local.txt", "from a directory\n")]);
    let dest = base.path().join("out");
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--build-context", &format!("src={}", daemon.url("main"))])
        .args([
            "--build-context",
            &format!("web=http://127.0.0.1:{port}/notes.txt"),
        ])
        .args([
            "--build-context",
            &format!("files={}", files.path().display()),
        ])
        .args(["-o", &format!("type=local,dest={}", dest.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(read(&dest, "git.txt"), "from git\n");
    assert_eq!(read(&dest, "local.txt"), "from a directory\n");
    // The frontend names the downloaded file (`context`, or the URL's
    // basename on older ones): the one file under /web is it.
    let web: Vec<_> = std::fs::read_dir(dest.join("web"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(std::fs::read_to_string(&web[0]).unwrap(), "over http\n");
}

#[track_caller]
fn assert_one_line_error(out: &Output, expect: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "unexpected success: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
    assert!(err.contains(expect), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_context_forms_fail_before_connecting() {
    let ctx = context(&[("Dockerfile", "FROM base\n")]);
    let not_oci = context(&[("README", "not a layout")]);
    // A daemon address that does not exist: a connection attempt would
    // fail with a different message.
    let run = |build_context: &str| {
        rbuild()
            .args(["build", "--addr", "unix:///nonexistent.sock"])
            .args(["--build-context", build_context])
            .arg(ctx.path())
            .output()
            .unwrap()
    };
    assert_one_line_error(
        &run("lib=/nonexistent/lib"),
        r#"named context "lib" at /nonexistent/lib does not exist"#,
    );
    assert_one_line_error(
        &run(&format!("base=oci-layout://{}", not_oci.path().display())),
        "index.json",
    );
    assert_one_line_error(
        &run("base=oci-layout:///x@sha256:123"),
        "sha256: and 64 lowercase hex digits",
    );
    assert_one_line_error(&run("base=s3://bucket/x"), "unknown scheme s3://");

    // PATH - and -f - cannot both be stdin; stdin's Dockerfile and -f
    // cannot both be the Dockerfile.
    let stdin_run = |args: &[&str], input: &[u8]| {
        with_stdin(
            rbuild()
                .args(["build", "--addr", "unix:///nonexistent.sock"])
                .args(args),
            input,
        )
    };
    assert_one_line_error(
        &stdin_run(&["-f", "-", "-"], b"FROM scratch\n"),
        "stdin cannot be both",
    );
    assert_one_line_error(
        &stdin_run(&["-f", "Dockerfile", "-"], b"FROM scratch\n"),
        "stdin holds a Dockerfile",
    );
    assert_one_line_error(&stdin_run(&["-"], b""), "the Dockerfile is empty");
}
