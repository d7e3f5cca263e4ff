//! The Docker CLI config file (`config.json`): which credentials it holds and
//! which credential helper answers for which registry.
//!
//! Follows docker/cli `cli/config/configfile/file.go` (`GetAuthConfig`,
//! `GetCredentialsStore`) and `cli/config/credentials/file_store.go`
//! (matching `auths` keys by host), as BuildKit's `session/auth/authprovider`
//! uses them.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::{Credentials, CredentialsError, helper};

/// The key Docker Hub's credentials are stored under.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// The canonical host every Docker Hub alias normalizes to.
const DOCKER_HUB_HOST: &str = "docker.io";

/// Credentials and helper settings from a Docker config file. Missing file
/// means anonymous access everywhere.
#[derive(Clone, Default)]
pub struct DockerConfig {
    /// Inline credentials by normalized host (see [`normalize_host`]).
    auths: HashMap<String, Credentials>,
    /// `credsStore`: the helper for every registry without its own.
    creds_store: Option<String>,
    /// `credHelpers` by normalized host.
    cred_helpers: HashMap<String, String>,
    /// Where to look for `docker-credential-*`; None = this process's PATH.
    helper_path: Option<OsString>,
    /// The file this came from, for error messages.
    source: Option<PathBuf>,
}

/// The file's fields we read; the rest of the config is ignored.
#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    auths: HashMap<String, RawAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl DockerConfig {
    /// Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    ///
    /// # Errors
    ///
    /// As [`DockerConfig::from_file`].
    pub fn load() -> Result<DockerConfig, CredentialsError> {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => match std::env::var_os("HOME") {
                Some(home) if !home.is_empty() => PathBuf::from(home).join(".docker"),
                // No home and no DOCKER_CONFIG: nothing to read.
                _ => return Ok(DockerConfig::default()),
            },
        };
        DockerConfig::from_file(&dir.join("config.json"))
    }

    /// Reads one config file; a missing file is an empty config.
    ///
    /// # Errors
    ///
    /// [`CredentialsError::Read`] when the file exists but cannot be read;
    /// [`CredentialsError::Invalid`] when it is not a valid config.
    pub fn from_file(path: &Path) -> Result<DockerConfig, CredentialsError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig::default());
            }
            Err(source) => {
                return Err(CredentialsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut config =
            DockerConfig::parse(&bytes).map_err(|reason| CredentialsError::Invalid {
                path: path.to_path_buf(),
                reason,
            })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses the contents of a config file. The error never quotes the
    /// file, which holds secrets.
    ///
    /// # Errors
    ///
    /// A message saying what is malformed (the JSON's position, or an `auth` value that is
    /// not base64 `user:password`), never quoting the file.
    pub fn parse(bytes: &[u8]) -> Result<DockerConfig, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(DockerConfig::default());
        }
        // serde_json's messages can quote values ("invalid type: string
        // \"...\""), so only the position is kept.
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "not a valid config ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })?;
        let mut auths = HashMap::new();
        for (key, entry) in raw.auths {
            if let Some(creds) = entry.credentials(&key)? {
                auths.insert(normalize_host(&key), creds);
            }
        }
        Ok(DockerConfig {
            auths,
            creds_store: raw.creds_store.filter(|s| !s.is_empty()),
            cred_helpers: raw
                .cred_helpers
                .into_iter()
                .filter(|(_, helper)| !helper.is_empty())
                .map(|(host, helper)| (normalize_host(&host), helper))
                .collect(),
            helper_path: None,
            source: None,
        })
    }

    /// Looks for credential helpers only in `path` (a PATH-style list)
    /// instead of this process's PATH.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> DockerConfig {
        self.helper_path = Some(path.into());
        self
    }

    /// The credential helper that answers for `host`, if any: its
    /// `credHelpers` entry, else `credsStore`.
    pub fn helper_for(&self, host: &str) -> Option<&str> {
        self.cred_helpers
            .get(&normalize_host(host))
            .or(self.creds_store.as_ref())
            .map(String::as_str)
    }

    /// Inline credentials from `auths` for `host`.
    pub fn inline(&self, host: &str) -> Option<&Credentials> {
        self.auths.get(&normalize_host(host))
    }

    /// What to send for `host`: the helper's answer if one is configured
    /// (falling back to `auths` when it has none), else the `auths` entry.
    /// Ok(None) = anonymous.
    ///
    /// # Errors
    ///
    /// [`CredentialsError::Helper`] when the configured credential helper fails other than
    /// with "credentials not found" (which falls back to `auths`).
    pub async fn credentials(&self, host: &str) -> Result<Option<Credentials>, CredentialsError> {
        if let Some(name) = self.helper_for(host) {
            let server = helper_server(host);
            if let Some(creds) = helper::get(name, &server, self.helper_path.as_ref()).await? {
                return Ok(Some(creds));
            }
        }
        Ok(self.inline(host).cloned())
    }

    /// True when no registry has credentials or a helper configured.
    pub fn is_empty(&self) -> bool {
        self.auths.is_empty() && self.creds_store.is_none() && self.cred_helpers.is_empty()
    }
}

impl std::fmt::Debug for DockerConfig {
    /// Names hosts and helpers, never credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hosts: Vec<&String> = self.auths.keys().collect();
        hosts.sort();
        f.debug_struct("DockerConfig")
            .field("source", &self.source)
            .field("auths", &hosts)
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish_non_exhaustive()
    }
}

