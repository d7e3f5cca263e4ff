//! Evaluating merged bake files: variables first (environment over
//! default; defaults may use other variables), then groups and targets
//! with every variable and function in scope.

use std::collections::BTreeMap;

use hcl::eval::{Context, ErrorKind, Evaluate};
use hcl::{Expression, Value};

use super::file::{Attrs, RawFile, call_position};
use super::target::{NOT_YET, Target};
use super::userfuncs::{self, UserFunc};
use super::{BakeError, Definition};

/// A variable declaration: its default and the file that declared it last.
type Decl<'a> = (Option<&'a Expression>, &'a RawFile);

pub(crate) fn evaluate(
    files: &[RawFile],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Definition, BakeError> {
    let funcs = user_functions(files)?;
    let values = variables(files, env, &funcs)?;
    let (ctx, _installed) = context(&values, &funcs)?;
    let mut def = Definition {
        variables: values
            .iter()
            .map(|(k, v)| (k.clone(), text(v).unwrap_or_default()))
            .collect(),
        ..Definition::default()
    };
    for file in files {
        for (name, attrs) in &file.groups {
            let mut members = Vec::new();
            for (key, expr) in attrs {
                match key.as_str() {
                    "targets" => members = strings(&eval(&ctx, file, expr, name, key)?),
                    "description" => {}
                    other => {
                        return Err(BakeError::File {
                            file: file.name.clone(),
                            detail: format!("group {name:?}: unknown attribute {other:?}"),
                        });
                    }
                }
            }
            def.groups.insert(name.clone(), members);
        }
        for (name, attrs) in &file.targets {
            if attrs.iter().any(|(k, _)| k == "matrix") {
                let generated = matrix(&ctx, file, name, attrs, &mut def)?;
                def.groups.insert(name.clone(), generated);
                continue;
            }
            let t = target(&ctx, file, name, attrs)?;
            def.targets.entry(name.clone()).or_default().overlay(&t);
        }
    }
    Ok(def)
}

/// A target's attributes evaluated in `ctx`.
fn target(
    ctx: &Context<'_>,
    file: &RawFile,
    name: &str,
    attrs: &Attrs,
) -> Result<Target, BakeError> {
    let mut t = Target::default();
    for (key, expr) in attrs {
        if key == "matrix" || key == "name" {
            continue;
        }
        let value = eval(ctx, file, expr, name, key)?;
        assign(&mut t, key, &value).map_err(|detail| BakeError::File {
            file: file.name.clone(),
            detail: format!("target {name:?} attribute {key:?}: {detail}"),
        })?;
    }
    Ok(t)
}

/// A `matrix` target: one target per combination of the matrix values,
/// named by its `name` template; the original name becomes a group of them.
fn matrix(
    ctx: &Context<'_>,
    file: &RawFile,
    name: &str,
    attrs: &Attrs,
    def: &mut Definition,
) -> Result<Vec<String>, BakeError> {
    let err = |detail: String| BakeError::File {
        file: file.name.clone(),
        detail: format!("target {name:?}: {detail}"),
    };
    let find = |k: &str| attrs.iter().find(|(key, _)| key == k).map(|(_, e)| e);
    let Some(name_expr) = find("name") else {
        return Err(err(
            "a matrix target needs a name template, e.g. name = \"app-${v}\"".into(),
        ));
    };
    let Some(Value::Object(axes)) = find("matrix")
        .map(|m| eval(ctx, file, m, name, "matrix"))
        .transpose()?
    else {
        return Err(err("matrix must be a map of lists".into()));
    };
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (axis, values) in &axes {
        let Value::Array(values) = values else {
            return Err(err(format!("matrix value {axis:?} must be a list")));
        };
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let mut generated = Vec::new();
    for combo in combos {
        let mut c = ctx.clone();
        for (k, v) in &combo {
            c.declare_var(k.as_str(), v.clone());
        }
        let generated_name = text(&eval(&c, file, name_expr, name, "name")?)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| err("the name template must give a non-empty string".into()))?;
        if generated.contains(&generated_name) {
            return Err(err(format!(
                "two combinations are both named {generated_name:?}"
            )));
        }
        let t = target(&c, file, &generated_name, attrs)?;
        def.targets
            .entry(generated_name.clone())
            .or_default()
            .overlay(&t);
        generated.push(generated_name);
    }
    Ok(generated)
}

/// Every file's `function` blocks; a later definition replaces an earlier one.
fn user_functions(files: &[RawFile]) -> Result<Vec<UserFunc>, BakeError> {
    let mut out: Vec<UserFunc> = Vec::new();
    for file in files {
        for (name, attrs) in &file.functions {
            let f = userfuncs::parse(name, attrs).map_err(|detail| BakeError::File {
                file: file.name.clone(),
                detail: format!("function {name:?}: {detail}"),
            })?;
            out.retain(|g| g.name != f.name);
            out.push(f);
        }
    }
    Ok(out)
}

/// A context with the built-in and user functions and `values`.
fn context<'a>(
    values: &BTreeMap<String, Value>,
    funcs: &[UserFunc],
) -> Result<(Context<'a>, userfuncs::Installed), BakeError> {
    let mut ctx = Context::new();
    super::funcs::declare(&mut ctx);
    let installed = userfuncs::install(&mut ctx, funcs, values)?;
    for (k, v) in values {
        ctx.declare_var(k.as_str(), v.clone());
    }
    Ok((ctx, installed))
}

