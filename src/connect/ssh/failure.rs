//! Why an ssh connection failed, told from the client's stderr and exit
//! status: ssh says what went wrong in a few well-known sentences (OpenSSH
//! 9.x wording), and a remote shell reports a missing command with status
//! 127. Each case becomes one line that names the host and what to do.

use std::io;

/// What went wrong reaching a daemon over ssh; each variant names the host
/// and what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SshError {
    /// The local ssh program does not exist.
    #[error(
        "the ssh client {program:?} was not found (install OpenSSH's client, or set RBUILD_SSH_COMMAND to one)"
    )]
    NoClient {
        /// The program looked for.
        program: String,
    },
    /// The local ssh program exists but could not be started.
    #[error("cannot run the ssh client {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why it did not start.
        #[source]
        source: io::Error,
    },
    /// Host-key checking is on and the host's key is not in known_hosts.
    #[error(
        "the host key of {host} is not in known_hosts, and host-key checking is on (check its fingerprint, then record it: run `{login}` once and accept it)"
    )]
    UnknownHostKey {
        /// The host.
        host: String,
        /// The ssh command a user runs to see and accept the key.
        login: String,
    },
    /// The host's key is not the one known_hosts has for it.
    #[error(
        "the host key of {host} is not the one known_hosts has for it (if the change is expected, remove the old key with `ssh-keygen -R '{entry}'`, then record the new one)"
    )]
    HostKeyChanged {
        /// The host.
        host: String,
        /// Its name in known_hosts (`[host]:port` for a port other than 22).
        entry: String,
    },
    /// The server refused every key (or method) the client offered.
    #[error(
        "{host} refused the login{}: {detail} (check the user name and that your public key is in its authorized_keys; a key with a passphrase must be loaded into ssh-agent)",
        user.as_ref().map(|u| format!(" as {u}")).unwrap_or_default()
    )]
    LoginRefused {
        /// The host.
        host: String,
        /// The login name, when the address gives one.
        user: Option<String>,
        /// ssh's words (`Permission denied (publickey)`).
        detail: String,
    },
    /// The host name does not resolve.
    #[error("ssh cannot resolve the host name {host} (check the address)")]
    UnknownHost {
        /// The host.
        host: String,
    },
    /// No ssh server answered: refused, unreachable, timed out.
    #[error("ssh cannot reach {host}: {detail} (is sshd running there, on that port?)")]
    Unreachable {
        /// The host.
        host: String,
        /// ssh's words.
        detail: String,
    },
    /// The login worked, but the remote shell has no such command.
    #[error("`{program}` is not found on {host} ({hint})")]
    RemoteCommandMissing {
        /// The host.
        host: String,
        /// The remote command's program.
        program: String,
        /// What to install or change.
        hint: &'static str,
    },
    /// The remote command ran and failed before the daemon answered.
    #[error(
        "the remote command `{command}` on {host} failed{}: {detail} (is the daemon running there, at the address that command dials?)",
        status.map(|s| format!(" with exit status {s}")).unwrap_or_default()
    )]
    RemoteFailed {
        /// The host.
        host: String,
        /// The remote command.
        command: String,
        /// Its exit status, when it exited.
        status: Option<i32>,
        /// The last line it wrote to stderr.
        detail: String,
    },
    /// The remote command wrote text where the daemon's HTTP/2 belongs.
    #[error(
        "the remote command on {host} printed {text:?} instead of the daemon's HTTP/2 stream (a shell startup file that prints? the command must write nothing else to stdout)"
    )]
    NotHttp2 {
        /// The host.
        host: String,
        /// The start of what it printed.
        text: String,
    },
    /// A socket path in the address and a remote command of one's own: the
    /// socket would be silently ignored.
    #[error(
        "the address names the socket {socket} and a remote command is set; the socket applies only to the default `buildctl dial-stdio` (drop it from the address and put the daemon's address in the remote command)"
    )]
    SocketWithRemoteCommand {
        /// The socket path of the address.
        socket: String,
    },
    /// ssh failed in another way.
    #[error("ssh to {host} failed: {detail}")]
    Failed {
        /// The host.
        host: String,
        /// ssh's last words, or its exit status.
        detail: String,
    },
    /// Reading or writing the ssh client's pipes failed.
    #[error("ssh to {host}: {source}")]
    Io {
        /// The host.
        host: String,
        /// The pipe error.
        #[source]
        source: io::Error,
    },
}

