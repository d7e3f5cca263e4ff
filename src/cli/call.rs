//! `--call NAME[,format=json]` and `--check`: which call the flags ask,
//! and the frontend's answer printed as buildx prints it (on stdout), with
//! buildx's exit status (a check with warnings exits 1). On GitHub Actions
//! each check warning, and each warning of an ordinary build, is also an
//! annotation on its Dockerfile line.

use std::io::Write;
use std::path::{Path, PathBuf};

use rbuild::subrequests::{CallFormat, CallResult, CallSpec, Lint, parse_bool};
use rbuild::{BuildError, BuildResult};

/// What `--call`, `--check` and `--call-fallback` ask for.
pub(super) fn spec(call: Option<&str>, check: Option<&str>) -> anyhow::Result<CallSpec> {
    if let Some(value) = check {
        let on = parse_bool(value).ok_or_else(|| {
            anyhow::anyhow!("--check={value:?}: use --check, --check=true or --check=false")
        })?;
        if on {
            return Ok("check".parse()?);
        }
    }
    match call {
        Some(value) => value
            .parse()
            .map_err(|e: rbuild::SpecError| anyhow::anyhow!("--{e}")),
        None => Ok(CallSpec::default()),
    }
}

/// The one line for a call the daemon's frontend lacks, with the flag
/// that retries it with a newer frontend.
pub(super) fn unsupported_hint(e: BuildError) -> anyhow::Error {
    match &e {
        BuildError::CallUnsupported { fallback: None, .. } => {
            anyhow::anyhow!("{e} (--call-fallback)")
        }
        _ => anyhow::anyhow!("{e}"),
    }
}

/// Prints a call's answer to stdout and returns the exit status: the
/// frontend's status unless `ignorestatus=true`; a check's build error
/// is the command's error.
pub(super) fn print(spec: &CallSpec, result: &CallResult, dockerfile: &str) -> anyhow::Result<u8> {
    let mut out = super::Lenient::new(std::io::stdout().lock());
    if spec.format == CallFormat::Json {
        result.write_json(&mut out)?;
    } else {
        result.write_text(&mut out, Some(dockerfile))?;
    }
    out.flush()?;
    finish(spec, result, dockerfile)
}

/// After the answer is out: annotations, a check's build error as the
/// error, else the status.
fn finish(spec: &CallSpec, result: &CallResult, dockerfile: &str) -> anyhow::Result<u8> {
    if let Some(lint) = result.lint() {
        annotate_lint(lint, Path::new(dockerfile));
        if let Some(error) = lint.error_text(Some(dockerfile)) {
            anyhow::bail!("{}", error.trim_end());
        }
    }
    Ok(status(spec, result))
}

/// What bake prints for the targets that asked a call.
pub(super) struct BakePrint {
    /// `--call`'s format and status handling (a target's own `call` gives
    /// only the name).
    pub spec: CallSpec,
    /// `--print`'s document: `group` and each target's resolved attributes.
    pub resolved: serde_json::Value,
    pub targets: Vec<BakeTarget>,
}

/// A target as its call's report names it.
pub(super) struct BakeTarget {
    name: String,
    description: Option<String>,
    dockerfile: String,
}

impl BakeTarget {
    /// buildx names a target's Dockerfile by its context and file as the
    /// bake file gives them (`app/Dockerfile`), `inline` for an inline one.
    pub(super) fn of(name: &str, t: &rbuild::bake::Target) -> BakeTarget {
        let dockerfile = match (&t.dockerfile_inline, &t.dockerfile) {
            (Some(_), _) => "inline".to_string(),
            (None, file) => clean(
                &Path::new(t.context.as_deref().unwrap_or("."))
                    .join(file.as_deref().unwrap_or("Dockerfile")),
            ),
        };
        BakeTarget {
            name: name.to_string(),
            description: t.description.clone(),
            dockerfile,
        }
    }
}

