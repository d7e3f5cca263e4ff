//! The `ssh://` transport: the system's ssh client logs in to the host and
//! runs a command there whose stdin and stdout carry the daemon's HTTP/2,
//! as BuildKit's ssh connection helper does (`buildctl dial-stdio` by
//! default; `rbuild dial-stdio` serves as well).
//!
//! The user's ssh does the security work: known_hosts, keys, agent, config.
//! Host-key checking is left as the user's ssh config has it (on, by
//! default), and `BatchMode=yes` turns every prompt into a failure: a
//! connection with the HTTP/2 stream on stdin has nobody to answer it. The
//! client's stderr is kept (bounded) because that is where ssh and the
//! remote command say what went wrong.

mod failure;
mod stream;

pub use failure::SshError;
pub(crate) use stream::SshStream;

use std::io;
use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use failure::{Attempt, Origin, bounded};
use stream::keep;

/// The local ssh program and its own options, read as git reads
/// `GIT_SSH_COMMAND`: `ssh -F ~/ci/ssh_config`.
pub const SSH_COMMAND_ENV: &str = "RBUILD_SSH_COMMAND";

/// The command run on the remote host instead of `buildctl dial-stdio`.
pub const SSH_REMOTE_COMMAND_ENV: &str = "RBUILD_SSH_REMOTE_COMMAND";

/// How an `ssh://` address is reached. Unset fields fall back to the
/// environment ([`SSH_COMMAND_ENV`], [`SSH_REMOTE_COMMAND_ENV`]), then to
/// `ssh` and `buildctl dial-stdio`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshOptions {
    /// The local ssh program with options of its own, as one command line
    /// (`ssh -F FILE`). With shell syntax (quotes, `$`, `~`) it runs
    /// through `sh -c`, as git runs `GIT_SSH_COMMAND`.
    pub command: Option<String>,
    /// The command the remote host's shell runs; it must bridge its stdin
    /// and stdout to the daemon, e.g.
    /// `rbuild dial-stdio --addr docker:///var/run/docker.sock`. A socket
    /// path in the address applies only to the default command.
    pub remote_command: Option<String>,
}

/// The parts of an `ssh://` address.
pub(crate) struct Target<'a> {
    pub user: Option<&'a str>,
    pub host: &'a str,
    pub port: Option<u16>,
    pub socket: Option<&'a Path>,
}

/// The process to start, and what its failure is told against.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub argv: Vec<String>,
    pub local_program: String,
    pub remote_command: String,
    pub origin: Origin,
}

/// Characters that make a command line shell syntax (git's list).
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', '#', '~', '=', '%',
];

