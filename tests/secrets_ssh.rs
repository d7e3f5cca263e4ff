//! `--secret` and `--ssh` against the real stack: secrets reach `RUN
//! --mount=type=secret` and nothing else (not the image, not our output);
//! missing sources fail before connecting; an agent socket is proxied byte for
//! byte to `RUN --mount=type=ssh`, and key files are served by rbuild's own
//! agent whose signatures verify.

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
/// It asks for the identities; with arguments FLAGS [PREFIX] it then asks
/// for a signature of "rbuild ssh test" by the first identity. Each answer
/// is printed in hex, length prefix included, after PREFIX.
const AGENT_CLIENT: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static unsigned char buf[65536];
static const char *prefix = "";
static int roundtrip(int fd, const unsigned char *req, size_t len, const char *label) {
    if (write(fd, req, len) != (ssize_t)len) { perror("write"); return -1; }
    size_t got = 0, want = 4;
    while (got < want) {
        ssize_t n = read(fd, buf + got, want - got);
        if (n <= 0) { fprintf(stderr, "%s: short answer\n", label); return -1; }
        got += (size_t)n;
        if (got == 4) {
            want = 4 + ((size_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3]);
            if (want > sizeof buf) { fprintf(stderr, "%s: too long\n", label); return -1; }
        }
    }
    printf("%s%s=", prefix, label);
    for (size_t i = 0; i < got; i++) printf("%02x", buf[i]);
    printf("\n");
    return (int)got;
}
static void put32(unsigned char *p, unsigned v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }
int main(int argc, char **argv) {
    const char *path = getenv("SSH_AUTH_SOCK");
    if (!path) { fprintf(stderr, "no SSH_AUTH_SOCK\n"); return 2; }
    if (argc > 2) prefix = argv[2];
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("connect"); return 3; }
    const unsigned char ids[] = {0, 0, 0, 1, 11};
    int n = roundtrip(fd, ids, sizeof ids, "agent-answer");
    if (n < 0) return 4;
    if (argc < 2) return 0;
    /* 4 len, 1 type, 4 count, then the first key: 4 len + blob. */
    if (n < 13 || buf[4] != 12) { fprintf(stderr, "no identities\n"); return 5; }
    unsigned blob_len = (unsigned)buf[9] << 24 | buf[10] << 16 | buf[11] << 8 | buf[12];
    static const char data[] = "rbuild ssh test";
    static unsigned char req[70000];
    size_t len = 0;
    req[4] = 13;
    put32(req + 5, blob_len);
    memcpy(req + 9, buf + 13, blob_len);
    len = 9 + blob_len;
    put32(req + len, sizeof data - 1);
    memcpy(req + len + 4, data, sizeof data - 1);
    len += 4 + sizeof data - 1;
    put32(req + len, (unsigned)atoi(argv[1]));
    len += 4;
    put32(req, (unsigned)(len - 4));
    return roundtrip(fd, req, len, "sign-answer") < 0 ? 6 : 0;
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

/// `ssh-keygen` into `dir`; returns the private key path.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (OpenSSH client) is needed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn public_key(private: &Path) -> ssh_key::PublicKey {
    let text = std::fs::read_to_string(private.with_extension("pub")).unwrap();
    ssh_key::PublicKey::from_openssh(&text).unwrap()
}

/// The hex after `label=` in the build's output, decoded.
fn answer(output: &str, label: &str) -> Vec<u8> {
    let needle = format!("{label}=");
    let hex = output
        .lines()
        .find_map(|l| l.split_once(&needle).map(|(_, h)| h.trim().to_string()))
        .unwrap_or_else(|| panic!("no {label} in:\n{output}"));
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Splits an SSH wire string off the front.
fn take_string<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let len = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
    let s = &data[4..4 + len];
    *data = &data[4 + len..];
    s
}

