//! `ssh://` addresses through a real sshd (Debian's openssh-server, see
//! support/sshd.rs) to the stack's real engine.
//!
//! The engine's socket is a Docker Engine socket, not a buildkitd one, so
//! the remote command is rbuild's own `dial-stdio --addr docker://SOCKET`
//! (the binary under test) where a BuildKit host would run `buildctl
//! dial-stdio`. Host-key checking stays on: the client trusts the test's
//! host key through its own known_hosts, given with `RBUILD_SSH_COMMAND`.

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::sshd::{Client, Sshd};
use support::*;

/// The remote command that reaches the engine's BuildKit.
fn dial_engine(stack: &Stack) -> String {
    format!(
        "{} dial-stdio --addr docker://{}",
        env!("CARGO_BIN_EXE_rbuild"),
        stack.engine_socket.display()
    )
}

/// rbuild logging in as `client`, with `remote` as the remote command
/// (`None`: the default `buildctl dial-stdio`).
fn over_ssh(sshd: &Sshd, client: Client, remote: Option<&str>) -> Command {
    let mut cmd = rbuild();
    cmd.env("RBUILD_SSH_COMMAND", sshd.ssh_command(client));
    match remote {
        Some(remote) => cmd.env("RBUILD_SSH_REMOTE_COMMAND", remote),
        None => cmd.env_remove("RBUILD_SSH_REMOTE_COMMAND"),
    };
    cmd
}

#[test]
fn info_reaches_the_engine_over_ssh() {
    let stack = stack();
    let sshd = Sshd::shared();
    let addr = sshd.address("");
    let (out, took) = run_timed(
        over_ssh(&sshd, Client::Trusted, Some(&dial_engine(&stack)))
            .args(["info", "--addr", &addr]),
    );
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("Address:  {addr}")), "{text}");
    assert!(text.contains("linux/amd64"), "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        sshd.log().contains("Accepted publickey for root"),
        "{}",
        sshd.log()
    );
}

#[test]
fn a_build_runs_over_ssh() {
    let stack = stack();
    let sshd = Sshd::shared();
    let id = unique("ssh");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo built-{id} > /id && cat /id\nFROM scratch\nCOPY --from=0 /id /id\n",
            stack.base
        ),
    )]);
    let dest = tempfile::tempdir().unwrap();
    let out = over_ssh(&sshd, Client::Trusted, Some(&dial_engine(&stack)))
        .args(["build", "--addr", &sshd.address(""), "--progress", "plain"])
        .args(["--no-cache", "--output"])
        .arg(format!("type=local,dest={}", dest.path().display()))
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    // The RUN ran on the engine, and its file came back through the
    // session over the same ssh connection.
    assert!(
        stderr(&out).contains(&format!("built-{id}")),
        "{}",
        stderr(&out)
    );
    let got = std::fs::read_to_string(dest.path().join("id")).unwrap();
    assert_eq!(got.trim(), format!("built-{id}"));
}