impl RawAuth {
    /// What BuildKit's authprovider sends for this entry: an identity token
    /// wins over a password; `auth` fills what `username`/`password` leave.
    fn credentials(self, key: &str) -> Result<Option<Credentials>, String> {
        if let Some(token) = self.identitytoken.filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::identity_token(token)));
        }
        let (mut username, mut password) = (self.username, self.password);
        if let Some(auth) = self.auth.filter(|a| !a.is_empty()) {
            let (user, pass) = decode_auth(&auth).ok_or_else(|| {
                format!("the \"auth\" entry for {key:?} is not base64 of user:password")
            })?;
            username.get_or_insert(user);
            password.get_or_insert(pass);
        }
        let username = username.unwrap_or_default();
        let password = password.unwrap_or_default();
        if username.is_empty() && password.is_empty() {
            // `docker login` with a credsStore leaves empty entries behind.
            return Ok(None);
        }
        Ok(Some(Credentials::basic(username, password)))
    }
}

/// `base64(user:password)`; Docker accepts it with or without padding.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    let auth = auth.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(auth))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.trim_end_matches('\0').to_string()))
}

/// `host[:port]` of a registry name or config key, lowercased, with every
/// Docker Hub alias folded into one: keys may be URLs
/// (`https://index.docker.io/v1/`, `http://host:5000/v2`) or bare hosts.
pub fn normalize_host(name: &str) -> String {
    let name = name.trim();
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let host = name
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_HOST.to_string(),
        _ => host,
    }
}

/// The server address a credential helper is asked about: Docker Hub's
/// historical URL for the Hub (what `docker login` stored), else the host.
pub fn helper_server(host: &str) -> String {
    let normalized = normalize_host(host);
    if normalized == DOCKER_HUB_HOST {
        DOCKER_HUB_SERVER.to_string()
    } else {
        normalized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn hosts_normalize_to_host_and_port() {
        for (input, want) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("docker.io", "docker.io"),
            ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
            ("Registry.Example.com:443", "registry.example.com:443"),
            ("ghcr.io", "ghcr.io"),
        ] {
            assert_eq!(normalize_host(input), want, "{input}");
        }
        assert_eq!(helper_server("registry-1.docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(helper_server("ghcr.io"), "ghcr.io");
    }

    #[test]
    fn auth_base64_and_url_keys() {
        let json = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "http://127.0.0.1:5000": {{"auth": "{}"}},
                "quay.io": {{"auth": ""}}
            }}}}"#,
            b64("hubuser:hub:pass"),
            b64("local:secret").trim_end_matches('='),
        );
        let config = DockerConfig::parse(json.as_bytes()).unwrap();
        let hub = config.inline("registry-1.docker.io").expect("hub creds");
        assert_eq!((hub.username(), hub.secret()), ("hubuser", "hub:pass"));
        let local = config.inline("127.0.0.1:5000").expect("local creds");
        assert_eq!((local.username(), local.secret()), ("local", "secret"));
        assert!(config.inline("quay.io").is_none(), "empty entry = none");
        assert!(config.inline("127.0.0.1:5001").is_none());
    }

    #[test]
    fn identity_token_and_plain_fields() {
        let json = br#"{"auths": {
            "a.example": {"auth": "dTpw", "identitytoken": "tok"},
            "b.example": {"username": "bob", "password": "pw"}
        }}"#;
        let config = DockerConfig::parse(json).unwrap();
        let a = config.inline("a.example").unwrap();
        assert_eq!((a.username(), a.secret()), ("", "tok"));
        let b = config.inline("b.example").unwrap();
        assert_eq!((b.username(), b.secret()), ("bob", "pw"));
    }

    #[test]
    fn helpers_by_host_then_store() {
        let json = br#"{"credsStore": "desktop",
            "credHelpers": {"https://GCR.io": "gcloud", "index.docker.io": "hub"}}"#;
        let config = DockerConfig::parse(json).unwrap();
        assert_eq!(config.helper_for("gcr.io"), Some("gcloud"));
        assert_eq!(config.helper_for("registry-1.docker.io"), Some("hub"));
        assert_eq!(config.helper_for("other.example"), Some("desktop"));
        assert!(
            DockerConfig::parse(b"{}")
                .unwrap()
                .helper_for("x")
                .is_none()
        );
    }

    #[test]
    fn errors_never_quote_the_file() {
        let bad = format!(
            r#"{{"auths": {{"h": {{"auth": "{}"}}}}}}"#,
            b64("no-colon-secret")
        );
        let err = DockerConfig::parse(bad.as_bytes()).unwrap_err();
        assert!(err.contains("\"h\""), "{err}");
        assert!(!err.contains("no-colon-secret") && !err.contains(&b64("no-colon-secret")));
        let err = DockerConfig::parse(br#"{"auths": "hunter2"}"#).unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn missing_or_empty_file_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let config = DockerConfig::from_file(&dir.path().join("config.json")).unwrap();
        assert!(config.is_empty());
        std::fs::write(dir.path().join("config.json"), "\n").unwrap();
        assert!(
            DockerConfig::from_file(&dir.path().join("config.json"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn debug_names_hosts_not_secrets() {
        let json = format!(
            r#"{{"auths": {{"h.example": {{"auth": "{}"}}}}}}"#,
            b64("u:s3cr3t")
        );
        let config = DockerConfig::parse(json.as_bytes()).unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("h.example"), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains(&b64("u:s3cr3t")),
            "{shown}"
        );
    }
}
