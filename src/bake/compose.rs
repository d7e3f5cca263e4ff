//! Compose files as bake files: each service with a `build` section is a
//! target named like the service, and the `default` group holds them all,
//! as buildx reads `compose.yaml` (bake/compose.go). `x-bake` inside `build`
//! carries bake attributes compose has no field for (`output`, `platforms`
//! overrides, ...). Compose's own `${VAR}` / `${VAR:-default}` interpolation
//! is done here, from the environment, before bake sees the values.

use std::collections::BTreeMap;
use std::path::Path;

use hcl::Expression;
use serde_yaml_ng::Value as Yaml;

use super::BakeError;
use super::file::{Attrs, RawFile};
use super::interpolate::interpolate;

/// Reads a compose file into bake blocks; relative contexts are made
/// relative to the file's directory, as compose resolves them.
pub(crate) fn parse(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawFile, BakeError> {
    let bad = |detail: String| BakeError::File {
        file: name.to_string(),
        detail,
    };
    let doc: Yaml = serde_yaml_ng::from_str(text).map_err(|e| BakeError::Parse {
        file: name.to_string(),
        source: Box::new(e),
    })?;
    let base = Path::new(name).parent().unwrap_or(Path::new(""));
    let mut file = RawFile::default();
    let services = match doc.get("services") {
        Some(Yaml::Mapping(m)) => m.clone(),
        None | Some(Yaml::Null) => Default::default(),
        Some(_) => return Err(bad("services must be a map".into())),
    };
    let secrets = doc.get("secrets").cloned().unwrap_or(Yaml::Null);
    let mut names = Vec::new();
    for (service, def) in &services {
        let Some(service) = service.as_str() else {
            return Err(bad("service names must be strings".into()));
        };
        let Some(build) = def.get("build") else {
            continue;
        };
        let mut attrs = service_attrs(build, def.get("image"), &secrets, base, env)
            .map_err(|d| bad(format!("service {service:?}: {d}")))?;
        if let Some(x) = build.get("x-bake") {
            attrs.extend(
                x_bake(x, env).map_err(|d| bad(format!("service {service:?} x-bake: {d}")))?,
            );
        }
        file.targets.push((service.to_string(), attrs));
        names.push(service.to_string());
    }
    let list = Expression::Array(names.into_iter().map(Expression::String).collect());
    file.groups
        .push(("default".into(), vec![("targets".into(), list)]));
    Ok(file)
}

fn service_attrs(
    build: &Yaml,
    image: Option<&Yaml>,
    secrets: &Yaml,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Attrs, String> {
    let s =
        |v: &Yaml| -> Result<String, String> { interpolate(&scalar(v).unwrap_or_default(), env) };
    let mut attrs: Attrs = Vec::new();
    let mut put = |k: &str, e: Expression| attrs.push((k.to_string(), e));
    // `build: ./dir` is the context alone.
    let context = match build {
        Yaml::String(dir) => Some(interpolate(dir, env)?),
        Yaml::Mapping(_) => build.get("context").map(s).transpose()?,
        _ => return Err("build must be a path or a map".into()),
    };
    let context = context.unwrap_or_else(|| ".".into());
    put("context", string(base.join(&context).display().to_string()));
    if let Yaml::Mapping(_) = build {
        for (key, bake_key) in [
            ("dockerfile", "dockerfile"),
            ("dockerfile_inline", "dockerfile-inline"),
            ("target", "target"),
            ("network", "network"),
        ] {
            if let Some(v) = build.get(key) {
                put(bake_key, string(s(v)?));
            }
        }
        for (key, bake_key) in [
            ("args", "args"),
            ("labels", "labels"),
            ("additional_contexts", "contexts"),
        ] {
            if let Some(v) = build.get(key) {
                put(bake_key, map(v, env)?);
            }
        }
        for (key, bake_key) in [
            ("tags", "tags"),
            ("platforms", "platforms"),
            ("cache_from", "cache-from"),
            ("cache_to", "cache-to"),
        ] {
            if let Some(v) = build.get(key) {
                put(bake_key, list(v, env)?);
            }
        }
        for (key, bake_key) in [("no_cache", "no-cache"), ("pull", "pull")] {
            if let Some(v) = build.get(key) {
                put(
                    bake_key,
                    Expression::Bool(v.as_bool().ok_or(format!("{key} must be true or false"))?),
                );
            }
        }
        if let Some(v) = build.get("secrets") {
            put("secret", build_secrets(v, secrets, base, env)?);
        }
        if let Some(v) = build.get("ssh") {
            put("ssh", list(v, env)?);
        }
        if let Some(v) = build.get("shm_size") {
            put("shm-size", string(s(v)?));
        }
        if let Some(v) = build.get("ulimits") {
            put("ulimits", ulimits(v)?);
        }
        for key in ["extra_hosts", "isolation", "privileged"] {
            if build.get(key).is_some() {
                return Err(format!("build.{key} is not supported yet"));
            }
        }
    }
    // The service's image is a tag too, before build.tags (as buildx).
    if let Some(image) = image {
        let mut tags = vec![string(s(image)?)];
        if let Some(pos) = attrs.iter().position(|(k, _)| k == "tags")
            && let (_, Expression::Array(more)) = attrs.remove(pos)
        {
            tags.extend(more);
        }
        attrs.push(("tags".into(), Expression::Array(tags)));
    }
    Ok(attrs)
}

/// `secrets: [name]` referring to the top-level `secrets:` map
/// (`file:` or `environment:`), as buildx turns them into `id=,src=|env=`.
fn build_secrets(
    v: &Yaml,
    top: &Yaml,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Expression, String> {
    let Yaml::Sequence(items) = v else {
        return Err("build.secrets must be a list".into());
    };
    let mut out = Vec::new();
    for item in items {
        let (id, source) = match item {
            Yaml::String(name) => (name.clone(), name.clone()),
            Yaml::Mapping(_) => {
                let source = item
                    .get("source")
                    .and_then(Yaml::as_str)
                    .ok_or("a secret needs source")?;
                let id = item.get("target").and_then(Yaml::as_str).unwrap_or(source);
                (id.to_string(), source.to_string())
            }
            _ => return Err("build.secrets entries are names or maps".into()),
        };
        let def = top
            .get(source.as_str())
            .ok_or(format!("secret {source:?} is not defined under secrets"))?;
        let spec = if let Some(f) = def.get("file").and_then(Yaml::as_str) {
            format!("id={id},src={}", base.join(interpolate(f, env)?).display())
        } else if let Some(e) = def.get("environment").and_then(Yaml::as_str) {
            format!("id={id},env={e}")
        } else {
            return Err(format!("secret {source:?} needs file or environment"));
        };
        out.push(Expression::String(spec));
    }
    Ok(Expression::Array(out))
}

/// Compose's `ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 64}`
/// as bake's `NAME=SOFT:HARD` list.
fn ulimits(v: &Yaml) -> Result<Expression, String> {
    let Yaml::Mapping(m) = v else {
        return Err("build.ulimits must be a map".into());
    };
    let mut out = Vec::new();
    for (name, limit) in m {
        let name = name.as_str().ok_or("ulimit names are strings")?;
        let (soft, hard) = match limit {
            Yaml::Number(n) => (n.to_string(), n.to_string()),
            Yaml::Mapping(_) => {
                let get = |k: &str| {
                    limit
                        .get(k)
                        .and_then(scalar)
                        .ok_or(format!("ulimit {name} needs soft and hard"))
                };
                (get("soft")?, get("hard")?)
            }
            _ => return Err(format!("ulimit {name}: a number or soft/hard")),
        };
        out.push(Expression::String(format!("{name}={soft}:{hard}")));
    }
    Ok(Expression::Array(out))
}

/// `x-bake`: bake attributes by their bake names; scalars or lists.
fn x_bake(v: &Yaml, env: &dyn Fn(&str) -> Option<String>) -> Result<Attrs, String> {
    let Yaml::Mapping(m) = v else {
        return Err("must be a map".into());
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let key = k.as_str().ok_or("keys must be strings")?;
        let list_key = matches!(
            key,
            "tags"
                | "platforms"
                | "cache-from"
                | "cache-to"
                | "output"
                | "secret"
                | "ssh"
                | "entitlements"
        );
        let expr = match v {
            Yaml::Bool(b) => Expression::Bool(*b),
            Yaml::Mapping(_) => map(v, env)?,
            Yaml::Sequence(_) => list(v, env)?,
            // A single value for a list attribute is a list of one.
            other if list_key => Expression::Array(vec![string(interpolate(
                &scalar(other).unwrap_or_default(),
                env,
            )?)]),
            other => string(interpolate(&scalar(other).unwrap_or_default(), env)?),
        };
        out.push((key.to_string(), expr));
    }
    Ok(out)
}

fn string(s: String) -> Expression {
    Expression::String(s)
}

fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(v: &Yaml, env: &dyn Fn(&str) -> Option<String>) -> Result<Expression, String> {
    let items = match v {
        Yaml::Sequence(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for item in &items {
        let text = scalar(item).ok_or("list entries must be strings")?;
        out.push(string(interpolate(&text, env)?));
    }
    Ok(Expression::Array(out))
}

/// Compose maps come as `{K: V}` or as `["K=V"]`.
fn map(v: &Yaml, env: &dyn Fn(&str) -> Option<String>) -> Result<Expression, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    match v {
        Yaml::Mapping(m) => {
            for (k, val) in m {
                let k = scalar(k).ok_or("map keys must be strings")?;
                // A key without a value takes it from the environment.
                match scalar(val) {
                    Some(t) => out.insert(k, interpolate(&t, env)?),
                    None => match env(&k) {
                        Some(e) => out.insert(k, e),
                        None => continue,
                    },
                };
            }
        }
        Yaml::Sequence(items) => {
            for item in items {
                let text = scalar(item).ok_or("list entries must be KEY=VALUE strings")?;
                match text.split_once('=') {
                    Some((k, val)) => out.insert(k.to_string(), interpolate(val, env)?),
                    None => match env(&text) {
                        Some(e) => out.insert(text, e),
                        None => continue,
                    },
                };
            }
        }
        _ => return Err("expected a map or a list of KEY=VALUE".into()),
    }
    Ok(Expression::Object(
        out.into_iter()
            .map(|(k, v)| (hcl::ObjectKey::from(k.as_str()), Expression::String(v)))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "TAG" => Some("v2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn services_with_build_become_targets() {
        let text = r#"
services:
  web:
    image: r/web:${TAG}
    build:
      context: ./web
      args: ["MODE=prod"]
      x-bake:
        platforms: linux/amd64
        output: type=registry
  db:
    image: postgres
  worker:
    build: ./worker
"#;
        let f = parse("/p/compose.yaml", text, &env).unwrap();
        let names: Vec<&str> = f.targets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["web", "worker"]);
        let web = &f.targets[0].1;
        let get = |k: &str| web.iter().find(|(key, _)| key == k).map(|(_, e)| e.clone());
        assert_eq!(get("context"), Some(Expression::String("/p/./web".into())));
        assert!(
            matches!(get("tags"), Some(Expression::Array(t)) if t == vec![Expression::String("r/web:v2".into())])
        );
        assert!(matches!(get("output"), Some(Expression::Array(_))));
    }
}
