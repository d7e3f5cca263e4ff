//! Reading a `.dockerignore` file into exclude patterns, as the Dockerfile frontend does
//! before it asks for the context (upstream moby/patternmatcher `ignorefile.ReadAll`).
//!
//! The client reads the same file itself so that what the user excluded is never sent,
//! whatever patterns the daemon asks with ([`super::Scope`]).

use super::glob;

/// The ignore file the frontend reads from a context's root.
pub const DOCKERIGNORE: &str = ".dockerignore";

/// The patterns of an ignore file: `#` lines (a `#` in the first column) are comments,
/// lines are trimmed, blank ones dropped, every pattern `Clean`ed with a leading `/`
/// removed, and a `!` prefix kept as an exception.
pub fn read_all(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut patterns = Vec::new();
    // Go's bufio.Scanner splits at `\n` and drops one `\r` before it.
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (invert, body) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let mut pattern = if body.is_empty() {
            String::new()
        } else {
            glob::clean(body)
        };
        if pattern.len() > 1 && pattern.starts_with('/') {
            pattern.remove(0);
        }
        patterns.push(if invert {
            format!("!{pattern}")
        } else {
            pattern
        });
    }
    patterns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blanks_cleaning_and_exceptions() {
        let text =
            "\u{feff}# comment\n  \n*.log\r\n/secrets/\n ! keep.log \n a/../b/./c \n#x\n/\n!\n";
        assert_eq!(
            read_all(text),
            ["*.log", "secrets", "!keep.log", "b/c", "/", "!"]
        );
        // Only a `#` in the first column starts a comment.
        assert_eq!(read_all(" #x"), ["#x"]);
        assert!(read_all("").is_empty());
    }
}