/// Every variable's value: the environment's when set (typed like the
/// default), else its default, else the empty string.
fn variables(
    files: &[RawFile],
    env: &dyn Fn(&str) -> Option<String>,
    funcs: &[UserFunc],
) -> Result<BTreeMap<String, Value>, BakeError> {
    let mut decls: BTreeMap<&str, Decl<'_>> = BTreeMap::new();
    for file in files {
        for (name, default) in &file.variables {
            decls.insert(name.as_str(), (default.as_ref(), file));
        }
    }
    let mut values = BTreeMap::new();
    for (name, (default, _)) in &decls {
        if let Some(v) = env(name) {
            values.insert(name.to_string(), typed(&v, *default));
        } else if default.is_none() {
            values.insert(name.to_string(), Value::from(""));
        }
    }
    // Defaults may refer to other variables: evaluate until nothing new
    // resolves; what is left refers to itself or to something undefined.
    loop {
        let mut progress = false;
        let mut last_err = None;
        for (name, (default, file)) in &decls {
            if values.contains_key(*name) {
                continue;
            }
            let Some(expr) = default else { continue };
            let (ctx, _installed) = context(&values, funcs)?;
            match expr.evaluate(&ctx) {
                Ok(v) => {
                    values.insert(name.to_string(), v);
                    progress = true;
                }
                Err(e) => last_err = Some(eval_error(file, &format!("variable {name:?}"), &e)),
            }
        }
        if values.len() == decls.len() {
            return Ok(values);
        }
        if !progress {
            return Err(last_err.unwrap_or_else(|| BakeError::Eval {
                at: "bake files".into(),
                detail: "variables refer to each other in a cycle".into(),
            }));
        }
    }
}

/// An environment value as the default's type (buildx parses `true` and
/// numbers for bool and number variables).
fn typed(v: &str, default: Option<&Expression>) -> Value {
    match default {
        Some(Expression::Bool(_)) => match v {
            "true" | "1" => Value::Bool(true),
            "false" | "0" | "" => Value::Bool(false),
            _ => Value::from(v),
        },
        Some(Expression::Number(_)) => v
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| v.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(v)),
        _ => Value::from(v),
    }
}

fn eval(
    ctx: &Context<'_>,
    file: &RawFile,
    expr: &Expression,
    block: &str,
    key: &str,
) -> Result<Value, BakeError> {
    expr.evaluate(ctx)
        .map_err(|e| eval_error(file, &format!("{block:?} attribute {key:?}"), &e))
}

fn eval_error(file: &RawFile, what: &str, e: &hcl::eval::Error) -> BakeError {
    match e.kind() {
        ErrorKind::UndefinedFunc(func) => BakeError::Eval {
            at: call_position(file, func.name.as_str()),
            detail: format!(
                "{what}: unknown function {func} (supported: {})",
                super::funcs::SUPPORTED.join(", ")
            ),
        },
        ErrorKind::UndefinedVar(var) => BakeError::Eval {
            at: file.name.clone(),
            detail: format!("{what}: undefined variable {var} (declare it with a variable block)"),
        },
        _ => BakeError::Eval {
            at: file.name.clone(),
            detail: format!("{what}: {e}"),
        },
    }
}

/// A scalar as text: strings as they are, numbers and bools printed.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    }
}

fn map(v: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Object(m) = v else {
        return Err("expected a map of strings".into());
    };
    // A null value means "unset" (buildx leaves such args out).
    Ok(m.iter()
        .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t)))
        .collect())
}

fn boolean(v: &Value) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s == "true" => Ok(Some(true)),
        Value::String(s) if s == "false" => Ok(Some(false)),
        _ => Err("expected true or false".into()),
    }
}

fn assign(t: &mut Target, key: &str, v: &Value) -> Result<(), String> {
    match key {
        "inherits" => t.inherits = strings(v),
        "context" => t.context = text(v),
        "contexts" => t.contexts = map(v)?,
        "dockerfile" => t.dockerfile = text(v),
        "dockerfile-inline" => t.dockerfile_inline = text(v),
        "args" => t.args = map(v)?,
        "labels" => t.labels = map(v)?,
        "tags" => t.tags = strings(v),
        "target" => t.target = text(v),
        "platforms" => t.platforms = strings(v),
        "cache-from" => t.cache_from = strings(v),
        "cache-to" => t.cache_to = strings(v),
        "output" => t.output = strings(v),
        "secret" => t.secret = strings(v),
        "ssh" => t.ssh = strings(v),
        "no-cache" => t.no_cache = boolean(v)?,
        "pull" => t.pull = boolean(v)?,
        "network" => t.network = text(v),
        "entitlements" => t.entitlements = strings(v),
        "no-cache-filter" => t.no_cache_filter = strings(v),
        "attest" => t.attest = strings(v),
        "annotations" => t.annotations = strings(v),
        "shm-size" => t.shm_size = text(v),
        "ulimits" => t.ulimits = strings(v),
        "description" => t.description = text(v),
        "call" => t.call = text(v),
        k if NOT_YET.contains(&k) => {
            return Err("rbuild does not support this attribute yet".into());
        }
        _ => return Err("unknown attribute".into()),
    }
    Ok(())
}
