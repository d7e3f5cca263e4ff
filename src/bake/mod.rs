//! Bake files (buildx's `docker-bake.hcl` / `.json`, and compose files) -> a
//! list of [`Build`]s.
//!
//! [`Definition::load`] reads and merges the files (later files override
//! earlier ones, attribute by attribute), evaluates variables (a variable's
//! environment value overrides its default), `${...}` templates and the
//! functions in [`SUPPORTED_FUNCTIONS`]. [`Definition::resolve`] expands
//! groups and `inherits` and applies `--set` overrides;
//! [`Definition::builds`] turns the chosen targets into typed builds that
//! `Client::build_all` runs together.
//!
//! ```
//! let def = rbuild::bake::Definition::parse(&[(
//!     "docker-bake.hcl",
//!     "variable \"TAG\" {\n default = \"1\"\n}\ntarget \"app\" {\n tags = [\"r/app:${TAG}\"]\n}\n",
//! )], |_| None)?;
//! let chosen = def.resolve(&["app".to_string()], &[])?;
//! assert_eq!(chosen[0].1.tags, ["r/app:1"]);
//! # Ok::<(), rbuild::bake::BakeError>(())
//! ```

mod compose;
mod convert;
mod eval;
mod file;
mod funcs;
mod interpolate;
mod target;
mod userfuncs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use target::Target;

use crate::buildspec::Build;

/// The functions bake files may call.
pub const SUPPORTED_FUNCTIONS: &[&str] = funcs::SUPPORTED;

