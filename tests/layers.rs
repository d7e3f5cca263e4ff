//! The library's shape, checked: its top-level modules form the layers that
//! ARCHITECTURE.md lists (each module uses only modules listed before it, so
//! there is no cycle), nothing below the CLI prints, a Docker Engine's own
//! exporter name stays in `output`, and the library's dependency tree holds
//! none of the CLI's crates. A failure names the file, the line and the
//! offending path, so it says what to move.
//!
//! The module tree is read the way rustc reads it, from `mod` declarations
//! starting at src/lib.rs; code under `#[cfg(test)]` (whole test modules,
//! and single test-only items) is left out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One use of a module from a module it may not use.
#[derive(Debug)]
struct Violation {
    file: PathBuf,
    line: usize,
    from: String,
    to: String,
    text: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` uses `{}`, which is not below it: {}",
            self.file.display(),
            self.line,
            self.from,
            self.to,
            self.text.trim()
        )
    }
}

/// Source text with comments and string literals blanked out (newlines
/// kept, so line numbers stay right).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: u8| if c == b'\n' { '\n' } else { ' ' };
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(' ');
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if b[i] == b'r' && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) && {
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                j += 1;
            }
            b.get(j) == Some(&b'"')
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        } {
            let mut hashes = 0;
            let mut j = i + 1;
            while b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            out.push_str(&" ".repeat(j + 1 - i));
            i = j + 1;
            while i < b.len() {
                if b[i] == b'"'
                    && b[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&c| c == b'#')
                        .count()
                        == hashes
                {
                    out.push_str(&" ".repeat(1 + hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(b[i]));
                i += 1;
            }
        } else if b[i] == b'"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < b.len() {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            out.push_str("   ");
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal: '\n', '\'', '\u{..}'.
            out.push(' ');
            i += 1;
            while i < b.len() && !(b[i] == b'\'' && b[i - 1] != b'\\') {
                out.push(blank(b[i]));
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(text[i..].chars().next().map_or(' ', |c| c));
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// Where the next item after byte `from` ends: its `;` or its closing brace.
fn item_end(code: &[u8], from: usize) -> usize {
    let mut i = from;
    // Attributes of the same item.
    loop {
        while i < code.len() && code[i].is_ascii_whitespace() {
            i += 1;
        }
        if code.get(i) == Some(&b'#') {
            while i < code.len() && code[i] != b']' {
                i += 1;
            }
            i += 1;
        } else {
            break;
        }
    }
    let mut depth = 0usize;
    while i < code.len() {
        match code[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            b';' if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// The code of a file without its `#[cfg(test)]` items, and the names of
/// the child modules it declares that are not test-only.
fn production_code(text: &str) -> (String, Vec<String>) {
    let mut code = code_only(text);
    let marker = "#[cfg(test)]";
    while let Some(at) = code.find(marker) {
        let end = item_end(code.as_bytes(), at + marker.len());
        let blanked: String = code[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        code.replace_range(at..end, &blanked);
    }
    let mods = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub(super) "))
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect();
    (code, mods)
}

/// The file of module `name` declared in `file` (rustc's two layouts).
fn child_file(file: &Path, name: &str) -> Option<PathBuf> {
    let stem = file.file_stem()?.to_str()?;
    let dir = match stem {
        "lib" | "main" | "mod" => file.parent()?.to_path_buf(),
        _ => file.parent()?.join(stem),
    };
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// Every production file of the library, by top-level module, with its
/// depth in the module tree (a top-level module's own file is 1).
fn library_files(src: &Path) -> BTreeMap<String, Vec<(PathBuf, usize, String)>> {
    let lib = src.join("lib.rs");
    let text = std::fs::read_to_string(&lib).expect("src/lib.rs");
    let (_, tops) = production_code(&text);
    let mut out = BTreeMap::new();
    for top in tops {
        let mut files = Vec::new();
        let mut todo = vec![(
            child_file(&lib, &top).unwrap_or_else(|| panic!("no file for module {top}")),
            1,
        )];
        while let Some((file, depth)) = todo.pop() {
            let text = std::fs::read_to_string(&file).expect("module file");
            let (code, children) = production_code(&text);
            for c in children {
                if let Some(f) = child_file(&file, &c) {
                    todo.push((f, depth + 1));
                }
            }
            files.push((file, depth, code));
        }
        out.insert(top, files);
    }
    out
}

/// The top-level modules a line of code names: `crate::x`, `crate::{x, y}`,
/// and `super::` chains that climb to the crate root.
fn named_modules(line: &str, depth: usize) -> Vec<String> {
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let after = &rest[at + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            found.extend(inner.split(',').map(|p| ident(p.trim())));
        } else {
            found.push(ident(after));
        }
    }
    let mut rest = line;
    while let Some(at) = rest.find("super::") {
        let mut after = &rest[at..];
        let mut ups = 0;
        while let Some(r) = after.strip_prefix("super::") {
            ups += 1;
            after = r;
        }
        rest = after;
        if ups >= depth {
            found.push(ident(after));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Every use of a top-level module by one that the order does not allow.
fn check_layers(src: &Path, order: &[String]) -> Result<(), Vec<String>> {
    let files = library_files(src);
    let mut problems = Vec::new();
    for m in files.keys() {
        if !order.contains(m) {
            problems.push(format!(
                "module `{m}` is in src/lib.rs but in no layer of ARCHITECTURE.md"
            ));
        }
    }
    for m in order {
        if !files.contains_key(m) {
            problems.push(format!(
                "layer module `{m}` of ARCHITECTURE.md is not in src/lib.rs"
            ));
        }
    }
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    for (top, list) in &files {
        let Some(&mine) = rank.get(top.as_str()) else {
            continue;
        };
        for (file, depth, code) in list {
            for (n, line) in code.lines().enumerate() {
                for used in named_modules(line, *depth) {
                    if used == *top {
                        continue;
                    }
                    // Root items (re-exports in lib.rs) are not modules.
                    let Some(&theirs) = rank.get(used.as_str()) else {
                        continue;
                    };
                    if theirs > mine {
                        problems.push(
                            Violation {
                                file: file.clone(),
                                line: n + 1,
                                from: top.clone(),
                                to: used,
                                text: line.to_string(),
                            }
                            .to_string(),
                        );
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The module order of ARCHITECTURE.md's `layers` block: one layer per
/// line, `name: module module ...`, bottom layer first.
fn layer_order(architecture: &str) -> Vec<String> {
    let block = architecture
        .split("```layers")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    block
        .lines()
        .filter_map(|l| l.split_once(':'))
        .flat_map(|(_, mods)| mods.split_whitespace().map(str::to_string))
        .collect()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let architecture =
        std::fs::read_to_string(repo().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let order = layer_order(&architecture);
    if let Err(problems) = check_layers(&repo().join("src"), &order) {
        panic!("the library's layers are broken:\n{}", problems.join("\n"));
    }
}

#[test]
fn a_planted_cycle_fails_naming_the_offending_use() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod low;\npub mod high;\n#[cfg(test)]\nmod testing;\n",
    )
    .unwrap();
    std::fs::create_dir(src.join("low")).unwrap();
    std::fs::write(
        src.join("low/mod.rs"),
        "mod deep;\n#[cfg(test)]\nuse crate::high::Fine;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("low/deep.rs"),
        "// crate::high in a comment is fine\nconst S: &str = \"crate::high\";\nuse crate::{high::Thing, low};\n",
    )
    .unwrap();
    std::fs::write(src.join("high.rs"), "use crate::low::X;\nuse super::low;\n").unwrap();
    std::fs::write(src.join("testing.rs"), "use crate::high::Y;\n").unwrap();
    let order = vec!["low".to_string(), "high".to_string()];
    let problems = check_layers(src, &order).expect_err("low uses high");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("low/deep.rs:3") && problems[0].contains("`low` uses `high`"),
        "{}",
        problems[0]
    );
    // The other order is the cycle's other half.
    let reversed = vec!["high".to_string(), "low".to_string()];
    let problems = check_layers(src, &reversed).expect_err("high uses low");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems.iter().all(|p| p.contains("high.rs")),
        "{problems:#?}"
    );
    // A module missing from the layers is named too.
    let problems = check_layers(src, &["low".to_string()]).expect_err("high has no layer");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`high` is in src/lib.rs but in no layer")),
        "{problems:#?}"
    );
}

#[test]
fn nothing_below_the_cli_prints() {
    let mut found = Vec::new();
    for (top, files) in library_files(&repo().join("src")) {
        for (file, _, code) in files {
            for (n, line) in code.lines().enumerate() {
                for mac in ["println!", "print!", "eprintln!", "eprint!", "dbg!"] {
                    let hit = line.match_indices(mac).any(|(i, _)| {
                        i == 0
                            || !line.as_bytes()[i - 1].is_ascii_alphanumeric()
                                && line.as_bytes()[i - 1] != b'_'
                    });
                    if hit {
                        found.push(format!(
                            "{}:{} ({top}): {}",
                            file.display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the library prints (use tracing or return the text):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_engines_exporter_name_stays_in_output() {
    let mut found = Vec::new();
    for (top, files) in library_files(&repo().join("src")) {
        if top == "output" {
            continue;
        }
        for (file, _, _) in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let (code, _) = production_code(&text);
            // String literals are blanked in `code`; look at the raw line
            // of each production line instead.
            for (n, (raw, prod)) in text.lines().zip(code.lines()).enumerate() {
                if raw.contains("\"moby\"") && !prod.trim().is_empty() {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, raw.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "exporter names belong to output:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_library_compiles_none_of_the_clis_crates() {
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(repo())
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal,no-proc-macro",
            "--no-default-features",
            "--features",
            "bake,pool,ssh-agent",
            "--prefix",
            "none",
        ])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: std::collections::BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for cli in [
        "clap",
        "clap_complete",
        "clap_mangen",
        "anyhow",
        "tracing-subscriber",
    ] {
        assert!(
            !crates.contains(cli),
            "the library depends on {cli}:\n{tree}"
        );
    }
    assert!(
        crates.contains("tonic") && crates.contains("hcl-rs"),
        "{tree}"
    );
}
