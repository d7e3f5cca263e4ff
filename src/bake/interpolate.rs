//! Compose's variable interpolation, from the environment, as compose
//! itself does it before bake sees the values.

/// Compose interpolation: `$VAR`, `${VAR}`, `${VAR:-default}` (unset or
/// empty), `${VAR-default}` (unset), `${VAR:?err}` / `${VAR?err}`, `$$`.
pub(crate) fn interpolate(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| format!("unterminated ${{ in {s:?}"))?;
            out.push_str(&expand(&r[..end], env)?);
            rest = &r[end + 1..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                out.push('$');
            } else {
                out.push_str(&env(&rest[..end]).unwrap_or_default());
            }
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The `}` that closes a `${`, past nested `${...}` in a default.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn expand(inner: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let split = inner.find([':', '-', '?']).unwrap_or(inner.len());
    let (name, op) = inner.split_at(split);
    let value = env(name);
    let (empty_counts, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let missing = value.is_none() || (empty_counts && value.as_deref() == Some(""));
    if let Some(default) = op.strip_prefix('-') {
        return Ok(if missing {
            interpolate(default, env)?
        } else {
            value.unwrap_or_default()
        });
    }
    if let Some(message) = op.strip_prefix('?') {
        return match missing {
            true => Err(format!(
                "{name}: {}",
                if message.is_empty() {
                    "is not set"
                } else {
                    message
                }
            )),
            false => Ok(value.unwrap_or_default()),
        };
    }
    Ok(value.unwrap_or_default())
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
    fn compose_interpolation() {
        let cases = [
            ("app:${TAG}", "app:v2"),
            ("app:$TAG", "app:v2"),
            ("${NOPE:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("cost $$5", "cost $5"),
            ("${NOPE:-${TAG}-x}", "v2-x"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &env).unwrap(), want, "{input}");
        }
        assert!(
            interpolate("${NOPE:?needed}", &env)
                .unwrap_err()
                .contains("needed")
        );
    }
}
