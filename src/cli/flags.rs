//! Flag value parsers: each takes what the user typed and returns typed
//! values or an error that quotes the bad value and shows the right form.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use base64::Engine;

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

/// `--add-host HOST:IP` (docker's form; `HOST=IP` also accepted) into the
/// frontend's `add-hosts` CSV of `host=ip`.
pub fn add_hosts(values: &[String]) -> anyhow::Result<String> {
    let mut entries = Vec::new();
    for v in values {
        // Split at the first separator: IPv6 addresses contain colons.
        let split = v.split_once('=').or_else(|| v.split_once(':'));
        match split {
            Some((host, ip)) if !host.is_empty() && ip.parse::<std::net::IpAddr>().is_ok() => {
                entries.push(format!("{host}={ip}"))
            }
            Some((host, "host-gateway")) if !host.is_empty() => {
                entries.push(format!("{host}=host-gateway"))
            }
            _ => bail!("--add-host {v:?}: expected HOST:IP, e.g. db:10.0.0.5"),
        }
    }
    Ok(entries.join(","))
}

/// `--build-context NAME=DIR`: named local contexts.
pub fn build_contexts(values: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for v in values {
        let Some((name, dir)) = v.split_once('=') else {
            bail!("--build-context {v:?}: expected NAME=DIR");
        };
        if name.is_empty() || dir.is_empty() {
            bail!("--build-context {v:?}: expected NAME=DIR");
        }
        if dir.contains("://") {
            bail!(
                "--build-context {v:?}: only local directories are supported (got a URL); \
                 use FROM with the image name instead"
            );
        }
        // The name becomes a session source name next to `context` and
        // `dockerfile`, which it must not shadow.
        if matches!(name, "context" | "dockerfile") {
            bail!("--build-context {v:?}: the name {name:?} is reserved");
        }
        if out.iter().any(|(n, _)| n == name) {
            bail!("--build-context: {name:?} is given twice");
        }
        out.push((name.to_string(), PathBuf::from(dir)));
    }
    Ok(out)
}

/// A stable key per context directory, so the daemon keeps the previous
/// upload and the next build sends only what changed. FNV-1a: stable across
/// runs and platforms, unlike std's randomly seeded hasher.
pub fn shared_key(context: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in context.to_string_lossy().bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The daemon's exporter response as buildx writes `--metadata-file`: the
/// base64 descriptor decoded into JSON, everything else as strings.
pub fn metadata_json(response: &BTreeMap<String, String>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in response {
        let value = if k.ends_with(".descriptor") || k == "containerimage.descriptor" {
            decode_json_b64(v).unwrap_or_else(|| serde_json::Value::String(v.clone()))
        } else {
            serde_json::Value::String(v.clone())
        };
        map.insert(k.clone(), value);
    }
    serde_json::Value::Object(map)
}

/// Each output's own results, in exporter order, for `--metadata-file`
/// under `rbuild.outputs` (the merged keys describe only one image).
pub fn outputs_json(outputs: &[rbuild::output::OutputResult]) -> serde_json::Value {
    use rbuild::output::Destination;
    let list = outputs
        .iter()
        .map(|o| {
            let mut entry = match metadata_json(&o.metadata) {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            entry.insert("type".into(), o.kind.clone().into());
            let dest = match &o.dest {
                Destination::File(p) | Destination::Dir(p) => Some(p.display().to_string()),
                Destination::Stdout => Some("-".to_string()),
                Destination::Load => Some("docker".to_string()),
                Destination::Daemon => None,
            };
            if let Some(dest) = dest {
                entry.insert("dest".into(), dest.into());
            }
            serde_json::Value::Object(entry)
        })
        .collect();
    serde_json::Value::Array(list)
}

fn decode_json_b64(v: &str) -> Option<serde_json::Value> {
    let raw = base64::engine::general_purpose::STANDARD.decode(v).ok()?;
    serde_json::from_slice(&raw).ok()
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
    fn add_hosts_table() {
        assert_eq!(
            add_hosts(&s(&["db:10.0.0.5", "v6:::1", "gw=host-gateway"])).unwrap(),
            "db=10.0.0.5,v6=::1,gw=host-gateway"
        );
        for bad in ["db", "db:notanip", ":1.2.3.4"] {
            assert!(add_hosts(&s(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn build_contexts_table() {
        assert_eq!(
            build_contexts(&s(&["lib=../lib"])).unwrap(),
            vec![("lib".into(), PathBuf::from("../lib"))]
        );
        for bad in ["lib", "=x", "lib=", "context=x", "a=docker-image://x"] {
            assert!(build_contexts(&s(&[bad])).is_err(), "{bad}");
        }
        assert!(build_contexts(&s(&["a=x", "a=y"])).is_err());
    }

    #[test]
    fn shared_key_is_stable_and_distinct() {
        assert_eq!(shared_key(Path::new("/a")), shared_key(Path::new("/a")));
        assert_ne!(shared_key(Path::new("/a")), shared_key(Path::new("/b")));
        assert_eq!(shared_key(Path::new("/a")).len(), 16);
    }

    #[test]
    fn metadata_decodes_the_descriptor() {
        let desc = base64::engine::general_purpose::STANDARD
            .encode(br#"{"mediaType":"m","digest":"sha256:1","size":3}"#);
        let mut r = BTreeMap::new();
        r.insert("containerimage.descriptor".to_string(), desc);
        r.insert("containerimage.digest".to_string(), "sha256:1".to_string());
        let json = metadata_json(&r);
        assert_eq!(json["containerimage.descriptor"]["size"], 3);
        assert_eq!(json["containerimage.digest"], "sha256:1");
    }
}
