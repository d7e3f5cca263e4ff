//! buildx's `type=KIND,key=value,...` flag syntax, shared by `--output`,
//! `--cache-from` and `--cache-to`. Fields are CSV, so a field whose value
//! holds a comma is quoted whole: `"name=a,b"`.

use std::collections::BTreeMap;

/// A parsed `type=...,k=v` spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub kind: Option<String>,
    pub attrs: BTreeMap<String, String>,
}

/// A `type=...,key=value` value (output, cache, secret) that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} {input:?}: {reason}")]
#[non_exhaustive]
pub struct SpecError {
    /// What the value describes (`output`, `cache-to`, ...): a CLI adds
    /// its own flag spelling.
    pub field: &'static str,
    /// The value as given.
    pub input: String,
    /// What is wrong with it, and the right form.
    pub reason: String,
}

impl SpecError {
    /// An error about `input`, a value of `field`.
    pub fn new(field: &'static str, input: &str, reason: impl Into<String>) -> Self {
        Self {
            field,
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

/// Splits `input` into `type` and the other attributes. Fields without `=`
/// are returned in `bare` order for the caller to interpret (a bare cache
/// ref, a bare output path).
pub fn parse(flag: &'static str, input: &str) -> Result<(Spec, Vec<String>), SpecError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input.as_bytes());
    let record = match reader.records().next() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(SpecError::new(flag, input, e.to_string())),
        None => return Err(SpecError::new(flag, input, "empty value")),
    };
    let mut spec = Spec {
        kind: None,
        attrs: BTreeMap::new(),
    };
    let mut bare = Vec::new();
    for field in record.iter() {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        match field.split_once('=') {
            Some((k, v)) => {
                let key = k.trim().to_lowercase();
                if key.is_empty() {
                    return Err(SpecError::new(flag, input, format!("{field:?} has no key")));
                }
                if key == "type" {
                    spec.kind = Some(v.trim().to_string());
                } else if spec.attrs.insert(key.clone(), v.to_string()).is_some() {
                    return Err(SpecError::new(
                        flag,
                        input,
                        format!("{key:?} is given twice"),
                    ));
                }
            }
            None => bare.push(field.to_string()),
        }
    }
    Ok((spec, bare))
}

/// Parses a boolean attribute the way Go's strconv.ParseBool does.
pub fn parse_bool(flag: &'static str, input: &str, key: &str, v: &str) -> Result<bool, SpecError> {
    match v.to_lowercase().as_str() {
        "1" | "t" | "true" => Ok(true),
        "0" | "f" | "false" => Ok(false),
        _ => Err(SpecError::new(
            flag,
            input,
            format!("{key}={v:?} is not a boolean (true or false)"),
        )),
    }
}

/// Refuses attributes outside `known`, naming the ones that are allowed.
pub fn check_keys(
    flag: &'static str,
    input: &str,
    kind: &str,
    spec: &Spec,
    known: &[&str],
) -> Result<(), SpecError> {
    for key in spec.attrs.keys() {
        if !known.contains(&key.as_str()) {
            return Err(SpecError::new(
                flag,
                input,
                format!(
                    "unknown attribute {key:?} for type={kind} (known: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_type_attrs_and_bare_fields() {
        let (spec, bare) = parse("-o", "type=image,\"name=a/b:1,a/b:2\",push=true").unwrap();
        assert_eq!(spec.kind.as_deref(), Some("image"));
        assert_eq!(spec.attrs["name"], "a/b:1,a/b:2");
        assert_eq!(spec.attrs["push"], "true");
        assert!(bare.is_empty());
        let (spec, bare) = parse("--cache-from", "registry:5000/app").unwrap();
        assert_eq!(spec.kind, None);
        assert_eq!(bare, ["registry:5000/app"]);
    }

    #[test]
    fn rejects_malformed_specs() {
        assert!(parse("-o", "").is_err());
        assert!(parse("-o", "=x").unwrap_err().reason.contains("no key"));
        assert!(
            parse("-o", "type=tar,dest=a,dest=b")
                .unwrap_err()
                .reason
                .contains("twice")
        );
    }

    #[test]
    fn booleans_follow_go() {
        for (v, want) in [("true", true), ("1", true), ("F", false), ("false", false)] {
            assert_eq!(parse_bool("-o", "", "push", v), Ok(want));
        }
        assert!(parse_bool("-o", "", "push", "yes").is_err());
    }
}