/// Where the remote command came from, for the hint when it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `buildctl dial-stdio`.
    Default,
    /// `RBUILD_SSH_REMOTE_COMMAND`.
    Env,
    /// [`SshOptions::remote_command`](super::SshOptions::remote_command).
    Option,
}

/// What a failure is told against.
pub(crate) struct Attempt<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
    pub user: Option<&'a str>,
    /// The local program's name, as the user gave it.
    pub local_program: &'a str,
    pub remote_command: &'a str,
    pub origin: Origin,
}

impl Attempt<'_> {
    /// What the user types to log in by hand.
    fn login(&self) -> String {
        let mut s = String::from("ssh ");
        if let Some(port) = self.port {
            s.push_str(&format!("-p {port} "));
        }
        if let Some(user) = self.user {
            s.push_str(&format!("{user}@"));
        }
        s.push_str(self.host);
        s
    }

    /// The host's name in known_hosts.
    fn known_hosts_entry(&self) -> String {
        match self.port {
            Some(port) if port != 22 => format!("[{}]:{port}", self.host),
            _ => self.host.to_string(),
        }
    }

    fn remote_program(&self) -> &str {
        self.remote_command
            .split_whitespace()
            .next()
            .unwrap_or(self.remote_command)
    }

    /// The failure of a client that ended before the daemon said anything.
    pub(crate) fn classify(&self, status: Option<i32>, stderr: &str) -> SshError {
        let host = self.host.to_string();
        let lines: Vec<&str> = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let find = |needle: &str| lines.iter().find(|l| l.contains(needle)).copied();
        let last = lines
            .last()
            .map(|l| bounded(l))
            .unwrap_or_else(|| match status {
                Some(s) => format!("it exited with status {s} before the daemon answered"),
                None => "it was stopped before the daemon answered".to_string(),
            });
        if find("IDENTIFICATION HAS CHANGED").is_some()
            || find("has changed and you have").is_some()
        {
            return SshError::HostKeyChanged {
                host,
                entry: self.known_hosts_entry(),
            };
        }
        if find("Host key verification failed").is_some() {
            return SshError::UnknownHostKey {
                host,
                login: self.login(),
            };
        }
        if let Some(line) = find("Permission denied (") {
            // `user@host: Permission denied (publickey).`
            let detail = line.rsplit_once(": ").map_or(line, |(_, d)| d);
            return SshError::LoginRefused {
                host,
                user: self.user.map(str::to_string),
                detail: detail.trim_end_matches('.').to_string(),
            };
        }
        if find("Could not resolve hostname").is_some() {
            return SshError::UnknownHost { host };
        }
        for cause in [
            "Connection refused",
            "Connection timed out",
            "No route to host",
            "Network is unreachable",
        ] {
            if find(cause).is_some() {
                return SshError::Unreachable {
                    host,
                    detail: cause.to_string(),
                };
            }
        }
        // A shell wrapper (RBUILD_SSH_COMMAND with shell syntax) that finds
        // no ssh: `sh: 1: PROG: not found`, status 127 like a remote miss.
        let local_missing = format!("{}: not found", self.local_program);
        if status == Some(127)
            && find(&local_missing).is_some()
            && self.local_program != self.remote_program()
        {
            return SshError::NoClient {
                program: self.local_program.to_string(),
            };
        }
        if status == Some(127) {
            return SshError::RemoteCommandMissing {
                host,
                program: self.remote_program().to_string(),
                hint: match self.origin {
                    Origin::Default => {
                        "install BuildKit's buildctl there, or set RBUILD_SSH_REMOTE_COMMAND, e.g. to `rbuild dial-stdio` where rbuild is installed"
                    }
                    Origin::Env => "check RBUILD_SSH_REMOTE_COMMAND",
                    Origin::Option => "check the remote command set for this node",
                },
            };
        }
        match status {
            // ssh's own failures exit with 255; anything else is the remote
            // command's status.
            Some(255) | None => SshError::Failed { host, detail: last },
            Some(s) => SshError::RemoteFailed {
                host,
                command: self.remote_command.to_string(),
                status: Some(s),
                detail: last,
            },
        }
    }
}

