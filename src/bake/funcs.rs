//! The functions bake files may call: the subset of go-cty's standard
//! library that buildx's bake documentation uses. An unknown function is
//! an error naming where it is called.

use hcl::Value;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};

/// Names of the supported functions, for error messages and the README.
pub(crate) const SUPPORTED: &[&str] = &[
    "and",
    "coalesce",
    "concat",
    "contains",
    "equal",
    "format",
    "join",
    "length",
    "lower",
    "not",
    "notequal",
    "or",
    "replace",
    "split",
    "timestamp",
    "trimprefix",
    "trimspace",
    "trimsuffix",
    "upper",
];

fn string(args: &FuncArgs, i: usize) -> Result<&str, String> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("argument {} must be a string", i + 1))
}

fn boolean(args: &FuncArgs, i: usize) -> Result<bool, String> {
    args.get(i)
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("argument {} must be a bool", i + 1))
}

fn lower(a: FuncArgs) -> Result<Value, String> {
    Ok(string(&a, 0)?.to_lowercase().into())
}
fn upper(a: FuncArgs) -> Result<Value, String> {
    Ok(string(&a, 0)?.to_uppercase().into())
}
fn trimspace(a: FuncArgs) -> Result<Value, String> {
    Ok(string(&a, 0)?.trim().into())
}
fn trimprefix(a: FuncArgs) -> Result<Value, String> {
    let (s, p) = (string(&a, 0)?, string(&a, 1)?);
    Ok(s.strip_prefix(p).unwrap_or(s).into())
}
fn trimsuffix(a: FuncArgs) -> Result<Value, String> {
    let (s, p) = (string(&a, 0)?, string(&a, 1)?);
    Ok(s.strip_suffix(p).unwrap_or(s).into())
}
fn replace(a: FuncArgs) -> Result<Value, String> {
    Ok(string(&a, 0)?
        .replace(string(&a, 1)?, string(&a, 2)?)
        .into())
}
fn split(a: FuncArgs) -> Result<Value, String> {
    let (sep, s) = (string(&a, 0)?, string(&a, 1)?);
    Ok(Value::Array(s.split(sep).map(Value::from).collect()))
}
fn join(a: FuncArgs) -> Result<Value, String> {
    let sep = string(&a, 0)?;
    let mut parts = Vec::new();
    for list in a.iter().skip(1) {
        let Some(items) = list.as_array() else {
            return Err("join takes a separator and lists of strings".into());
        };
        for item in items {
            parts.push(
                item.as_str()
                    .ok_or("join: list items must be strings")?
                    .to_string(),
            );
        }
    }
    Ok(parts.join(sep).into())
}
fn equal(a: FuncArgs) -> Result<Value, String> {
    Ok((a.first() == a.get(1)).into())
}
fn notequal(a: FuncArgs) -> Result<Value, String> {
    Ok((a.first() != a.get(1)).into())
}
fn and(a: FuncArgs) -> Result<Value, String> {
    Ok((boolean(&a, 0)? && boolean(&a, 1)?).into())
}
fn or(a: FuncArgs) -> Result<Value, String> {
    Ok((boolean(&a, 0)? || boolean(&a, 1)?).into())
}
fn not(a: FuncArgs) -> Result<Value, String> {
    Ok((!boolean(&a, 0)?).into())
}
fn length(a: FuncArgs) -> Result<Value, String> {
    let n = match a.first() {
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Array(v)) => v.len(),
        Some(Value::Object(m)) => m.len(),
        _ => return Err("length takes a string, list or map".into()),
    };
    Ok(Value::from(n as u64))
}
fn concat(a: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for list in a.iter() {
        out.extend(list.as_array().ok_or("concat takes lists")?.iter().cloned());
    }
    Ok(Value::Array(out))
}
fn contains(a: FuncArgs) -> Result<Value, String> {
    let list = a
        .first()
        .and_then(Value::as_array)
        .ok_or("contains takes a list")?;
    Ok(a.get(1).is_some_and(|v| list.contains(v)).into())
}
fn coalesce(a: FuncArgs) -> Result<Value, String> {
    Ok(a.iter()
        .find(|v| !v.is_null() && v.as_str() != Some(""))
        .cloned()
        .unwrap_or(Value::Null))
}