#[test]
fn a_builders_file_node_over_ssh_joins_a_pool() {
    let stack = stack();
    let sshd = Sshd::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("builders.hcl");
    let hcl = format!(
        "builder \"mixed\" {{\n\
           node \"far\" {{\n\
             endpoint           = \"{addr}\"\n\
             ssh_command        = \"{ssh}\"\n\
             ssh_remote_command = \"{remote}\"\n\
           }}\n\
           node \"near\" {{ endpoint = \"{near}\" }}\n\
         }}\n",
        addr = sshd.address(""),
        ssh = sshd.ssh_command(Client::Trusted),
        remote = dial_engine(&stack),
        near = stack.buildkit_host,
    );
    std::fs::write(&file, hcl).unwrap();
    // The node's own options win over the environment's.
    let out = rbuild()
        .env("RBUILD_BUILDERS", &file)
        .env("RBUILD_SSH_COMMAND", sshd.ssh_command(Client::Stranger))
        .env("RBUILD_SSH_REMOTE_COMMAND", "false")
        .args(["info", "--builder", "mixed"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert_eq!(text.matches("Health:   healthy").count(), 2, "{text}");
    assert!(
        text.contains(&format!("Address:  {}", sshd.address(""))),
        "{text}"
    );
}

#[test]
fn dial_stdio_bridges_to_an_ssh_address() {
    // Two hops: the first ssh runs `rbuild dial-stdio --addr ssh://…`
    // remotely, which itself dials over ssh to the engine.
    let stack = stack();
    let sshd = Sshd::shared();
    let hop = format!(
        "env RBUILD_SSH_COMMAND='{ssh}' RBUILD_SSH_REMOTE_COMMAND='{remote}' {rbuild} dial-stdio --addr {addr}",
        ssh = sshd.ssh_command(Client::Trusted),
        remote = dial_engine(&stack),
        rbuild = env!("CARGO_BIN_EXE_rbuild"),
        addr = sshd.address(""),
    );
    let out = over_ssh(&sshd, Client::Trusted, Some(&hop))
        .args(["info", "--format", "json", "--addr", &sshd.address("")])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("\"workers\""), "{}", stdout(&out));
}

/// Fails non-zero, in one line, without a panic, soon, saying `expect`.
#[track_caller]
fn assert_fails_in_one_line(cmd: &mut Command, expect: &[&str]) -> Output {
    let (out, took) = run_timed(cmd);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "not one line:\n{err}");
    for e in expect {
        assert!(err.contains(e), "{e:?} missing: {err}");
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
    out
}

#[test]
fn an_unknown_host_key_is_refused_in_one_line() {
    let sshd = Sshd::shared();
    let addr = sshd.address("");
    assert_fails_in_one_line(
        over_ssh(&sshd, Client::UnknownHost, Some("true")).args(["info", "--addr", &addr]),
        &[
            &format!("cannot connect to BuildKit at {addr}"),
            "the host key of 127.0.0.1 is not in known_hosts",
            &format!("ssh -p {} root@127.0.0.1", sshd.port),
        ],
    );
}

#[test]
fn a_refused_key_fails_in_one_line() {
    let sshd = Sshd::shared();
    assert_fails_in_one_line(
        over_ssh(&sshd, Client::Stranger, Some("true")).args(["info", "--addr", &sshd.address("")]),
        &[
            "127.0.0.1 refused the login as root: Permission denied (publickey)",
            "authorized_keys",
        ],
    );
}

#[test]
fn a_missing_remote_buildctl_fails_in_one_line() {
    let sshd = Sshd::shared();
    // The default remote command, with the socket where buildctl takes it;
    // this machine has no buildctl.
    assert_fails_in_one_line(
        over_ssh(&sshd, Client::Trusted, None).args([
            "info",
            "--addr",
            &sshd.address("/run/buildkit/buildkitd.sock"),
        ]),
        &[
            "`buildctl` is not found on 127.0.0.1",
            "RBUILD_SSH_REMOTE_COMMAND",
        ],
    );
}

#[test]
fn a_failing_remote_command_says_why_in_one_line() {
    let sshd = Sshd::shared();
    let remote = format!(
        "{} dial-stdio --addr docker:///nonexistent/docker.sock",
        env!("CARGO_BIN_EXE_rbuild")
    );
    assert_fails_in_one_line(
        over_ssh(&sshd, Client::Trusted, Some(&remote)).args(["info", "--addr", &sshd.address("")]),
        &[
            "on 127.0.0.1 failed with exit status 1",
            "no socket at /nonexistent/docker.sock",
        ],
    );
}

#[test]
fn no_ssh_client_and_no_server_fail_in_one_line() {
    // Neither needs the test's sshd: ssh is looked up on an empty PATH, and
    // the port below has nothing listening.
    let empty = tempfile::tempdir().unwrap();
    assert_fails_in_one_line(
        rbuild()
            .env_remove("RBUILD_SSH_COMMAND")
            .env("PATH", empty.path())
            .args(["info", "--addr", "ssh://build-host"]),
        &[
            "ssh://build-host",
            "ssh client \"ssh\" was not found",
            "RBUILD_SSH_COMMAND",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_fails_in_one_line(
        rbuild().env_remove("RBUILD_SSH_COMMAND").args([
            "info",
            "--addr",
            &format!("ssh://127.0.0.1:{port}"),
        ]),
        &["ssh cannot reach 127.0.0.1: Connection refused"],
    );
}