/// One line of someone else's text, short enough for an error message.
pub(crate) fn bounded(line: &str) -> String {
    const MAX: usize = 300;
    let line = line.trim();
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(origin: Origin) -> Attempt<'static> {
        Attempt {
            host: "10.0.0.7",
            port: Some(2222),
            user: Some("ci"),
            local_program: "ssh",
            remote_command: "buildctl dial-stdio",
            origin,
        }
    }

    fn told(status: Option<i32>, stderr: &str) -> String {
        attempt(Origin::Default)
            .classify(status, stderr)
            .to_string()
    }

    // The sentences below are OpenSSH 9.2p1's, as seen against Debian's sshd.
    #[test]
    fn host_key_problems_say_how_to_record_the_key() {
        let err = told(Some(255), "Host key verification failed.\r\n");
        assert!(err.contains("10.0.0.7 is not in known_hosts"), "{err}");
        assert!(err.contains("`ssh -p 2222 ci@10.0.0.7`"), "{err}");
        let banner = "@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
            Host key for [10.0.0.7]:2222 has changed and you have requested strict checking.\n\
            Host key verification failed.\n";
        let err = told(Some(255), banner);
        assert!(err.contains("ssh-keygen -R '[10.0.0.7]:2222'"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn login_and_network_failures() {
        let err = told(Some(255), "ci@10.0.0.7: Permission denied (publickey).\n");
        assert!(
            err.starts_with("10.0.0.7 refused the login as ci: Permission denied (publickey) ("),
            "{err}"
        );
        let err = told(
            Some(255),
            "ssh: connect to host 10.0.0.7 port 2222: Connection refused\n",
        );
        assert!(
            err.contains("cannot reach 10.0.0.7: Connection refused"),
            "{err}"
        );
        let err = told(
            Some(255),
            "ssh: Could not resolve hostname 10.0.0.7: Name or service not known\n",
        );
        assert!(
            err.contains("cannot resolve the host name 10.0.0.7"),
            "{err}"
        );
        let err = told(
            Some(255),
            "kex_exchange_identification: read: Connection reset by peer\n",
        );
        assert!(
            err.starts_with("ssh to 10.0.0.7 failed: kex_exchange"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_remote_command_names_where_it_came_from() {
        let err = told(Some(127), "bash: buildctl: command not found\n");
        assert!(
            err.starts_with("`buildctl` is not found on 10.0.0.7"),
            "{err}"
        );
        assert!(err.contains("RBUILD_SSH_REMOTE_COMMAND"), "{err}");
        let custom = Attempt {
            remote_command: "/opt/rbuild dial-stdio",
            origin: Origin::Option,
            ..attempt(Origin::Option)
        };
        let err = custom
            .classify(Some(127), "sh: 1: /opt/rbuild: not found")
            .to_string();
        assert!(
            err.contains("`/opt/rbuild`") && err.contains("this node"),
            "{err}"
        );
        let wrapped = Attempt {
            local_program: "/opt/ssh",
            ..attempt(Origin::Default)
        };
        let err = wrapped
            .classify(Some(127), "sh: 1: /opt/ssh: not found")
            .to_string();
        assert!(
            err.contains("ssh client \"/opt/ssh\" was not found"),
            "{err}"
        );
    }

    #[test]
    fn a_failing_remote_command_shows_its_last_words() {
        let err = told(
            Some(1),
            "time=x level=debug msg=starting\nerror: dial unix /run/buildkit/buildkitd.sock: connect: no such file or directory\n",
        );
        assert!(
            err.contains(
                "`buildctl dial-stdio` on 10.0.0.7 failed with exit status 1: error: dial unix"
            ),
            "{err}"
        );
        let err = told(Some(3), "");
        assert!(err.contains("exited with status 3"), "{err}");
        assert_eq!(bounded(&"x".repeat(400)).chars().count(), 301);
    }
}