/// `format` with the verbs bake files use: `%s`, `%d`, `%v` and `%%`.
fn format(a: FuncArgs) -> Result<Value, String> {
    let spec = string(&a, 0)?;
    let mut args = a.iter().skip(1);
    let mut out = String::new();
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('s' | 'd' | 'v') => match args.next() {
                Some(Value::String(s)) => out.push_str(s),
                Some(Value::Number(n)) => out.push_str(&n.to_string()),
                Some(Value::Bool(b)) => out.push_str(&b.to_string()),
                Some(other) => out.push_str(&other.to_string()),
                None => return Err("format: too few arguments".into()),
            },
            other => {
                return Err(format!(
                    "format: unsupported verb %{}",
                    other.unwrap_or(' ')
                ));
            }
        }
    }
    Ok(out.into())
}

/// RFC 3339 in UTC, as go-cty's `timestamp()`.
fn timestamp(_: FuncArgs) -> Result<Value, String> {
    Ok(crate::registry::time::Timestamp::now().to_string().into())
}

/// Declares every supported function in `ctx`.
pub(crate) fn declare(ctx: &mut Context<'_>) {
    use ParamType::{Any, Array, Bool, String as Str};
    let any_list = || Array(Box::new(Any));
    let defs: Vec<(&str, FuncDef)> = vec![
        ("lower", FuncDef::builder().param(Str).build(lower)),
        ("upper", FuncDef::builder().param(Str).build(upper)),
        ("trimspace", FuncDef::builder().param(Str).build(trimspace)),
        (
            "trimprefix",
            FuncDef::builder().params([Str, Str]).build(trimprefix),
        ),
        (
            "trimsuffix",
            FuncDef::builder().params([Str, Str]).build(trimsuffix),
        ),
        (
            "replace",
            FuncDef::builder().params([Str, Str, Str]).build(replace),
        ),
        ("split", FuncDef::builder().params([Str, Str]).build(split)),
        (
            "join",
            FuncDef::builder()
                .param(Str)
                .variadic_param(any_list())
                .build(join),
        ),
        ("equal", FuncDef::builder().params([Any, Any]).build(equal)),
        (
            "notequal",
            FuncDef::builder().params([Any, Any]).build(notequal),
        ),
        ("and", FuncDef::builder().params([Bool, Bool]).build(and)),
        ("or", FuncDef::builder().params([Bool, Bool]).build(or)),
        ("not", FuncDef::builder().param(Bool).build(not)),
        ("length", FuncDef::builder().param(Any).build(length)),
        (
            "concat",
            FuncDef::builder().variadic_param(any_list()).build(concat),
        ),
        (
            "contains",
            FuncDef::builder().params([any_list(), Any]).build(contains),
        ),
        (
            "coalesce",
            FuncDef::builder().variadic_param(Any).build(coalesce),
        ),
        (
            "format",
            FuncDef::builder()
                .param(Str)
                .variadic_param(Any)
                .build(format),
        ),
        ("timestamp", FuncDef::builder().build(timestamp)),
    ];
    for (name, def) in defs {
        ctx.declare_func(name, def);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate;

    fn eval(expr: &str) -> Value {
        let mut ctx = Context::new();
        declare(&mut ctx);
        let body = hcl::parse(&format!("x = {expr}\n")).unwrap();
        let attr = body.attributes().next().unwrap();
        attr.expr.evaluate(&ctx).unwrap()
    }

    #[test]
    fn the_documented_functions_work() {
        assert_eq!(eval(r#"lower("ABC")"#), Value::from("abc"));
        assert_eq!(
            eval(r#"join(",", ["a", "b"], ["c"])"#),
            Value::from("a,b,c")
        );
        assert_eq!(eval(r#"split("-", "a-b")"#), Value::from(vec!["a", "b"]));
        assert_eq!(eval(r#"format("%s:%d", "v", 3)"#), Value::from("v:3"));
        assert_eq!(eval(r#"notequal("a", "")"#), Value::from(true));
        assert_eq!(eval(r#"coalesce("", "x")"#), Value::from("x"));
        assert_eq!(eval(r#"length(concat(["a"], ["b"]))"#), Value::from(2u64));
        assert!(eval("timestamp()").as_str().unwrap().ends_with('Z'));
    }
}
