//! Docker credential helpers: `docker-credential-NAME get` with the server
//! address on stdin, `{"Username", "Secret"}` on stdout.
//!
//! Follows docker/docker-credential-helpers `client/client.go` (`Get`) and
//! `credentials/error.go` (the "credentials not found" message).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Credentials, CredentialsError};

/// The daemon allows about 60 s per auth call; a helper that needs more
/// (a stuck keychain prompt) should fail in time to say so.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);
/// The username helpers return for an identity token.
const TOKEN_USERNAME: &str = "<token>";
/// Helper output is a small JSON object; anything bigger is not an answer.
const MAX_OUTPUT: usize = 1 << 20;

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Asks helper `name` for `server`'s credentials. `search_path` (PATH-style)
/// replaces this process's PATH for finding the program; the helper itself
/// still runs with the inherited environment. Ok(None) = anonymous.
pub async fn get(
    name: &str,
    server: &str,
    search_path: Option<&OsString>,
) -> Result<Option<Credentials>, CredentialsError> {
    let program = format!("docker-credential-{name}");
    let fail = |reason: String| CredentialsError::Helper {
        helper: program.clone(),
        server: server.to_string(),
        reason,
    };
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(fail("not a valid helper name".into()));
    }
    let resolved = match search_path {
        Some(path) => find_in(&program, path).ok_or_else(|| fail("not found".into()))?,
        None => PathBuf::from(&program),
    };
    let mut child = spawn(&resolved)
        .await
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its
        // exit status and output below, not by this write.
        let _ = stdin.write_all(server.as_bytes()).await;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| fail(format!("no answer within {HELPER_TIMEOUT:?}")))?
        .map_err(|e| fail(format!("cannot read its answer: {e}")))?;
    if !output.status.success() {
        let said = failure_text(&output.stdout, &output.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("{} ({said})", output.status)));
    }
    if output.stdout.len() > MAX_OUTPUT {
        return Err(fail("its answer is too large".into()));
    }
    // Never quote a successful answer: it holds the secret.
    let answer: HelperAnswer = serde_json::from_slice(&output.stdout)
        .map_err(|_| fail("its answer is not {\"Username\", \"Secret\"} JSON".into()))?;
    Ok(match (answer.username.as_str(), answer.secret) {
        (_, secret) if secret.is_empty() => None,
        (TOKEN_USERNAME, secret) => Some(Credentials::identity_token(secret)),
        (username, secret) => Some(Credentials::basic(username.to_string(), secret)),
    })
}

/// Starts `program get`. A helper written a moment ago (an installer, a
/// test) can still be open for writing in a process forked meanwhile, which
/// makes exec fail with ETXTBSY for a few milliseconds: retry briefly.
async fn spawn(program: &Path) -> std::io::Result<tokio::process::Child> {
    const ETXTBSY: i32 = 26;
    let mut attempts = 0;
    loop {
        let spawned = tokio::process::Command::new(program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempts < 10 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// The first executable-looking file named `program` in a PATH-style list.
fn find_in(program: &str, search_path: &OsString) -> Option<PathBuf> {
    std::env::split_paths(search_path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What a failed helper said (helpers print errors on stdout), first line
/// only and bounded: enough to recognize "not found" or show the cause.
fn failure_text(stdout: &[u8], stderr: &[u8]) -> String {
    let text = [stdout, stderr]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "no output".into());
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A helper script in its own directory; returns that directory.
    fn fake_helper(name: &str, body: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn path_of(dir: &tempfile::TempDir) -> OsString {
        dir.path().as_os_str().to_owned()
    }

    #[tokio::test]
    async fn reads_username_and_secret_for_the_server_on_stdin() {
        let dir = fake_helper(
            "fake",
            r#"[ "$1" = get ] || exit 3
read server
printf '{"ServerURL":"%s","Username":"u-%s","Secret":"pw"}' "$server" "$server""#,
        );
        let creds = get("fake", "reg.example:5000", Some(&path_of(&dir)))
            .await
            .unwrap()
            .expect("credentials");
        assert_eq!(creds.username(), "u-reg.example:5000");
        assert_eq!(creds.secret(), "pw");
    }

    #[tokio::test]
    async fn token_username_means_identity_token() {
        let dir = fake_helper("tok", r#"echo '{"Username":"<token>","Secret":"idtok"}'"#);
        let creds = get("tok", "h", Some(&path_of(&dir)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((creds.username(), creds.secret()), ("", "idtok"));
    }

    #[tokio::test]
    async fn not_found_is_anonymous() {
        let dir = fake_helper(
            "none",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        assert!(
            get("none", "h", Some(&path_of(&dir)))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn failures_name_the_helper_but_not_the_answer() {
        let dir = fake_helper("broken", "echo 'keychain locked' >&2; exit 2");
        let err = get("broken", "h.example", Some(&path_of(&dir)))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("docker-credential-broken"), "{err}");
        assert!(
            err.contains("h.example") && err.contains("keychain locked"),
            "{err}"
        );

        let dir = fake_helper("garbled", "echo 'Secret: hunter2'");
        let err = get("garbled", "h", Some(&path_of(&dir)))
            .await
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");

        let empty = tempfile::tempdir().unwrap();
        let err = get("absent", "h", Some(&path_of(&empty)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        assert!(get("../x", "h", None).await.is_err());
    }
}
