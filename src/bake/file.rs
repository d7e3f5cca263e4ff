//! Reading bake files: HCL (`docker-bake.hcl`) and JSON (`docker-bake.json`)
//! into the same raw blocks, whose expressions are evaluated later with
//! every file's variables in scope (buildx merges files before evaluating).

use hcl::Expression;
use hcl::expr::TemplateExpr;

use super::BakeError;

/// A block's attributes, unevaluated, in file order.
pub(crate) type Attrs = Vec<(String, Expression)>;

/// One bake file's blocks.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    /// The file's name as the user gave it (`-` for stdin).
    pub name: String,
    /// The text, to point errors at lines.
    pub text: String,
    /// `variable "NAME" { default = ... }`.
    pub variables: Vec<(String, Option<Expression>)>,
    /// `group "NAME" { targets = [...] }`.
    pub groups: Vec<(String, Attrs)>,
    /// `target "NAME" { ... }`.
    pub targets: Vec<(String, Attrs)>,
    /// `function "NAME" { params = [...], result = ... }`.
    pub functions: Vec<(String, Attrs)>,
}

/// Parses `text` as a compose file when the name ends in `.yml`/`.yaml`,
/// as JSON when it ends in `.json` or the text starts with `{`, else as HCL.
pub(crate) fn parse(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawFile, BakeError> {
    // stdin (`-`) has no extension: a top-level `services:` key is compose.
    let compose = name.ends_with(".yml")
        || name.ends_with(".yaml")
        || (!name.ends_with(".hcl") && text.lines().any(|l| l.starts_with("services:")));
    let mut file = if compose {
        super::compose::parse(name, text, env)?
    } else if name.ends_with(".json") || text.trim_start().starts_with('{') {
        parse_json(name, text)?
    } else {
        parse_hcl(name, text)?
    };
    file.name = name.to_string();
    file.text = text.to_string();
    Ok(file)
}

fn parse_hcl(name: &str, text: &str) -> Result<RawFile, BakeError> {
    let body = hcl::parse(text).map_err(|e| BakeError::Parse {
        file: name.to_string(),
        source: Box::new(e),
    })?;
    let mut file = RawFile::default();
    if let Some(attr) = body.attributes().next() {
        return Err(BakeError::File {
            file: name.to_string(),
            detail: format!(
                "top-level attribute {:?}: bake files hold variable, group and target blocks",
                attr.key.as_str()
            ),
        });
    }
    for block in body.blocks() {
        let kind = block.identifier();
        let label = match block.labels() {
            [l] => l.as_str().to_string(),
            _ => {
                return Err(BakeError::File {
                    file: name.to_string(),
                    detail: format!("a {kind} block needs exactly one name"),
                });
            }
        };
        if let Some(inner) = block.body().blocks().next() {
            return Err(BakeError::File {
                file: name.to_string(),
                detail: format!(
                    "{kind} {label:?}: nested {:?} blocks are not supported",
                    inner.identifier()
                ),
            });
        }
        let attrs: Attrs = block
            .body()
            .attributes()
            .map(|a| (a.key.as_str().to_string(), a.expr.clone()))
            .collect();
        push_block(&mut file, name, kind, label, attrs)?;
    }
    Ok(file)
}

fn push_block(
    file: &mut RawFile,
    name: &str,
    kind: &str,
    label: String,
    attrs: Attrs,
) -> Result<(), BakeError> {
    match kind {
        "variable" => {
            let default = attrs
                .into_iter()
                .find(|(k, _)| k == "default")
                .map(|(_, e)| e);
            file.variables.push((label, default));
        }
        "group" => file.groups.push((label, attrs)),
        "target" => file.targets.push((label, attrs)),
        "function" => file.functions.push((label, attrs)),
        other => {
            return Err(BakeError::File {
                file: name.to_string(),
                detail: format!("unknown block type {other:?} (use variable, group or target)"),
            });
        }
    }
    Ok(())
}

fn parse_json(name: &str, text: &str) -> Result<RawFile, BakeError> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| BakeError::Parse {
        file: name.to_string(),
        source: Box::new(e),
    })?;
    let Some(top) = json.as_object() else {
        return Err(BakeError::File {
            file: name.to_string(),
            detail: "expected a JSON object with variable, group and target".to_string(),
        });
    };
    let mut file = RawFile::default();
    for (kind, blocks) in top {
        let Some(blocks) = blocks.as_object() else {
            return Err(BakeError::File {
                file: name.to_string(),
                detail: format!("{kind:?} must be an object of named blocks"),
            });
        };
        for (label, body) in blocks {
            let Some(body) = body.as_object() else {
                return Err(BakeError::File {
                    file: name.to_string(),
                    detail: format!("{kind} {label:?} must be an object"),
                });
            };
            let attrs = body
                .iter()
                .map(|(k, v)| (k.clone(), json_expr(v)))
                .collect();
            push_block(&mut file, name, kind, label.clone(), attrs)?;
        }
    }
    Ok(file)
}