impl BakePrint {
    /// Prints every answer as buildx bake does (by target name; in text a
    /// header per target, in JSON one document after all) and returns the
    /// exit status: the first target's that asks for one, 1 on an error.
    pub(super) fn answers(&self, mut answers: Vec<(String, CallResult)>) -> u8 {
        if answers.is_empty() {
            return 0;
        }
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        let mut code = 0;
        let mut report = |r: anyhow::Result<u8>| -> Option<String> {
            match r {
                Ok(c) if code == 0 => {
                    code = c;
                    None
                }
                Ok(_) => None,
                Err(e) => {
                    code = 1;
                    Some(e.to_string())
                }
            }
        };
        let mut out = super::Lenient::new(std::io::stdout().lock());
        let json = self.spec.format == CallFormat::Json;
        let mut results = serde_json::Map::new();
        for (i, (name, answer)) in answers.iter().enumerate() {
            let target = self.targets.iter().find(|t| &t.name == name);
            let dockerfile = target.map_or("Dockerfile", |t| t.dockerfile.as_str());
            if json {
                let mut buf = Vec::new();
                let _ = answer.write_json(&mut buf);
                let mut entry = match serde_json::from_slice::<serde_json::Value>(&buf) {
                    Ok(serde_json::Value::Object(m)) => m,
                    Ok(other) => serde_json::Map::from_iter([(answer.call.to_string(), other)]),
                    Err(_) => serde_json::Map::new(),
                };
                if let Some(e) = report(finish(&self.spec, answer, dockerfile)) {
                    entry.insert("error".into(), e.into());
                }
                results.insert(name.clone(), serde_json::Value::Object(entry));
                continue;
            }
            let _ = (|| -> std::io::Result<()> {
                if i > 0 {
                    writeln!(out)?;
                }
                writeln!(out, "{name}")?;
                if let Some(d) = target.and_then(|t| t.description.as_deref()) {
                    writeln!(out, "{d}")?;
                }
                writeln!(out)?;
                answer.write_text(&mut out, Some(dockerfile))?;
                if let Some(e) = report(finish(&self.spec, answer, dockerfile)) {
                    writeln!(out, "error: {e}")?;
                }
                Ok(())
            })();
        }
        if json {
            let _ = writeln!(out, "{}", self.document(&answers, results));
        }
        let _ = out.flush();
        code
    }

