//! The images a Dockerfile makes the daemon pull, as the frontend resolves them: `FROM`
//! after expanding the global `ARG`s (their defaults, or the build's arguments),
//! `COPY --from=IMAGE`, `RUN --mount=from=IMAGE`, and the `# syntax=` frontend image.
//! Stage names, stage numbers and `scratch` pull nothing.
//!
//! Used to decide which registries get credentials (the session's scoped `Auth`): a
//! reference missed here costs a pull without credentials, never a leak, so the reading
//! errs towards listing a reference.

use std::collections::{BTreeMap, BTreeSet};

use super::split;

/// Expansions of one word are cut off beyond this size: a `$A$A` chain of global args
/// must not grow without bound.
const MAX_EXPANDED: usize = 4096;

/// The image references of `text`, in order of appearance, deduplicated. `build_args`
/// override the defaults of global `ARG`s, as the frontend applies them.
pub fn images(text: &str, build_args: &BTreeMap<String, String>) -> Vec<String> {
    let s = split::split(text);
    let mut found: Vec<String> = Vec::new();
    if let Some(syntax) = syntax_directive(text) {
        found.push(syntax);
    }
    if let Some(syntax) = build_args.get("BUILDKIT_SYNTAX") {
        found.push(syntax.clone());
    }
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut seen_from = false;
    for ins in &s.instructions {
        if ins.is("ARG") && !seen_from {
            for word in words(&ins.args) {
                let (name, default) = match word.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (word.clone(), None),
                };
                let value = match build_args.get(&name) {
                    Some(given) => Some(given.clone()),
                    None => default.map(|d| expand(&d, &meta)),
                };
                meta.insert(name, value.unwrap_or_default());
            }
        } else if ins.is("FROM") {
            seen_from = true;
            let mut rest = words(&ins.args)
                .into_iter()
                .filter(|w| !w.starts_with("--"));
            let Some(image) = rest.next() else { continue };
            let image = expand(&image, &meta);
            let is_stage = stages.contains(&image.to_ascii_lowercase());
            if !is_stage && !image.eq_ignore_ascii_case("scratch") && !image.is_empty() {
                found.push(image);
            }
            if let (Some(kw), Some(name)) = (rest.next(), rest.next())
                && kw.eq_ignore_ascii_case("as")
            {
                stages.insert(name.to_ascii_lowercase());
            }
        } else if ins.is("COPY") || ins.is("RUN") || ins.is("ADD") {
            for from in from_flags(&ins.args) {
                let from = expand(&from, &meta);
                let lower = from.to_ascii_lowercase();
                let index = from.chars().all(|c| c.is_ascii_digit());
                if !from.is_empty() && !index && !stages.contains(&lower) && lower != "scratch" {
                    found.push(from);
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    found.retain(|r| seen.insert(r.clone()));
    found
}

/// `# syntax=IMAGE` among the leading parser directives.
fn syntax_directive(text: &str) -> Option<String> {
    for line in split::physical_lines(text) {
        let rest = line.trim().strip_prefix('#')?;
        let (key, value) = rest.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        if key.eq_ignore_ascii_case("syntax") && !value.trim().is_empty() {
            return Some(value.trim().to_string());
        }
    }
    None
}

/// `--from=X` of COPY/ADD, and `from=X` inside each `--mount=` of RUN.
fn from_flags(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in words(args) {
        let Some(flag) = word.strip_prefix("--") else {
            break;
        };
        if let Some(from) = flag.strip_prefix("from=") {
            out.push(from.to_string());
        } else if let Some(mount) = flag.strip_prefix("mount=") {
            for field in mount.split(',') {
                if let Some(from) = field.strip_prefix("from=") {
                    out.push(from.trim_matches('"').to_string());
                }
            }
        }
    }
    out
}

/// Words separated by unquoted whitespace, quotes removed, backslash escapes kept for
/// [`expand`] (`\$` stays literal there).
fn words(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                word.push('\\');
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`
/// from `vars` (an unknown name is empty, as the frontend has it); `\$` is a `$`.
pub(crate) fn expand(word: &str, vars: &BTreeMap<String, String>) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() && out.len() <= MAX_EXPANDED {
        match chars[i] {
            '\\' if i + 1 < chars.len() => {
                out.push(chars[i + 1]);
                i += 2;
            }
            '$' if chars.get(i + 1) == Some(&'{') => {
                let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
                    out.extend(&chars[i..]);
                    break;
                };
                let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                out.push_str(&braced(&inner, vars));
                i += close + 3;
            }
            '$' => {
                let name: String = chars[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                if name.is_empty() {
                    out.push('$');
                    i += 1;
                } else {
                    out.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
                    i += 1 + name.chars().count();
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    let mut end = out.len().min(MAX_EXPANDED);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}

/// The inside of `${...}`.
fn braced(inner: &str, vars: &BTreeMap<String, String>) -> String {
    let end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (name, op) = inner.split_at(end);
    let value = vars.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let word = |w: &str| expand(w, vars);
    match op {
        "" => value.cloned().unwrap_or_default(),
        _ if op.starts_with(":-") => {
            if non_empty {
                value.cloned().unwrap_or_default()
            } else {
                word(&op[2..])
            }
        }
        _ if op.starts_with(":+") => {
            if non_empty {
                word(&op[2..])
            } else {
                String::new()
            }
        }
        _ if op.starts_with('-') => {
            if set {
                value.cloned().unwrap_or_default()
            } else {
                word(&op[1..])
            }
        }
        _ if op.starts_with('+') => {
            if set {
                word(&op[1..])
            } else {
                String::new()
            }
        }
        // Pattern operators (`#`, `%`, `/`) and the like: the value as it is.
        _ => value.cloned().unwrap_or_default(),
    }
}

/// The registry host of an image reference, as the daemon will ask for it (Docker Hub
/// for names without one).
pub fn registry_host(reference: &str) -> String {
    let reference = reference.trim();
    let reference = reference
        .strip_prefix("docker-image://")
        .unwrap_or(reference);
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            first.to_ascii_lowercase()
        }
        _ => "docker.io".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn from_lines_after_global_args() {
        let text = "# syntax=docker/dockerfile:1.7\n\
            ARG REG=ghcr.io ORG=\"acme\"\n\
            ARG BASE=${REG}/${ORG}/base:1\n\
            FROM --platform=$BUILDPLATFORM $BASE AS build\n\
            FROM build AS test\n\
            FROM ${MIRROR:-127.0.0.1:5000}/busybox\n\
            COPY --from=build /a /a\n\
            COPY --from=0 /b /b\n\
            COPY --from=quay.io/org/tool:2 /tool /tool\n\
            RUN --mount=type=bind,from=registry.example/cache:1,target=/c true\n\
            FROM scratch\n";
        assert_eq!(
            images(text, &BTreeMap::new()),
            [
                "docker/dockerfile:1.7",
                "ghcr.io/acme/base:1",
                "127.0.0.1:5000/busybox",
                "quay.io/org/tool:2",
                "registry.example/cache:1",
            ]
        );
        // Build arguments override the defaults; an ARG after FROM is not global.
        let text = "ARG BASE=a.example/x\nFROM $BASE\nARG LATER=z.example/y\nFROM $LATER\n";
        assert_eq!(
            images(
                text,
                &args(&[("BASE", "b.example/x"), ("BUILDKIT_SYNTAX", "s.example/f")])
            ),
            ["s.example/f", "b.example/x"]
        );
    }

    #[test]
    fn expansion_forms() {
        let vars = args(&[("A", "x"), ("E", "")]);
        for (word, want) in [
            ("$A", "x"),
            ("${A}y", "xy"),
            ("${E:-d}", "d"),
            ("${E-d}", ""),
            ("${U-d}", "d"),
            ("${A:+alt}", "alt"),
            ("${E:+alt}", ""),
            ("${E+set}", "set"),
            ("\\$A", "$A"),
            ("${unclosed", "${unclosed"),
            ("$", "$"),
        ] {
            assert_eq!(expand(word, &vars), want, "{word}");
        }
        let big = args(&[("A", &"a".repeat(3000))]);
        assert!(expand("$A$A$A", &big).len() <= MAX_EXPANDED);
    }

    #[test]
    fn hosts_of_references() {
        for (reference, host) in [
            ("busybox", "docker.io"),
            ("library/busybox:1", "docker.io"),
            ("127.0.0.1:5000/rbuild/busybox:latest", "127.0.0.1:5000"),
            ("GHCR.io/acme/app@sha256:abc", "ghcr.io"),
            ("localhost/app", "localhost"),
            ("docker-image://quay.io/x", "quay.io"),
        ] {
            assert_eq!(registry_host(reference), host, "{reference}");
        }
    }
}
