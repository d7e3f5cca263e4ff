//! User `function` blocks:
//!
//! ```hcl
//! function "tag" {
//!   params = [name, version]
//!   result = "registry:5000/${name}:${version}"
//! }
//! ```
//!
//! hcl-rs calls functions through plain `fn` pointers, which cannot carry a
//! definition. So each user function gets one of a fixed set of trampolines
//! that looks its definition up in a thread-local table filled for the
//! evaluation (evaluation is synchronous, on one thread). A body sees the
//! file's variables, its parameters and every function, user ones included.

use std::cell::RefCell;
use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Expression, Value};

use super::BakeError;

/// One user function.
#[derive(Clone, Debug)]
pub(crate) struct UserFunc {
    pub name: String,
    pub params: Vec<String>,
    pub variadic: Option<String>,
    pub result: Expression,
}

struct Table {
    funcs: Vec<UserFunc>,
    vars: BTreeMap<String, Value>,
    depth: usize,
}

thread_local! {
    static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
}

/// Recursion beyond this is a definition that never ends.
const MAX_DEPTH: usize = 64;

macro_rules! trampolines {
    ($($n:literal => $f:ident),* $(,)?) => {
        $( fn $f(args: FuncArgs) -> Result<Value, String> { call($n, args) } )*
        const TRAMPOLINES: &[fn(FuncArgs) -> Result<Value, String>] = &[$($f),*];
    };
}

trampolines!(
    0 => f0, 1 => f1, 2 => f2, 3 => f3, 4 => f4, 5 => f5, 6 => f6, 7 => f7,
    8 => f8, 9 => f9, 10 => f10, 11 => f11, 12 => f12, 13 => f13, 14 => f14, 15 => f15,
    16 => f16, 17 => f17, 18 => f18, 19 => f19, 20 => f20, 21 => f21, 22 => f22, 23 => f23,
    24 => f24, 25 => f25, 26 => f26, 27 => f27, 28 => f28, 29 => f29, 30 => f30, 31 => f31,
);

/// Parses a `function "NAME" { params = [...], variadic_params = x, result = ... }`.
pub(crate) fn parse(name: &str, attrs: &[(String, Expression)]) -> Result<UserFunc, String> {
    let mut f = UserFunc {
        name: name.to_string(),
        params: Vec::new(),
        variadic: None,
        result: Expression::Null,
    };
    let mut has_result = false;
    for (key, expr) in attrs {
        match key.as_str() {
            "params" => {
                let Expression::Array(items) = expr else {
                    return Err("params must be a list of names".into());
                };
                for item in items {
                    match item {
                        Expression::Variable(v) => f.params.push(v.as_str().to_string()),
                        _ => return Err("params must be a list of names".into()),
                    }
                }
            }
            "variadic_params" => match expr {
                Expression::Variable(v) => f.variadic = Some(v.as_str().to_string()),
                _ => return Err("variadic_params must be a name".into()),
            },
            "result" => {
                f.result = expr.clone();
                has_result = true;
            }
            other => {
                return Err(format!(
                    "unknown attribute {other:?} (params, variadic_params, result)"
                ));
            }
        }
    }
    if !has_result {
        return Err("a function needs a result".into());
    }
    Ok(f)
}

/// Makes `funcs` callable from expressions evaluated in `ctx`, with `vars`
/// in scope of their bodies; the returned guard removes them again.
pub(crate) fn install(
    ctx: &mut Context<'_>,
    funcs: &[UserFunc],
    vars: &BTreeMap<String, Value>,
) -> Result<Installed, BakeError> {
    if funcs.len() > TRAMPOLINES.len() {
        return Err(BakeError::Eval {
            at: "bake files".into(),
            detail: format!("more than {} user functions", TRAMPOLINES.len()),
        });
    }
    for (f, tramp) in funcs.iter().zip(TRAMPOLINES) {
        ctx.declare_func(f.name.as_str(), def(f, *tramp));
    }
    TABLE.with(|t| {
        *t.borrow_mut() = Some(Table {
            funcs: funcs.to_vec(),
            vars: vars.clone(),
            depth: 0,
        })
    });
    Ok(Installed)
}

fn def(f: &UserFunc, tramp: fn(FuncArgs) -> Result<Value, String>) -> FuncDef {
    let mut b = FuncDef::builder().params(f.params.iter().map(|_| ParamType::Any));
    if f.variadic.is_some() {
        b = b.variadic_param(ParamType::Any);
    }
    b.build(tramp)
}

/// Clears the table when the evaluation is over.
pub(crate) struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        TABLE.with(|t| *t.borrow_mut() = None);
    }
}

fn call(index: usize, args: FuncArgs) -> Result<Value, String> {
    let (func, vars, funcs) = TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let table = t.as_mut().ok_or("user functions are not available here")?;
        if table.depth >= MAX_DEPTH {
            return Err(format!(
                "functions call each other more than {MAX_DEPTH} deep"
            ));
        }
        table.depth += 1;
        let func = table
            .funcs
            .get(index)
            .cloned()
            .ok_or("no such user function")?;
        Ok::<_, String>((func, table.vars.clone(), table.funcs.clone()))
    })?;
    let mut ctx = Context::new();
    super::funcs::declare(&mut ctx);
    for (f, tramp) in funcs.iter().zip(TRAMPOLINES) {
        ctx.declare_func(f.name.as_str(), def(f, *tramp));
    }
    for (k, v) in &vars {
        ctx.declare_var(k.as_str(), v.clone());
    }
    let values = args.into_values();
    for (p, v) in func.params.iter().zip(&values) {
        ctx.declare_var(p.as_str(), v.clone());
    }
    if let Some(rest) = &func.variadic {
        let extra: Vec<Value> = values.iter().skip(func.params.len()).cloned().collect();
        ctx.declare_var(rest.as_str(), Value::Array(extra));
    }
    let result = func.result.evaluate(&ctx).map_err(|e| e.to_string());
    TABLE.with(|t| {
        if let Some(table) = t.borrow_mut().as_mut() {
            table.depth = table.depth.saturating_sub(1);
        }
    });
    result
}
