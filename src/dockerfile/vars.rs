//! The variables a stage's `RUN` steps see, as far as the Dockerfile shows
//! them: `ARG` (a build argument, else its default, else the global `ARG`'s
//! default), `ENV` (inherited from a parent stage named in `FROM`), and
//! plain assignments earlier in the same script. Enough to expand the URL
//! in `git clone "$REPO"` when `ARG REPO=https://...` declares it.
//!
//! What the file does not show (a base image's `ENV`, BuildKit's platform
//! arguments without `--build-arg`, `$(...)` output) is unknown: a URL that
//! uses it cannot be looked up, and the step falls back to its window.

use std::collections::BTreeMap;

use super::shell;
use super::split::Instruction;

/// Known variables; `None` is set, but to a value rbuild cannot know.
#[derive(Clone, Debug, Default)]
pub(crate) struct Vars(BTreeMap<String, Option<String>>);

impl Vars {
    pub fn set(&mut self, name: &str, value: Option<String>) {
        self.0.insert(name.to_string(), value);
    }

    fn get(&self, name: &str) -> Result<&str, String> {
        match self.0.get(name) {
            Some(Some(v)) => Ok(v),
            _ => Err(format!("${name}")),
        }
    }

    /// `word` with `$NAME`, `${NAME}`, `${NAME:-default}` and
    /// `${NAME-default}` replaced; `Err("$NAME")` names the first variable
    /// that cannot be expanded (unknown, or another `${...}` form), and
    /// `Err("$(...)")` a command's output.
    pub fn expand(&self, word: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = word;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(inner) = after.strip_prefix('{') {
                let end = inner.find('}').ok_or_else(|| format!("${{{inner}"))?;
                out.push_str(&self.braced(&inner[..end])?);
                rest = &inner[end + 1..];
            } else {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if len == 0 {
                    // `$(`...`)` or a lone `$`: output of a command.
                    return Err("$(...)".to_string());
                }
                out.push_str(self.get(&after[..len])?);
                rest = &after[len..];
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    fn braced(&self, expr: &str) -> Result<String, String> {
        let name_len = expr
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expr.len());
        let (name, op) = expr.split_at(name_len);
        let default = op.strip_prefix(":-").or_else(|| op.strip_prefix('-'));
        match (op.is_empty(), default) {
            (true, _) => self.get(name).map(String::from),
            (false, Some(default)) => match self.0.get(name) {
                Some(Some(v)) if !v.is_empty() || op.starts_with('-') => Ok(v.clone()),
                Some(None) => Err(format!("${name}")),
                _ => self.expand(default),
            },
            _ => Err(format!("${{{expr}}}")),
        }
    }

    /// Records `NAME=value` words (a script's assignment or `export`).
    pub fn assign(&mut self, words: &[String]) {
        for w in words {
            if let Some((name, value)) = w.split_once('=') {
                let value = self.expand(value).ok();
                self.set(name, value);
            }
        }
    }
}

/// Walks the instructions in order, keeping the variables in scope.
#[derive(Default)]
pub(crate) struct Scope {
    build_args: BTreeMap<String, String>,
    /// `ARG`s before the first `FROM`: their defaults.
    global: BTreeMap<String, Option<String>>,
    /// Each named stage's `ENV`, for a later `FROM name`.
    stage_env: BTreeMap<String, Vars>,
    in_stage: bool,
    current: Vars,
    /// `ENV` of the current stage (what a child stage inherits).
    env: Vars,
    name: Option<String>,
}

impl Scope {
    pub fn new(build_args: &BTreeMap<String, String>) -> Scope {
        Scope {
            build_args: build_args.clone(),
            ..Scope::default()
        }
    }

    /// The variables the instruction `ins` sees (before it takes effect).
    pub fn vars(&self) -> &Vars {
        &self.current
    }

    /// Applies `ins` (FROM, ARG, ENV) to the scope.
    pub fn apply(&mut self, ins: &Instruction) {
        if ins.is("FROM") {
            self.from(&ins.args);
        } else if ins.is("ARG") {
            for word in words(&ins.args) {
                let (name, default) = match word.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (word.clone(), None),
                };
                if !self.in_stage {
                    let value = match self.build_args.get(&name) {
                        Some(v) => Some(v.clone()),
                        None => default.and_then(|d| self.current.expand(&d).ok()),
                    };
                    self.global.insert(name.clone(), value.clone());
                    self.current.set(&name, value);
                    continue;
                }
                let value = match (self.build_args.get(&name), default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => self.current.expand(&d).ok(),
                    (None, None) => match self.global.get(&name) {
                        Some(v) => v.clone(),
                        None => Some(String::new()),
                    },
                };
                self.current.set(&name, value);
            }
        } else if ins.is("ENV") {
            for (name, value) in env_pairs(&ins.args) {
                let value = self.current.expand(&value).ok();
                self.current.set(&name, value.clone());
                self.env.set(&name, value);
            }
        }
    }

