//! `--secret` and `--ssh` against the real stack: secrets reach `RUN
//! --mount=type=secret` and nothing else (not the image, not our output);
//! missing sources fail before connecting; an agent socket is proxied byte for
//! byte to `RUN --mount=type=ssh`.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use support::{assert_success, build_cmd, context, rbuild, stack, stderr, stdout, unique};

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[track_caller]
fn assert_one_line_error(out: &Output, expect: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "unexpected success: {err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
    for e in expect {
        assert!(err.contains(e), "{e:?} missing: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn secrets_reach_the_step_and_nothing_else() {
    let stack = stack();
    let file_secret = unique("file-secret-value");
    let env_secret = unique("env-secret-value");
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\n\
         RUN --mount=type=secret,id=mysecret echo \"file-hash=$(sha256sum < /run/secrets/mysecret)\"\n\
         RUN --mount=type=secret,id=tok echo \"env-hash=$(sha256sum < /run/secrets/tok)\"\n\
         RUN --mount=type=secret,id=absent,required=false test ! -s /run/secrets/absent\n\
         RUN echo done > /done\n",
    )]);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("mysecret");
    std::fs::write(&secret_file, &file_secret).unwrap();
    let tar = dir.path().join("image.tar");
    let out = build_cmd(&stack)
        // Developer logs on: they must not leak values either.
        .env("RBUILD_LOG", "rbuild=trace")
        .env("MY_TOKEN", &env_secret)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args([
            "--secret",
            &format!("id=mysecret,src={}", secret_file.display()),
        ])
        .args(["--secret", "id=tok,env=MY_TOKEN"])
        .args(["-o", &format!("type=tar,dest={}", tar.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    let file_hash = sha256_hex(file_secret.as_bytes());
    let env_hash = sha256_hex(env_secret.as_bytes());
    assert!(all.contains(&format!("file-hash={file_hash}")), "{all}");
    assert!(all.contains(&format!("env-hash={env_hash}")), "{all}");
    for value in [&file_secret, &env_secret] {
        assert!(!all.contains(value.as_str()), "a secret value was printed");
    }
    // The tar export is uncompressed: a value in any file would show verbatim.
    let image = std::fs::read(&tar).unwrap();
    assert!(image.windows(3).any(|w| w == b"bin"), "not the rootfs");
    for value in [&file_secret, &env_secret] {
        assert!(
            !image.windows(value.len()).any(|w| w == value.as_bytes()),
            "a secret value is in the exported image"
        );
    }
}

#[test]
fn missing_secret_sources_fail_before_connecting() {
    let ctx = context(&[("Dockerfile", "FROM scratch\n")]);
    // An unreachable daemon: reaching it would be a different error.
    let build = || {
        let mut cmd = rbuild();
        cmd.args(["build", "--addr", "unix:///nonexistent.sock"]);
        cmd
    };
    let out = build()
        .args(["--secret", "id=gone,src=/nonexistent/secret-file"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, &["\"gone\"", "/nonexistent/secret-file"]);
    let out = build()
        .env_remove("RBUILD_TEST_UNSET_TOKEN")
        .args(["--secret", "id=tok,env=RBUILD_TEST_UNSET_TOKEN"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, &["\"tok\"", "RBUILD_TEST_UNSET_TOKEN"]);
    let out = build()
        .args(["--ssh", "agent=/nonexistent/agent.sock"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, &["agent", "/nonexistent/agent.sock"]);
}

/// A fake ssh-agent: answers SSH_AGENTC_REQUEST_IDENTITIES (11) with an
/// SSH_AGENT_IDENTITIES_ANSWER (12) listing no keys, and records requests.
fn fake_agent(path: &Path) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let listener = UnixListener::bind(path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    // Detached: it lives as long as the test binary, and the socket's temp
    // dir goes away with the test.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut request = [0u8; 5];
            if conn.read_exact(&mut request).is_err() {
                continue;
            }
            record.lock().unwrap().push(request.to_vec());
            if request == [0, 0, 0, 1, 11] {
                let _ = conn.write_all(&[0, 0, 0, 5, 12, 0, 0, 0, 0]);
            }
        }
    });
    seen
}

/// busybox has no unix-socket client, so the step runs this one, built
/// statically (the image has no libc) with the C compiler cargo links with.
const AGENT_CLIENT: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
int main(void) {
    const char *path = getenv("SSH_AUTH_SOCK");
    if (!path) { fprintf(stderr, "no SSH_AUTH_SOCK\n"); return 2; }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 3; }
    const unsigned char req[] = {0, 0, 0, 1, 11};
    if (write(fd, req, sizeof req) != sizeof req) { perror("write"); return 4; }
    unsigned char buf[64];
    size_t got = 0;
    while (got < 9) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    printf("agent-answer=");
    for (size_t i = 0; i < got; i++) printf("%02x", buf[i]);
    printf("\n");
    return 0;
}
"#;

fn static_agent_client(dir: &Path) {
    let src = dir.join("agentc.c");
    std::fs::write(&src, AGENT_CLIENT).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(&cc)
        .args(["-static", "-Os", "-o"])
        .arg(dir.join("agentc"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{cc} (needed to build the agent client): {e}"));
    assert!(
        out.status.success(),
        "{cc} -static failed (needs a static libc):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ssh_agent_is_forwarded_byte_for_byte() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nCOPY agentc /agentc\n\
         RUN --mount=type=ssh,id=agent test -S \"$SSH_AUTH_SOCK\" && /agentc\n",
    )]);
    static_agent_client(ctx.path());
    let agent_dir = tempfile::tempdir().unwrap();
    let socket = agent_dir.path().join("agent.sock");
    let seen = fake_agent(&socket);
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--ssh", &format!("agent={}", socket.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("agent-answer=000000050c00000000"), "{err}");
    assert_eq!(*seen.lock().unwrap(), [vec![0, 0, 0, 1, 11]]);
}

/// Dockerfile ssh mounts are optional by default; a required one must fail
/// with our CheckAgent message, not proceed without an agent.
#[test]
fn a_required_ssh_mount_without_an_agent_fails_clearly() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nRUN --mount=type=ssh,id=nokey,required=true true\n",
    )]);
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("nokey"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