/// JSON values as HCL expressions; strings are templates, so `${VAR}`
/// interpolates as it does in buildx's JSON files.
fn json_expr(v: &serde_json::Value) -> Expression {
    use serde_json::Value as J;
    match v {
        J::Null => Expression::Null,
        J::Bool(b) => Expression::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Expression::from(i),
            None => Expression::from(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => Expression::TemplateExpr(Box::new(TemplateExpr::from(s.as_str()))),
        J::Array(items) => Expression::Array(items.iter().map(json_expr).collect()),
        J::Object(map) => Expression::Object(
            map.iter()
                .map(|(k, v)| (hcl::ObjectKey::from(k.as_str()), json_expr(v)))
                .collect(),
        ),
    }
}

/// `file:line:col` of the first call of function `name` in the file's
/// text, for errors about it (hcl-rs keeps no positions after parsing).
pub(crate) fn call_position(file: &RawFile, name: &str) -> String {
    for (i, line) in file.text.lines().enumerate() {
        if line.trim_start().starts_with('#') || line.trim_start().starts_with("//") {
            continue;
        }
        let mut from = 0;
        while let Some(at) = line[from..].find(name) {
            let col = from + at;
            let before = line[..col].chars().next_back();
            let after = line[col + name.len()..].trim_start();
            let word_start = before.is_none_or(|c| !c.is_alphanumeric() && c != '_');
            if word_start && after.starts_with('(') {
                return format!("{}:{}:{}", file.name, i + 1, col + 1);
            }
            from = col + name.len();
        }
    }
    file.name.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_any(name: &str, text: &str) -> Result<RawFile, BakeError> {
        parse(name, text, &|_| None)
    }

    #[test]
    fn hcl_and_json_give_the_same_blocks() {
        let hcl = parse_any(
            "docker-bake.hcl",
            "variable \"TAG\" {\n  default = \"1\"\n}\ngroup \"default\" {\n  targets = [\"app\"]\n}\ntarget \"app\" {\n  tags = [\"r/app:${TAG}\"]\n}\n",
        )
        .unwrap();
        let json = parse_any(
            "docker-bake.json",
            r#"{"variable":{"TAG":{"default":"1"}},"group":{"default":{"targets":["app"]}},"target":{"app":{"tags":["r/app:${TAG}"]}}}"#,
        )
        .unwrap();
        for f in [&hcl, &json] {
            assert_eq!(f.variables.len(), 1);
            assert_eq!(f.groups[0].0, "default");
            assert_eq!(f.targets[0].0, "app");
            assert_eq!(f.targets[0].1[0].0, "tags");
        }
    }

    #[test]
    fn unsupported_blocks_are_named() {
        let err = parse_any("f.hcl", "thing \"x\" {}\n").unwrap_err();
        assert!(err.to_string().contains("unknown block type"), "{err}");
        let err = parse_any("f.hcl", "target \"x\" {\n").unwrap_err();
        assert!(err.to_string().contains("f.hcl"), "{err}");
    }

    #[test]
    fn a_call_is_located() {
        let f = parse_any("f.hcl", "target \"a\" {\n  tags = [nosuch(\"x\")]\n}\n").unwrap();
        assert_eq!(call_position(&f, "nosuch"), "f.hcl:2:11");
    }
}