    fn from(&mut self, args: &str) {
        if let Some(name) = self.name.take() {
            self.stage_env.insert(name, std::mem::take(&mut self.env));
        }
        let words: Vec<&str> = args
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let parent = words.first().map(|w| w.to_ascii_lowercase());
        self.name = match words.as_slice() {
            [_, as_kw, name, ..] if as_kw.eq_ignore_ascii_case("as") => {
                Some(name.to_ascii_lowercase())
            }
            _ => None,
        };
        self.env = parent
            .and_then(|p| self.stage_env.get(&p).cloned())
            .unwrap_or_default();
        self.current = self.env.clone();
        self.in_stage = true;
    }
}

/// The words of `ARG a=1 "b=x y"` (quotes removed).
fn words(args: &str) -> Vec<String> {
    shell::commands(args).into_iter().flatten().collect()
}

/// `ENV a=1 b=2`, or the legacy `ENV name value with spaces`.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    let list = words(args);
    match list.first() {
        Some(first) if !first.contains('=') => {
            let value = args.trim_start()[first.len()..].trim().to_string();
            vec![(first.clone(), value)]
        }
        _ => list
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::split;

    fn scope_at(text: &str, args: &[(&str, &str)]) -> Vars {
        let args = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut scope = Scope::new(&args);
        for ins in &split::split(text).instructions {
            scope.apply(ins);
        }
        scope.vars().clone()
    }

    #[test]
    fn expansion_forms() {
        let mut v = Vars::default();
        v.set("HOST", Some("h".into()));
        v.set("EMPTY", Some(String::new()));
        v.set("ODD", None);
        assert_eq!(v.expand("https://$HOST/x").unwrap(), "https://h/x");
        assert_eq!(v.expand("https://${HOST}_/x").unwrap(), "https://h_/x");
        assert_eq!(v.expand("${NOPE:-https://d}/x").unwrap(), "https://d/x");
        assert_eq!(v.expand("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(v.expand("${EMPTY-d}").unwrap(), "");
        assert_eq!(v.expand("$NOPE/x"), Err("$NOPE".into()));
        assert_eq!(v.expand("$ODD"), Err("$ODD".into()));
        assert_eq!(v.expand("${HOST:+x}"), Err("${HOST:+x}".into()));
        assert_eq!(v.expand("$(cat /url)"), Err("$(...)".into()));
        assert_eq!(v.expand("no vars"), Ok("no vars".into()));
    }

    #[test]
    fn args_env_and_stages() {
        let text = "ARG HOST=g.example\nARG TAG\nFROM a AS base\nARG HOST\n\
                    ENV REPO=https://${HOST}/r.git\nARG BRANCH=main\n\
                    FROM base\nENV OTHER value with spaces\n";
        let v = scope_at(text, &[("BRANCH", "dev")]);
        // The child stage inherits ENV, not ARG.
        assert_eq!(v.expand("$REPO").unwrap(), "https://g.example/r.git");
        assert_eq!(v.expand("$BRANCH"), Err("$BRANCH".into()));
        assert_eq!(v.expand("$OTHER").unwrap(), "value with spaces");
        let v = scope_at("ARG X=1\nFROM a\nARG X\nARG Y=${X}2\nARG TAG\n", &[]);
        assert_eq!(v.expand("$Y").unwrap(), "12");
        assert_eq!(v.expand("[$TAG]").unwrap(), "[]");
        // A build argument wins over the default.
        let v = scope_at("FROM a\nARG REPO=https://d\n", &[("REPO", "https://b")]);
        assert_eq!(v.expand("$REPO").unwrap(), "https://b");
        // Undeclared in the stage: not visible, even if declared globally.
        let v = scope_at("ARG G=1\nFROM a\n", &[]);
        assert_eq!(v.expand("$G"), Err("$G".into()));
    }
}