/// `--ssh ID=KEYFILE[,KEYFILE]`: a CI deploy key without an agent. rbuild
/// answers the agent protocol itself: the step sees every key of its id,
/// and signatures verify with the public keys ssh-keygen wrote.
#[test]
fn key_files_are_served_by_an_in_process_agent() {
    let stack = stack();
    let keys = tempfile::tempdir().unwrap();
    let ed = keygen(keys.path(), "deploy_ed", &["-t", "ed25519", "-N", ""]);
    let rsa = keygen(
        keys.path(),
        "deploy_rsa",
        &["-t", "rsa", "-b", "2048", "-N", ""],
    );
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\nCOPY agentc /agentc\n\
         RUN --mount=type=ssh,id=ed /agentc 0 ed-\n\
         RUN --mount=type=ssh,id=both /agentc 2 both-\n",
    )]);
    static_agent_client(ctx.path());
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--ssh", &format!("ed={}", ed.display())])
        .args(["--ssh", &format!("both={},{}", rsa.display(), ed.display())])
        .arg(ctx.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    // Identities: type 12, the count, then (blob, comment) per key in order.
    for (label, expect) in [
        ("ed-agent-answer", vec![&ed]),
        ("both-agent-answer", vec![&rsa, &ed]),
    ] {
        let raw = answer(&err, label);
        let mut body = &raw[4..];
        assert_eq!(body[0], 12, "{label}");
        assert_eq!(
            u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize,
            expect.len()
        );
        body = &body[5..];
        for key in expect {
            assert_eq!(
                take_string(&mut body),
                public_key(key).to_bytes().unwrap(),
                "{label}"
            );
            assert_eq!(
                take_string(&mut body),
                key.file_name().unwrap().as_encoded_bytes()
            );
        }
    }
    // Signatures by the first key of each id, over what the client sent.
    for (label, key, algorithm) in [
        ("ed-sign-answer", &ed, "ssh-ed25519"),
        ("both-sign-answer", &rsa, "rsa-sha2-256"),
    ] {
        let raw = answer(&err, label);
        let mut body = &raw[4..];
        assert_eq!(body[0], 14, "{label}: not a SIGN_RESPONSE");
        body = &body[1..];
        let mut blob = take_string(&mut body);
        let name = std::str::from_utf8(take_string(&mut blob)).unwrap();
        assert_eq!(name, algorithm);
        let sig = ssh_key::Signature::new(
            ssh_key::Algorithm::new(name).unwrap(),
            take_string(&mut blob).to_vec(),
        )
        .unwrap();
        verify(&public_key(key), b"rbuild ssh test", &sig)
            .unwrap_or_else(|e| panic!("{label}: the signature does not verify: {e}"));
    }
}

/// RSA signatures checked with ring (ssh-key checks RSA only with its
/// `rsa` feature, which rbuild leaves off), the others with ssh-key.
fn verify(key: &ssh_key::PublicKey, data: &[u8], sig: &ssh_key::Signature) -> Result<(), String> {
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
    let ssh_key::public::KeyData::Rsa(rsa) = key.key_data() else {
        return signature::Verifier::verify(key, data, sig).map_err(|e| e.to_string());
    };
    assert_eq!(sig.algorithm().as_str(), "rsa-sha2-256");
    let public = RsaPublicKeyComponents {
        n: rsa.n.as_positive_bytes().unwrap(),
        e: rsa.e.as_positive_bytes().unwrap(),
    };
    public
        .verify(&RSA_PKCS1_2048_8192_SHA256, data, sig.as_bytes())
        .map_err(|_| "bad RSA signature".to_string())
}

/// A key rbuild cannot use stops the build before it starts, naming the file.
#[test]
fn an_unusable_key_file_fails_before_connecting() {
    let keys = tempfile::tempdir().unwrap();
    let locked = keygen(
        keys.path(),
        "locked",
        &["-t", "ed25519", "-N", "hunter2-passphrase"],
    );
    let ctx = context(&[("Dockerfile", "FROM scratch\n")]);
    let out = rbuild()
        .args(["build", "--addr", "unix:///nonexistent/buildkitd.sock"])
        .args(["--ssh", &format!("git={}", locked.display())])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_one_line_error(&out, &["--ssh git", "passphrase-protected", "ssh-add"]);
    assert!(!stderr(&out).contains("hunter2"));
}