pub(crate) fn plan(
    target: &Target<'_>,
    opts: &SshOptions,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Plan, SshError> {
    let set = |explicit: &Option<String>, var: &str| {
        explicit
            .clone()
            .map(|v| (v, Origin::Option))
            .or_else(|| env(var).map(|v| (v, Origin::Env)))
            .filter(|(v, _)| !v.trim().is_empty())
    };
    let local = set(&opts.command, SSH_COMMAND_ENV)
        .map(|(v, _)| v)
        .unwrap_or_else(|| "ssh".to_string());
    let local_program = local.split_whitespace().next().unwrap_or("ssh").to_string();
    let mut argv: Vec<String> = if local.contains(SHELL_SYNTAX) {
        // `"$@"` passes rbuild's arguments through unchanged; $0 is the
        // command itself, as git sets it.
        vec![
            "sh".into(),
            "-c".into(),
            format!("{local} \"$@\""),
            local.clone(),
        ]
    } else {
        local.split_whitespace().map(String::from).collect()
    };
    let remote = set(&opts.remote_command, SSH_REMOTE_COMMAND_ENV);
    let (remote_command, origin) = match (remote, target.socket) {
        (Some(_), Some(socket)) => {
            return Err(SshError::SocketWithRemoteCommand {
                socket: socket.display().to_string(),
            });
        }
        (Some((command, origin)), None) => (command, origin),
        // buildctl's --addr is a global flag: before the command name.
        (None, Some(socket)) => (
            format!(
                "buildctl --addr {} dial-stdio",
                shell_quote(&format!("unix://{}", socket.display()))
            ),
            Origin::Default,
        ),
        (None, None) => ("buildctl dial-stdio".to_string(), Origin::Default),
    };
    // The user's options come first: for ssh the first value of an option
    // wins, so a deliberate `-o` there is theirs to make.
    argv.extend(["-o".into(), "BatchMode=yes".into(), "-T".into()]);
    if let Some(port) = target.port {
        argv.extend(["-p".into(), port.to_string()]);
    }
    if let Some(user) = target.user {
        argv.extend(["-l".into(), user.to_string()]);
    }
    argv.extend(["--".into(), target.host.to_string(), remote_command.clone()]);
    Ok(Plan {
        argv,
        local_program,
        remote_command,
        origin,
    })
}

/// `s` as one word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._:-@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Starts ssh and waits for the daemon's first bytes, so that a failed
/// login or a missing remote command is told here, from ssh's stderr,
/// instead of as a broken HTTP/2 handshake. HTTP/2 servers speak first
/// (grpc-go and Go's http2 send their SETTINGS before reading the client's
/// preface), so a healthy connection always has bytes to read.
pub(crate) async fn open(target: &Target<'_>, opts: &SshOptions) -> Result<SshStream, SshError> {
    let plan = plan(target, opts, |var| std::env::var(var).ok())?;
    let attempt = Attempt {
        host: target.host,
        port: target.port,
        user: target.user,
        local_program: &plan.local_program,
        remote_command: &plan.remote_command,
        origin: plan.origin,
    };
    tracing::debug!(argv = ?plan.argv, "starting ssh");
    let mut child = tokio::process::Command::new(&plan.argv[0])
        .args(&plan.argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A dropped connection (a build done, a timeout, Ctrl-C) ends ssh.
        .kill_on_drop(true)
        // Ctrl-C goes to the terminal's process group: rbuild cancels the
        // build over this connection, so ssh must not die first.
        .process_group(0)
        .spawn()
        .map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => SshError::NoClient {
                program: plan.argv[0].clone(),
            },
            _ => SshError::Spawn {
                program: plan.argv[0].clone(),
                source,
            },
        })?;
    let pipes = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) = pipes else {
        return Err(SshError::Failed {
            host: target.host.to_string(),
            detail: "its pipes were not set up".into(),
        });
    };
    let io_error = |source| SshError::Io {
        host: target.host.to_string(),
        source,
    };
    let mut kept = Vec::new();
    let mut first = vec![0u8; 16 << 10];
    let mut chunk = [0u8; 1024];
    let mut stderr_open = true;
    let n = loop {
        tokio::select! {
            r = stdout.read(&mut first) => break r.map_err(io_error)?,
            r = stderr.read(&mut chunk), if stderr_open => match r {
                Ok(0) | Err(_) => stderr_open = false,
                Ok(n) => keep(&mut kept, &chunk[..n]),
            },
        }
    };
    if n == 0 {
        // ssh or the remote command ended: its last words and status say why.
        while stderr_open {
            match stderr.read(&mut chunk).await {
                Ok(0) | Err(_) => stderr_open = false,
                Ok(n) => keep(&mut kept, &chunk[..n]),
            }
        }
        let status = child.wait().await.ok().and_then(|s| s.code());
        return Err(attempt.classify(status, &String::from_utf8_lossy(&kept)));
    }
    // A SETTINGS frame starts with its length, whose first byte is 0.
    if first[0] != 0 {
        let text = String::from_utf8_lossy(&first[..n]);
        return Err(SshError::NotHttp2 {
            host: target.host.to_string(),
            text: bounded(text.lines().next().unwrap_or_default()),
        });
    }
    first.truncate(n);
    // What ssh said while logging in (a warning, a banner) is no reason for
    // a later failure.
    Ok(SshStream::new(
        child,
        stdin,
        stdout,
        stderr,
        first,
        target.host,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(socket: Option<&Path>) -> Target<'_> {
        Target {
            user: Some("ci"),
            host: "10.0.0.7",
            port: Some(2222),
            socket,
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_default_runs_buildctl_with_the_socket_where_buildctl_wants_it() {
        let p = plan(&target(None), &SshOptions::default(), no_env).unwrap();
        assert_eq!(
            p.argv,
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-T",
                "-p",
                "2222",
                "-l",
                "ci",
                "--",
                "10.0.0.7",
                "buildctl dial-stdio"
            ]
        );
        let socket = Path::new("/run/my buildkit/bk.sock");
        let p = plan(&target(Some(socket)), &SshOptions::default(), no_env).unwrap();
        assert_eq!(
            p.argv.last().unwrap(),
            "buildctl --addr 'unix:///run/my buildkit/bk.sock' dial-stdio"
        );
        let bare = Target {
            user: None,
            port: None,
            ..target(None)
        };
        let p = plan(&bare, &SshOptions::default(), no_env).unwrap();
        assert_eq!(
            p.argv,
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-T",
                "--",
                "10.0.0.7",
                "buildctl dial-stdio"
            ]
        );
    }

    #[test]
    fn commands_come_from_options_then_the_environment() {
        let env = |var: &str| match var {
            SSH_COMMAND_ENV => Some("ssh -F /ci/ssh_config".to_string()),
            SSH_REMOTE_COMMAND_ENV => Some("rbuild dial-stdio".to_string()),
            _ => None,
        };
        let p = plan(&target(None), &SshOptions::default(), env).unwrap();
        assert_eq!(p.argv[..3], ["ssh", "-F", "/ci/ssh_config"]);
        assert_eq!(p.argv.last().unwrap(), "rbuild dial-stdio");
        assert_eq!(p.origin, Origin::Env);
        let opts = SshOptions {
            command: Some("/opt/ssh -o 'ProxyJump=bastion'".into()),
            remote_command: Some("rbuild dial-stdio --addr docker:///var/run/docker.sock".into()),
        };
        let p = plan(&target(None), &opts, env).unwrap();
        assert_eq!(
            p.argv[..4],
            [
                "sh",
                "-c",
                "/opt/ssh -o 'ProxyJump=bastion' \"$@\"",
                "/opt/ssh -o 'ProxyJump=bastion'"
            ]
        );
        assert_eq!(p.local_program, "/opt/ssh");
        assert_eq!(p.origin, Origin::Option);
        let err = plan(&target(Some(Path::new("/s.sock"))), &opts, no_env).unwrap_err();
        assert!(err.to_string().contains("/s.sock"), "{err}");
        // An empty variable is unset, as for git.
        let empty = |_: &str| Some(" ".to_string());
        let p = plan(&target(None), &SshOptions::default(), empty).unwrap();
        assert_eq!(p.argv[0], "ssh");
        assert_eq!(p.origin, Origin::Default);
    }

    /// A stand-in for ssh: ignores its arguments and runs `script`.
    fn fake_ssh(script: &str) -> SshOptions {
        SshOptions {
            command: Some(format!("sh -c '{script}' fake-ssh")),
            remote_command: Some("unused".into()),
        }
    }

    #[tokio::test]
    async fn the_stream_passes_bytes_both_ways_and_half_closes() {
        use tokio::io::AsyncWriteExt;
        // A zero byte first, as an HTTP/2 server's SETTINGS frame starts.
        let opts = fake_ssh(r#"printf "\000"; exec cat"#);
        let mut stream = open(&target(None), &opts).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut back = Vec::new();
        stream.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"\0ping");
    }

    #[tokio::test]
    async fn a_client_that_fails_is_told_from_its_stderr() {
        let opts = fake_ssh(r"echo ci@10.0.0.7: Permission denied \(publickey\). >&2; exit 255");
        let err = open(&target(None), &opts).await.err().unwrap();
        assert!(matches!(err, SshError::LoginRefused { .. }), "{err}");
        let opts = fake_ssh("echo Last login: today; sleep 5");
        let err = open(&target(None), &opts).await.err().unwrap();
        assert!(
            err.to_string().contains("printed \"Last login: today\""),
            "{err}"
        );
    }
}