/// Why a bake file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BakeError {
    /// A file cannot be read.
    #[error("cannot read bake file {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is not valid HCL, JSON or compose YAML.
    #[error("bake file {file}: {source}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's error, with its position.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file is well-formed but says something bake does not take.
    #[error("bake file {file}: {detail}")]
    File {
        /// The file.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// An expression cannot be evaluated.
    #[error("{at}: {detail}")]
    Eval {
        /// `file`, or `file:line:col` when the position is known.
        at: String,
        /// What went wrong.
        detail: String,
    },
    /// A target or group that was asked for does not exist.
    #[error("no target or group named {name:?} (known: {known})")]
    Unknown {
        /// The name.
        name: String,
        /// The targets and groups there are.
        known: String,
    },
    /// Groups or `inherits` form a cycle.
    #[error("{kind} cycle through {name:?}")]
    Cycle {
        /// `group` or `inherits`.
        kind: &'static str,
        /// Where the cycle was found.
        name: String,
    },
    /// A `--set` override is malformed.
    #[error("override {input:?}: {reason}")]
    Set {
        /// The override as given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A target's attribute cannot become a build.
    #[error("target {target:?}: {source}")]
    Target {
        /// The target.
        target: String,
        /// What is wrong: the error of the attribute's value (an output,
        /// cache, secret, SSH or attestation spec), or a message.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The merged, evaluated contents of one or more bake files.
#[derive(Clone, Debug, Default)]
pub struct Definition {
    /// Variables and their values.
    pub variables: BTreeMap<String, String>,
    /// Groups and their members (targets or other groups).
    pub groups: BTreeMap<String, Vec<String>>,
    /// Targets by name, before `inherits` is applied.
    pub targets: BTreeMap<String, Target>,
}

/// One `--set PATTERN.KEY=VALUE` override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Target name or glob (`*`, `app-*`).
    pub pattern: String,
    /// The attribute (`args.VERSION`, `tags`, `platform`, ...).
    pub key: String,
    /// Its new value.
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = BakeError;

    fn from_str(input: &str) -> Result<Override, BakeError> {
        let bad = |reason: &str| BakeError::Set {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let (lhs, value) = input
            .split_once('=')
            .ok_or_else(|| bad("expected PATTERN.KEY=VALUE"))?;
        let (pattern, key) = lhs
            .split_once('.')
            .ok_or_else(|| bad("expected PATTERN.KEY=VALUE"))?;
        if pattern.is_empty() || key.is_empty() {
            return Err(bad("expected PATTERN.KEY=VALUE"));
        }
        Ok(Override {
            pattern: pattern.to_string(),
            key: key.to_string(),
            value: value.to_string(),
        })
    }
}

/// buildx's file lookup order when no file is named: every one of these
/// that exists is read, later ones overriding earlier ones.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "docker-bake.json",
    "docker-bake.hcl",
    "docker-bake.override.json",
    "docker-bake.override.hcl",
];

impl Definition {
    /// Parses and merges `(name, text)` files in order; `env` looks up
    /// variable overrides.
    ///
    /// # Errors
    ///
    /// [`BakeError::Parse`] when a file is not valid HCL, JSON or compose YAML;
    /// [`BakeError::File`] when it holds something bake does not take; [`BakeError::Eval`]
    /// when an expression cannot be evaluated.
    pub fn parse(
        files: &[(&str, &str)],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Definition, BakeError> {
        let raw = files
            .iter()
            .map(|(name, text)| file::parse(name, text, &env))
            .collect::<Result<Vec<_>, _>>()?;
        eval::evaluate(&raw, &env)
    }

    /// Reads the files at `paths` (`-` is stdin) and parses them.
    ///
    /// # Errors
    ///
    /// [`BakeError::Read`] when a file (or stdin) cannot be read; then the errors of
    /// [`Definition::parse`].
    pub fn load(
        paths: &[PathBuf],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Definition, BakeError> {
        let mut texts = Vec::new();
        for p in paths {
            let name = p.display().to_string();
            let text = if p == Path::new("-") {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|source| {
                    BakeError::Read {
                        file: name.clone(),
                        source,
                    }
                })?;
                s
            } else {
                std::fs::read_to_string(p).map_err(|source| BakeError::Read {
                    file: name.clone(),
                    source,
                })?
            };
            texts.push((name, text));
        }
        let refs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        Definition::parse(&refs, env)
    }

    /// The targets `names` select (targets or groups; none: the `default`
    /// group), each with `inherits` applied and then `overrides`, in order
    /// and without repeats.
    ///
    /// # Errors
    ///
    /// [`BakeError::Unknown`] when a name is no target or group; [`BakeError::Cycle`] when
    /// groups, `inherits` or `target:` contexts form a cycle; [`BakeError::Target`] when a
    /// `target:` context names no target; [`BakeError::Set`] when an override does not fit
    /// its attribute or matches no selected target.
    pub fn resolve(
        &self,
        names: &[String],
        overrides: &[Override],
    ) -> Result<Vec<(String, Target)>, BakeError> {
        let names = if names.is_empty() {
            vec!["default".to_string()]
        } else {
            names.to_vec()
        };
        let mut asked: Vec<String> = Vec::new();
        for name in &names {
            self.expand(name, &mut Vec::new(), &mut asked)?;
        }
        // Targets whose results others use as contexts come along, first;
        // overrides apply before, since they may add such a context.
        let mut chosen: Vec<String> = Vec::new();
        for name in &asked {
            self.with_dependencies(name, overrides, &mut Vec::new(), &mut chosen)?;
        }
        let mut out = Vec::new();
        for name in chosen {
            let target = self.finished(&name, overrides)?;
            out.push((name, target));
        }
        for o in overrides {
            if !out.iter().any(|(n, _)| glob(&o.pattern, n)) {
                return Err(BakeError::Set {
                    input: format!("{}.{}={}", o.pattern, o.key, o.value),
                    reason: "matches no selected target".to_string(),
                });
            }
        }
        Ok(out)
    }

    fn expand(
        &self,
        name: &str,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), BakeError> {
        if let Some(members) = self.groups.get(name) {
            if path.iter().any(|p| p == name) {
                return Err(BakeError::Cycle {
                    kind: "group",
                    name: name.to_string(),
                });
            }
            path.push(name.to_string());
            for m in members {
                self.expand(m, path, out)?;
            }
            path.pop();
            return Ok(());
        }
        if self.targets.contains_key(name) {
            if !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
            return Ok(());
        }
        let known: Vec<&str> = self
            .groups
            .keys()
            .chain(self.targets.keys())
            .map(String::as_str)
            .collect();
        Err(BakeError::Unknown {
            name: name.to_string(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            },
        })
    }

    /// Target `name` with `inherits` applied, then the overrides matching it
    /// (repeating a list attribute's override appends, as buildx does).
    fn finished(&self, name: &str, overrides: &[Override]) -> Result<Target, BakeError> {
        let mut target = self.inherited(name, &mut Vec::new())?;
        target.inherits.clear();
        let mut seen: Vec<&str> = Vec::new();
        for o in overrides.iter().filter(|o| glob(&o.pattern, name)) {
            let again = seen.contains(&o.key.as_str());
            target.set(&o.key, &o.value, again)?;
            seen.push(&o.key);
        }
        Ok(target)
    }

    /// Adds `name` to `out` after the targets it takes contexts from.
    fn with_dependencies(
        &self,
        name: &str,
        overrides: &[Override],
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), BakeError> {
        if out.iter().any(|o| o == name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(BakeError::Cycle {
                kind: "target: context",
                name: name.to_string(),
            });
        }
        let target = self.finished(name, overrides)?;
        path.push(name.to_string());
        for dep in target
            .contexts
            .values()
            .filter_map(|v| v.strip_prefix("target:"))
        {
            if !self.targets.contains_key(dep) {
                return Err(BakeError::Target {
                    target: name.to_string(),
                    source: format!("context \"target:{dep}\": there is no target {dep:?}").into(),
                });
            }
            self.with_dependencies(dep, overrides, path, out)?;
        }
        path.pop();
        out.push(name.to_string());
        Ok(())
    }

    fn inherited(&self, name: &str, path: &mut Vec<String>) -> Result<Target, BakeError> {
        if path.iter().any(|p| p == name) {
            return Err(BakeError::Cycle {
                kind: "inherits",
                name: name.to_string(),
            });
        }
        let own = self.targets.get(name).ok_or_else(|| BakeError::Unknown {
            name: name.to_string(),
            known: self.targets.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        path.push(name.to_string());
        let mut merged = Target::default();
        for parent in &own.inherits {
            let p = self.inherited(parent, path)?;
            merged.overlay(&p);
        }
        path.pop();
        merged.overlay(own);
        Ok(merged)
    }

    /// The chosen targets as builds; relative contexts are relative to
    /// `cwd`, Dockerfiles relative to their context (as buildx reads them).
    ///
    /// # Errors
    ///
    /// [`BakeError::Target`] when a target's attribute cannot become a build (a malformed
    /// output, cache, secret, SSH or attestation value).
    pub fn builds(chosen: &[(String, Target)], cwd: &Path) -> Result<Vec<Build>, BakeError> {
        let index = |dep: &str| chosen.iter().position(|(n, _)| n == dep);
        chosen
            .iter()
            .map(|(n, t)| convert::to_build(n, t, cwd, &index))
            .collect()
    }
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests;
