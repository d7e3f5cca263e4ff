//! What the `gha` and `s3` cache backends take from the client's
//! environment when an entry does not say it itself, as buildx fills them
//! in (build/opt.go, CreateCaches): the GitHub Actions runtime token and
//! cache service URLs, and AWS credentials from the standard variables or
//! the shared credentials and config files.
//!
//! Nothing here is read behind the caller's back: a program builds a
//! [`CacheEnv`] from its own values, or asks for the process environment
//! with [`CacheEnv::from_env`] (what the CLI does), and hands it to
//! [`Build::cache_env`](crate::Build::cache_env).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The values cache backends take from the environment. `Debug` hides the
/// token and the keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CacheEnv {
    /// The GitHub Actions cache service, for `type=gha`.
    pub gha: GhaRuntime,
    /// AWS credentials, for `type=s3`.
    pub aws: Option<AwsCredentials>,
}

/// The GitHub Actions runtime a job exposes to actions (a `run:` step sees
/// it only when an action exports it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GhaRuntime {
    /// `ACTIONS_RUNTIME_TOKEN`: the cache service's bearer token (a JWT).
    pub token: Option<String>,
    /// `ACTIONS_CACHE_URL`: the cache service (API v1).
    pub cache_url: Option<String>,
    /// `ACTIONS_RESULTS_URL`: the results service (cache API v2, and the
    /// v1 URL when `ACTIONS_CACHE_URL` is unset).
    pub results_url: Option<String>,
    /// `ACTIONS_CACHE_SERVICE_V2` is true: the job uses cache API v2.
    pub service_v2: bool,
}

/// Static AWS credentials. `Debug` hides all three values.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl CacheEnv {
    /// Reads the process environment and, for AWS credentials, the shared
    /// files it points at (see [`CacheEnv::from_vars`]).
    pub fn from_env() -> CacheEnv {
        CacheEnv::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the values through `var` (an environment lookup; empty values
    /// count as unset): `ACTIONS_RUNTIME_TOKEN`, `ACTIONS_CACHE_URL`,
    /// `ACTIONS_RESULTS_URL`, `ACTIONS_CACHE_SERVICE_V2`, and AWS
    /// credentials as [`AwsCredentials::lookup`] finds them.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> CacheEnv {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        // Go's strconv.ParseBool, as buildx reads it.
        let service_v2 = get("ACTIONS_CACHE_SERVICE_V2")
            .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
        CacheEnv {
            gha: GhaRuntime {
                token: get("ACTIONS_RUNTIME_TOKEN"),
                cache_url: get("ACTIONS_CACHE_URL"),
                results_url: get("ACTIONS_RESULTS_URL"),
                service_v2,
            },
            aws: AwsCredentials::lookup(&get),
        }
    }
}

impl AwsCredentials {
    /// Credentials from a key pair.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> AwsCredentials {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// With the session token of temporary credentials.
    pub fn with_session_token(mut self, token: impl Into<String>) -> AwsCredentials {
        self.session_token = Some(token.into());
        self
    }

    /// The static credentials the AWS SDK's default chain would find first:
    /// `AWS_ACCESS_KEY_ID` (or `AWS_ACCESS_KEY`) with
    /// `AWS_SECRET_ACCESS_KEY` (or `AWS_SECRET_KEY`) and
    /// `AWS_SESSION_TOKEN`; else the profile `AWS_PROFILE` (or
    /// `AWS_DEFAULT_PROFILE`, or `default`) in the shared credentials file
    /// (`AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`), then in
    /// the config file (`AWS_CONFIG_FILE`, or `~/.aws/config`). Roles, SSO,
    /// credential processes and instance metadata are not consulted.
    pub fn lookup(var: &dyn Fn(&str) -> Option<String>) -> Option<AwsCredentials> {
        let first = |names: &[&str]| names.iter().find_map(|n| var(n));
        let id = first(&["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]);
        let secret = first(&["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"]);
        if let (Some(id), Some(secret)) = (id, secret) {
            return Some(AwsCredentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: var("AWS_SESSION_TOKEN"),
            });
        }
        let profile = first(&["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]);
        let profile = profile.as_deref().unwrap_or("default");
        let home = var("HOME").map(PathBuf::from);
        let file = |name: &str, default: &str| {
            var(name)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let mut keys = BTreeMap::new();
        // The config file names its sections `profile NAME` (but for the
        // default); the credentials file's values win over it.
        if let Some(path) = file("AWS_CONFIG_FILE", "config") {
            let sections = [format!("profile {profile}"), profile.to_string()];
            let allowed = if profile == "default" { 2 } else { 1 };
            for section in &sections[..allowed] {
                keys.extend(read_section(&path, section));
            }
        }
        if let Some(path) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            keys.extend(read_section(&path, profile));
        }
        let mut take = |key: &str| keys.remove(key).filter(|v| !v.is_empty());
        let (id, secret) = (take("aws_access_key_id"), take("aws_secret_access_key"));
        match (id, secret) {
            (Some(id), Some(secret)) => Some(AwsCredentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: take("aws_session_token"),
            }),
            _ => {
                tracing::debug!(
                    profile,
                    "no static AWS credentials in the environment or shared files"
                );
                None
            }
        }
    }
}

/// The `key = value` lines of `[section]` in an AWS shared file; a missing
/// or unreadable file has none.
fn read_section(path: &Path, section: &str) -> BTreeMap<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => ini_section(&text, section),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(path = %path.display(), error = %e, "AWS shared file unreadable");
            }
            BTreeMap::new()
        }
    }
}

fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.split_whitespace().eq(section.split_whitespace());
            continue;
        }
        if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            out.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    out
}

impl std::fmt::Debug for CacheEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheEnv")
            .field("gha", &self.gha)
            .field("aws", &self.aws)
            .finish()
    }
}

impl std::fmt::Debug for GhaRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GhaRuntime")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("cache_url", &self.cache_url)
            .field("results_url", &self.results_url)
            .field("service_v2", &self.service_v2)
            .finish()
    }
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsCredentials(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn gha_runtime_from_the_job_variables() {
        let env = CacheEnv::from_vars(vars(&[
            ("ACTIONS_RUNTIME_TOKEN", "tok"),
            ("ACTIONS_RESULTS_URL", "https://results/"),
            ("ACTIONS_CACHE_SERVICE_V2", "True"),
            ("ACTIONS_CACHE_URL", ""),
        ]));
        assert_eq!(env.gha.token.as_deref(), Some("tok"));
        assert_eq!(env.gha.cache_url, None, "empty is unset");
        assert_eq!(env.gha.results_url.as_deref(), Some("https://results/"));
        assert!(env.gha.service_v2);
        assert!(
            !CacheEnv::from_vars(vars(&[("ACTIONS_CACHE_SERVICE_V2", "no")]))
                .gha
                .service_v2
        );
        let shown = format!("{env:?}");
        assert!(!shown.contains("tok\""), "{shown}");
    }

    #[test]
    fn aws_variables_come_before_the_shared_files() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = FILEID\naws_secret_access_key = FILESECRET\n",
        )
        .unwrap();
        let h = home.path().to_str().unwrap();
        let aws = |pairs: &[(&str, &str)]| AwsCredentials::lookup(&vars(pairs));
        let env = aws(&[
            ("HOME", h),
            ("AWS_ACCESS_KEY", "ENVID"),
            ("AWS_SECRET_ACCESS_KEY", "ENVSECRET"),
            ("AWS_SESSION_TOKEN", "ENVSESSION"),
        ])
        .unwrap();
        assert_eq!(
            env,
            AwsCredentials::new("ENVID", "ENVSECRET").with_session_token("ENVSESSION")
        );
        // Half a pair in the environment: the file's pair is used whole.
        let file = aws(&[("HOME", h), ("AWS_ACCESS_KEY_ID", "ENVID")]).unwrap();
        assert_eq!(file, AwsCredentials::new("FILEID", "FILESECRET"));
        assert_eq!(aws(&[("HOME", "/nonexistent")]), None);
        assert!(!format!("{file:?}").contains("FILE"));
    }

    #[test]
    fn aws_profiles_in_the_credentials_and_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "# comment\n[ci]\naws_access_key_id=CIID\n; other\n[default]\naws_access_key_id=DEF\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[profile ci]\nregion = eu-west-1\naws_access_key_id = CFGID\naws_secret_access_key = CFGSECRET\naws_session_token = CFGSESSION\n[ci]\naws_secret_access_key = IGNORED\n",
        )
        .unwrap();
        let (c, k) = (creds.to_str().unwrap(), config.to_str().unwrap());
        let got = AwsCredentials::lookup(&vars(&[
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_CONFIG_FILE", k),
            ("AWS_DEFAULT_PROFILE", "ci"),
        ]))
        .unwrap();
        // The credentials file's key id wins; the rest is the config's.
        assert_eq!(
            got,
            AwsCredentials::new("CIID", "CFGSECRET").with_session_token("CFGSESSION")
        );
        let none = AwsCredentials::lookup(&vars(&[
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_CONFIG_FILE", k),
        ]));
        assert_eq!(none, None, "the default profile has no secret");
    }
}
