//! Build secrets: the `--secret` flag and the `Secrets.GetSecret` service the
//! daemon calls for `RUN --mount=type=secret`.
//!
//! Every source is read once, before the build starts ([`load`]), so a missing
//! file or unset variable fails fast with the secret's id instead of surfacing
//! as a mount error deep in a step. Values live in [`SecretValue`], whose
//! `Debug` is redacted; nothing here logs a value.
//!
//! Follows buildx `util/buildflags/secrets.go` (flag syntax) and buildkit
//! `session/secrets/secretsprovider` (`store.go`, `secretsprovider.go`).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use crate::proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use crate::spec::{self, SpecError};

/// The method names to list in the session header
/// (`/moby.buildkit.secrets.v1.Secrets/<m>`).
pub const METHODS: &[&str] = &["GetSecret"];

/// The Go provider's cap (`secretsprovider.MaxSecretSize`); the daemon mounts
/// secrets on tmpfs, so larger values are almost certainly a wrong `src`.
pub const MAX_SECRET_SIZE: usize = 500 * 1024;

const FLAG: &str = "secret";

/// Why a secret cannot be used; no variant holds the secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The spec itself is malformed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Its file cannot be read.
    #[error("secret {id:?}: cannot read {}: {source}", path.display())]
    Read {
        /// The secret's id.
        id: String,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Its environment variable is not set.
    #[error("secret {id:?}: environment variable {var} is not set")]
    EnvUnset {
        /// The secret's id.
        id: String,
        /// The variable.
        var: String,
    },
    /// Its value is over the size BuildKit accepts.
    #[error("secret {id:?}: {from} is larger than the {} KiB limit", MAX_SECRET_SIZE / 1024)]
    TooBig {
        /// The secret's id.
        id: String,
        /// Where the value came from (`file PATH`, `$VAR`).
        from: String,
    },
    /// Two secrets have one id.
    #[error("secret {id:?} is given twice")]
    Duplicate {
        /// The id.
        id: String,
    },
}

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// The contents of this file.
    File(PathBuf),
    /// The value of this environment variable.
    Env(String),
    /// Only `id` was given: the environment variable named like the id if it
    /// is set, else the file named like it (buildkit `store.go`, `NewStore`).
    Implicit,
}

/// One build secret, as buildx's `id=ID[,src=PATH|,env=VAR][,type=file|env]`
/// describes it; its value is read when the build starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    /// The id `RUN --mount=type=secret,id=ID` asks for.
    pub id: String,
    /// Where its value comes from.
    pub source: SecretSource,
}

impl SecretSpec {
    /// Parses buildx's syntax. `source` is an alias of `src`; with
    /// `type=env`, `src` names the variable.
    ///
    /// # Errors
    ///
    /// [`SecretError::Spec`] when `input` is not `key=value` CSV, has no `id`, gives `src`
    /// twice or both `src` and `env`, or names an unknown attribute or type.
    pub fn parse(input: &str) -> Result<SecretSpec, SecretError> {
        let (s, bare) = spec::parse(FLAG, input)?;
        let err = |reason: String| SecretError::Spec(SpecError::new(FLAG, input, reason));
        if let Some(field) = bare.first() {
            return Err(err(format!("{field:?} must be a key=value pair")));
        }
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for (key, value) in s.attrs {
            match key.as_str() {
                "id" => id = Some(value),
                "src" | "source" if src.is_some() => {
                    return Err(err("src and source name the same thing".into()));
                }
                "src" | "source" => src = Some(value),
                "env" => env = Some(value),
                _ => {
                    return Err(err(format!(
                        "unknown attribute {key:?} (known: id, src, env, type)"
                    )));
                }
            }
        }
        let id = match id {
            Some(id) if !id.is_empty() => id,
            _ => return Err(err("id=... is required".into())),
        };
        let source = match (s.kind.as_deref(), src, env) {
            (_, Some(_), Some(_)) => {
                return Err(err("give either src or env, not both".into()));
            }
            (Some("env"), Some(var), None) | (Some("env") | None, None, Some(var)) => {
                SecretSource::Env(var)
            }
            (Some("env"), None, None) => SecretSource::Env(id.clone()),
            (Some("file") | None, Some(path), None) => SecretSource::File(PathBuf::from(path)),
            (Some("file"), None, None) => SecretSource::File(PathBuf::from(&id)),
            (Some("file"), None, Some(_)) => {
                return Err(err("type=file takes src, not env".into()));
            }
            (None, None, None) => SecretSource::Implicit,
            (Some(other), _, _) => {
                return Err(err(format!(
                    "unsupported type {other:?} (known: file, env)"
                )));
            }
        };
        if matches!(&source, SecretSource::Env(v) if v.is_empty())
            || matches!(&source, SecretSource::File(p) if p.as_os_str().is_empty())
        {
            return Err(err("the source is empty".into()));
        }
        Ok(SecretSpec { id, source })
    }
}

