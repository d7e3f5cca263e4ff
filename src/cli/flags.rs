//! Flag value parsers: each takes what the user typed and returns typed
//! values or an error that quotes the bad value and shows the right form.

use anyhow::bail;
use rbuild::buildspec::NamedContext;

/// `--build-arg KEY=VALUE` or `KEY` (value from the environment; skipped
/// when unset, as docker does).
pub fn build_args(
    values: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for v in values {
        match v.split_once('=') {
            Some(("", _)) => {
                bail!("--build-arg {v:?}: the name is empty (use KEY=VALUE)")
            }
            Some((k, val)) => out.push((k.to_string(), val.to_string())),
            None if v.is_empty() => bail!("--build-arg: empty value (use KEY=VALUE or KEY)"),
            None => {
                if let Some(val) = env(v) {
                    out.push((v.clone(), val));
                }
            }
        }
    }
    Ok(out)
}

/// `--label KEY=VALUE`.
pub fn labels(values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
            _ => bail!("--label {v:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// `--build-context NAME=VALUE`: a directory, `docker-image://REF`,
/// `oci-layout://DIR[:TAG|@DIGEST]`, a git URL or an HTTP(S) URL.
pub fn build_contexts(values: &[String]) -> anyhow::Result<Vec<(String, NamedContext)>> {
    let mut out: Vec<(String, NamedContext)> = Vec::new();
    for v in values {
        let Some((name, value)) = v.split_once('=') else {
            bail!("--build-context {v:?}: expected NAME=DIR or NAME=URL");
        };
        if name.is_empty() || value.is_empty() {
            bail!("--build-context {v:?}: expected NAME=DIR or NAME=URL");
        }
        // The name becomes a session source name next to `context` and
        // `dockerfile`, which it must not shadow.
        if matches!(name, "context" | "dockerfile") {
            bail!("--build-context {v:?}: the name {name:?} is reserved");
        }
        if out.iter().any(|(n, _)| n == name) {
            bail!("--build-context: {name:?} is given twice");
        }
        let source: NamedContext = value.parse().map_err(|e: rbuild::SpecError| {
            anyhow::anyhow!("--build-context {v:?}: {}", e.reason)
        })?;
        out.push((name.to_string(), source));
    }
    Ok(out)
}

/// A library spec error under the flag that carries that field.
pub fn spec_error(e: rbuild::SpecError) -> anyhow::Error {
    // Only the `--cache` shorthand's value has other flags for its options.
    let hint = match e.field {
        "cache" => " (--cache-from/--cache-to)",
        _ => "",
    };
    anyhow::anyhow!("--{} {:?}: {}{hint}", e.field, e.input, e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn build_args_table() {
        let env = |k: &str| (k == "FROM_ENV").then(|| "envval".to_string());
        let got = build_args(&s(&["A=1", "B=", "C=x=y", "FROM_ENV", "UNSET"]), env).unwrap();
        assert_eq!(
            got,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "".into()),
                ("C".into(), "x=y".into()),
                ("FROM_ENV".into(), "envval".into()),
            ]
        );
        assert!(build_args(&s(&["=1"]), env).is_err());
    }

    #[test]
    fn labels_table() {
        assert_eq!(
            labels(&s(&["a=b", "c="])).unwrap(),
            vec![("a".into(), "b".into()), ("c".into(), "".into())]
        );
        for bad in ["nokey", "=v"] {
            let err = labels(&s(&[bad])).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("KEY=VALUE"), "{err}");
        }
    }

    #[test]
    fn build_contexts_table() {
        assert_eq!(
            build_contexts(&s(&["lib=../lib", "base=docker-image://alpine"])).unwrap(),
            vec![
                ("lib".into(), NamedContext::Dir("../lib".into())),
                ("base".into(), NamedContext::Image("alpine".into())),
            ]
        );
        for bad in [
            "lib",
            "=x",
            "lib=",
            "context=x",
            "a=ftp://x",
            "a=docker-image://",
        ] {
            let err = build_contexts(&s(&[bad])).unwrap_err().to_string();
            assert!(err.starts_with("--build-context"), "{bad}: {err}");
        }
        assert!(build_contexts(&s(&["a=x", "a=y"])).is_err());
    }
}