    /// buildx's JSON document: the groups, and per target its resolved
    /// attributes under `build` and its answer under the call's name.
    fn document(
        &self,
        answers: &[(String, CallResult)],
        mut results: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let mut targets = serde_json::Map::new();
        let resolved = self.resolved["target"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, build) in resolved {
            let mut entry = serde_json::Map::from_iter([("build".to_string(), build)]);
            if let (Some(result), Some((_, answer))) = (
                results.remove(&name),
                answers.iter().find(|(n, _)| n == &name),
            ) {
                entry.insert(answer.call.to_string(), result);
            }
            targets.insert(name, serde_json::Value::Object(entry));
        }
        let doc = serde_json::json!({
            "group": self.resolved["group"],
            "target": targets,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

/// Every target's warnings for the metadata file, each once.
pub(super) fn merged_warnings(lists: Vec<serde_json::Value>) -> Option<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = Vec::new();
    for w in lists.into_iter().flat_map(|l| match l {
        serde_json::Value::Array(items) => items,
        _ => Vec::new(),
    }) {
        let same = |o: &serde_json::Value| {
            let strip = |v: &serde_json::Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("vertex");
                }
                v
            };
            strip(o) == strip(&w)
        };
        if !all.iter().any(same) {
            all.push(w);
        }
    }
    (!all.is_empty()).then_some(serde_json::Value::Array(all))
}

/// The exit status a call asks for (`result.statuscode`), as buildx
/// reads it.
pub(super) fn status(spec: &CallSpec, result: &CallResult) -> u8 {
    match result.status_code {
        Some(code) if code != 0 && !spec.ignore_status => u8::try_from(code).unwrap_or(1),
        _ => 0,
    }
}

/// The Dockerfile's name as buildx shows it in a check: `-f` as given, or
/// `PATH/Dockerfile`; `stdin` for `-f -`.
pub(super) fn dockerfile_name(file: Option<&Path>, context: Option<&Path>) -> String {
    match (file, context) {
        (Some(f), _) if f == Path::new("-") => "stdin".to_string(),
        (Some(f), _) => f.display().to_string(),
        (None, Some(ctx)) if ctx == Path::new("-") => "stdin".to_string(),
        (None, Some(ctx)) => clean(&ctx.join("Dockerfile")),
        (None, None) => "Dockerfile".to_string(),
    }
}

/// Go's `path.Clean`: `.` dropped, `..` folded where it can be, so a
/// context `.` names `Dockerfile` and `app/` names `app/Dockerfile`.
pub(super) fn clean(path: &Path) -> String {
    use std::path::Component;
    let mut parts: Vec<String> = Vec::new();
    let rooted = path.has_root();
    for c in path.components() {
        match c {
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => match parts.last().map(String::as_str) {
                Some(last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push("..".into()),
            },
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `buildx.build.warnings` for the metadata file, when
/// `BUILDX_METADATA_WARNINGS` asks for it (a Go boolean, as buildx reads it).
pub(super) fn metadata_warnings(result: &BuildResult) -> Option<serde_json::Value> {
    let on = std::env::var("BUILDX_METADATA_WARNINGS")
        .ok()
        .and_then(|v| parse_bool(&v))
        .unwrap_or(false);
    if !on || result.call.is_some() {
        return None;
    }
    result.warnings_json()
}

/// `::warning` annotations for a check's warnings (GitHub Actions only).
fn annotate_lint(lint: &Lint, dockerfile: &Path) {
    for w in lint.sorted_warnings() {
        let message = match w.url.as_deref() {
            Some(url) => format!("{}: {}\nMore info: {url}", w.rule, w.detail),
            None => format!("{}: {}", w.rule, w.detail),
        };
        super::github::warning(&w.description, dockerfile, w.line(), &message);
    }
}

/// `::warning` annotations for the warnings an ordinary build's frontend
/// reported on a Dockerfile line (GitHub Actions only), as the build
/// actions make them from buildx's metadata file.
pub(super) fn annotate_build(result: &BuildResult, dockerfile: Option<&PathBuf>) {
    let Some(dockerfile) = dockerfile else {
        return;
    };
    for w in &result.frontend_warnings {
        let Some(line) = w.ranges.first().map(|r| r.start.line).filter(|&l| l > 0) else {
            continue;
        };
        if w.source.is_none() {
            continue;
        }
        // The frontend appends the line to its one-liner; the annotation
        // carries it as a property.
        let short = w.short.trim_end();
        let short = match short.rfind(" (line ") {
            Some(at) if short.ends_with(')') => &short[..at],
            _ => short,
        };
        let message = match &w.url {
            Some(url) => format!("{short}\nMore info: {url}"),
            None => short.to_string(),
        };
        super::github::warning(&w.detail.join(" "), dockerfile, Some(line), &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild::subrequests::Call;

    #[test]
    fn check_and_call_flags_read_as_buildx_reads_them() {
        assert_eq!(spec(None, Some("true")).unwrap().call, Some(Call::Check));
        assert_eq!(
            spec(Some("outline"), Some("false")).unwrap().call,
            Some(Call::Outline)
        );
        let json = spec(Some("targets,format=json"), None).unwrap();
        assert_eq!(json.format, CallFormat::Json);
        assert_eq!(spec(None, None).unwrap().call, None);
        let err = spec(Some("outline,x=1"), None).unwrap_err().to_string();
        assert!(
            err.starts_with("--call \"outline,x=1\": invalid field"),
            "{err}"
        );
        assert!(spec(None, Some("maybe")).is_err());
    }

    #[test]
    fn the_dockerfile_is_named_as_the_user_gave_it() {
        assert_eq!(dockerfile_name(None, Some(Path::new("."))), "Dockerfile");
        assert_eq!(
            dockerfile_name(None, Some(Path::new("./app/"))),
            "app/Dockerfile"
        );
        assert_eq!(clean(Path::new("a/../../b/./c")), "../b/c");
        assert_eq!(clean(Path::new("/x/../y")), "/y");
        assert_eq!(dockerfile_name(Some(Path::new("ci/D")), None), "ci/D");
        assert_eq!(
            dockerfile_name(Some(Path::new("-")), Some(Path::new("."))),
            "stdin"
        );
    }
}