/// A secret's bytes. `Debug` shows only the length so a stray `{:?}` in a log
/// or error cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Bytes);

impl SecretValue {
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<redacted, {} bytes>)", self.0.len())
    }
}

/// All secrets of one build, read up front. `Debug` lists ids only.
#[derive(Clone, Debug, Default)]
pub struct SecretStore {
    values: HashMap<String, SecretValue>,
}

impl SecretStore {
    pub fn get(&self, id: &str) -> Option<&SecretValue> {
        self.values.get(id)
    }
}

/// Reads every source now, from the process environment and file system.
pub fn load(specs: &[SecretSpec]) -> Result<SecretStore, SecretError> {
    load_with(specs, |var| std::env::var_os(var))
}

/// [`load`] with the environment as a parameter, so tests need not mutate the
/// process environment (unsafe in edition 2024 and racy across tests).
fn load_with(
    specs: &[SecretSpec],
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<SecretStore, SecretError> {
    let mut values = HashMap::new();
    for s in specs {
        let bytes = match &s.source {
            SecretSource::File(path) => read_file(&s.id, path)?,
            SecretSource::Env(var) => from_env(&s.id, var, &env)?,
            SecretSource::Implicit => match env(&s.id) {
                Some(value) => checked(&s.id, &s.id, value.into_encoded_bytes())?,
                None => read_file(&s.id, Path::new(&s.id))?,
            },
        };
        if values
            .insert(s.id.clone(), SecretValue(Bytes::from(bytes)))
            .is_some()
        {
            return Err(SecretError::Duplicate { id: s.id.clone() });
        }
    }
    Ok(SecretStore { values })
}

fn from_env(
    id: &str,
    var: &str,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<u8>, SecretError> {
    // Unlike the Go provider (which sends ""), an unset variable is an error:
    // it is nearly always a typo or a missing export in CI.
    match env(var) {
        Some(value) => checked(id, var, value.into_encoded_bytes()),
        None => Err(SecretError::EnvUnset {
            id: id.to_string(),
            var: var.to_string(),
        }),
    }
}

fn read_file(id: &str, path: &Path) -> Result<Vec<u8>, SecretError> {
    let read_err = |source| SecretError::Read {
        id: id.to_string(),
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    // One byte past the cap tells "too big" apart from "exactly at the cap"
    // without trusting the size in the metadata (pipes, /proc files).
    file.take(MAX_SECRET_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    checked(id, &path.display().to_string(), bytes)
}

fn checked(id: &str, from: &str, bytes: Vec<u8>) -> Result<Vec<u8>, SecretError> {
    if bytes.len() > MAX_SECRET_SIZE {
        return Err(SecretError::TooBig {
            id: id.to_string(),
            from: from.to_string(),
        });
    }
    Ok(bytes)
}

/// `Secrets.GetSecret` over a [`SecretStore`].
#[derive(Clone, Debug)]
pub struct SecretsService {
    store: Arc<SecretStore>,
}

impl SecretsService {
    pub fn new(store: SecretStore) -> Self {
        Self {
            store: Arc::new(store),
        }
    }

    /// The tonic service, ready for the session's registry.
    pub fn into_server(self) -> SecretsServer<SecretsService> {
        SecretsServer::new(self)
    }
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        match self.store.get(&id) {
            Some(value) => {
                tracing::debug!(id = %id, bytes = value.len(), "secret sent");
                Ok(Response::new(GetSecretResponse {
                    data: value.0.clone(),
                }))
            }
            // NotFound, not another code: upstream session/secrets/secrets.go
            // turns it into ErrNotFound, which optional secret mounts
            // (solver/llbsolver/mounts/mount.go) and the git source's
            // GIT_AUTH_TOKEN probes (source/git/source.go) treat as "absent".
            None => {
                tracing::debug!(id = %id, "secret not configured");
                Err(Status::not_found(format!("secret {id} not found")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> SecretSource {
        SecretSource::File(PathBuf::from(p))
    }

    fn env(v: &str) -> SecretSource {
        SecretSource::Env(v.to_string())
    }

    #[test]
    fn parses_buildx_syntax() {
        let cases = [
            ("id=a,src=/p", "a", file("/p")),
            ("id=a,source=/p", "a", file("/p")),
            ("id=a,env=VAR", "a", env("VAR")),
            ("type=env,id=a", "a", env("a")),
            ("type=env,id=a,src=VAR", "a", env("VAR")),
            ("type=file,id=a", "a", file("a")),
            ("type=file,id=a,src=/p", "a", file("/p")),
            ("ID=a,SRC=/p", "a", file("/p")),
            ("id=a", "a", SecretSource::Implicit),
            ("\"id=a\",\"src=/x,y\"", "a", file("/x,y")),
        ];
        for (input, id, source) in cases {
            let got = SecretSpec::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.id, id, "{input}");
            assert_eq!(got.source, source, "{input}");
        }
    }

    #[test]
    fn rejects_bad_specs() {
        for (input, reason) in [
            ("src=/p", "id="),
            ("id=,src=/p", "id="),
            ("id=a,src=/p,env=V", "not both"),
            ("id=a,src=/p,source=/q", "same thing"),
            ("id=a,type=ssh", "unsupported type"),
            ("id=a,type=file,env=V", "type=file"),
            ("id=a,mode=0400", "unknown attribute"),
            ("id=a,bare", "key=value"),
            ("id=a,env=", "empty"),
        ] {
            let err = SecretSpec::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
    }

    #[test]
    fn loads_files_and_env_with_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, "file-value").unwrap();
        let env = |var: &str| (var == "SET").then(|| OsString::from("env-value"));
        let specs = [
            SecretSpec::parse(&format!("id=f,src={}", path.display())).unwrap(),
            SecretSpec::parse("id=e,env=SET").unwrap(),
            SecretSpec::parse("id=SET").unwrap(),
        ];
        let store = load_with(&specs, env).unwrap();
        assert_eq!(store.get("f").unwrap().0, "file-value");
        assert_eq!(store.get("e").unwrap().0, "env-value");
        assert_eq!(store.get("SET").unwrap().0, "env-value");

        let missing = [SecretSpec::parse("id=tok,env=UNSET").unwrap()];
        let err = load_with(&missing, env).unwrap_err().to_string();
        assert!(err.contains("\"tok\"") && err.contains("UNSET"), "{err}");
        let missing = [SecretSpec::parse("id=k,src=/nonexistent/key").unwrap()];
        let err = load_with(&missing, env).unwrap_err().to_string();
        assert!(
            err.contains("\"k\"") && err.contains("/nonexistent/key"),
            "{err}"
        );
        let twice = [specs[1].clone(), specs[1].clone()];
        assert!(matches!(
            load_with(&twice, env),
            Err(SecretError::Duplicate { .. })
        ));
    }

    #[test]
    fn caps_size_at_500_kib() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("at");
        let over = dir.path().join("over");
        std::fs::write(&at, vec![b'x'; MAX_SECRET_SIZE]).unwrap();
        std::fs::write(&over, vec![b'x'; MAX_SECRET_SIZE + 1]).unwrap();
        let spec = |p: &Path| SecretSpec {
            id: "s".into(),
            source: SecretSource::File(p.to_path_buf()),
        };
        assert!(load_with(&[spec(&at)], |_| None).is_ok());
        assert!(matches!(
            load_with(&[spec(&over)], |_| None),
            Err(SecretError::TooBig { .. })
        ));
    }

    #[test]
    fn debug_never_shows_values() {
        let store = load_with(&[SecretSpec::parse("id=a,env=V").unwrap()], |_| {
            Some(OsString::from("hunter2-very-secret"))
        })
        .unwrap();
        let shown = format!("{store:?} {:?}", SecretsService::new(store.clone()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted, 19 bytes"), "{shown}");
    }

    #[tokio::test]
    async fn unknown_ids_are_not_found() {
        let store = load_with(&[SecretSpec::parse("id=a,env=V").unwrap()], |_| {
            Some(OsString::from("v"))
        })
        .unwrap();
        let service = SecretsService::new(store);
        let ask = |id: &str| {
            Request::new(GetSecretRequest {
                id: id.into(),
                annotations: Default::default(),
            })
        };
        let found = service.get_secret(ask("a")).await.unwrap();
        assert_eq!(found.into_inner().data, "v");
        let status = service.get_secret(ask("GIT_AUTH_TOKEN")).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    }
}
