//! moby/patternmatcher's `Pattern.compile`: a cleaned pattern becomes an exact, prefix or
//! suffix comparison, or a regexp.
//!
//! The regexp text is upstream's, character for character, so odd patterns behave the same;
//! only class syntax that the `regex` crate reads differently from Go's regexp is rewritten
//! (see [`go_classes_to_rust`]).

use regex::Regex;

use super::glob::BadPattern;

#[derive(Debug)]
pub enum Kind {
    Exact,
    /// `foo/**`: a plain prefix (the pattern without its final `**`).
    Prefix,
    /// `**/foo`: a plain suffix (the pattern without its leading `**`).
    Suffix,
    Regex(Regex),
}

/// What upstream's translation loop has detected so far.
#[derive(PartialEq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Upstream `Pattern.compile`: the same fast-path detection and regexp text.
pub fn compile(pattern: &str) -> Result<Kind, BadPattern> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut kind = Detected::Exact;
    let mut pos = 0;
    while pos < chars.len() {
        let at_start = pos == 0;
        let ch = chars[pos];
        pos += 1;
        let regex = match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos = double_star(&chars, pos + 1, &mut re, &mut kind);
                if at_start {
                    kind = Detected::Suffix;
                }
                continue;
            }
            '*' => push(&mut re, "[^/]*"),
            '?' => push(&mut re, "[^/]"),
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
                false
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    re.push('\\');
                    re.push(next);
                    true
                }
                // A trailing backslash stays (and is a syntax error anyway).
                None => {
                    re.push('\\');
                    false
                }
            },
            '[' | ']' => {
                re.push(ch);
                true
            }
            _ => {
                re.push(ch);
                false
            }
        };
        if regex {
            kind = Detected::Regex;
        }
    }
    Ok(match kind {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix,
        Detected::Suffix => Kind::Suffix,
        Detected::Regex => {
            re.push('$');
            Kind::Regex(Regex::new(&go_classes_to_rust(&re)).map_err(|_| BadPattern)?)
        }
    })
}

/// Appends regexp text that makes the pattern a regexp.
fn push(re: &mut String, text: &str) -> bool {
    re.push_str(text);
    true
}

/// Handles a `**` ending before `pos`; returns the position after it (and after a `/`).
fn double_star(chars: &[char], mut pos: usize, re: &mut String, kind: &mut Detected) -> usize {
    // `**/` is treated as `**`.
    if chars.get(pos) == Some(&'/') {
        pos += 1;
    }
    if pos < chars.len() {
        re.push_str("(.*/)?");
        *kind = Detected::Regex;
    } else if *kind == Detected::Exact {
        // A trailing `**` after plain text: a prefix, as in `.gitignore`.
        *kind = Detected::Prefix;
    } else {
        re.push_str(".*");
        *kind = Detected::Regex;
    }
    pos
}

/// Inside a bracket class Go's regexp takes `[`, `&&`, `--` and `~~` literally, while the
/// `regex` crate reads them as nested classes and set operations; escape them so both engines
/// see the same class. Everything else in the translated text means the same in both.
fn go_classes_to_rust(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 8);
    let mut chars = re.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '[' if !in_class => {
                out.push(c);
                in_class = true;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                // A `]` right after the opening bracket is a literal in Go.
                if chars.peek() == Some(&']') {
                    out.push_str("\\]");
                    chars.next();
                }
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class such as `[:alpha:]` means the same in both engines.
                out.push(c);
                for next in chars.by_ref() {
                    out.push(next);
                    if next == ']' {
                        break;
                    }
                }
            }
            '[' => out.push_str("\\["),
            ']' if in_class => {
                out.push(c);
                in_class = false;
            }
            '&' | '-' | '~' if in_class && chars.peek() == Some(&c) => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_paths_are_detected() {
        let kind = |p: &str| match compile(p).expect("valid") {
            Kind::Exact => "exact".to_owned(),
            Kind::Prefix => "prefix".to_owned(),
            Kind::Suffix => "suffix".to_owned(),
            Kind::Regex(re) => re.as_str().to_owned(),
        };
        assert_eq!(kind("a.b"), "exact");
        assert_eq!(kind("dir/**"), "prefix");
        assert_eq!(kind("**/dir"), "suffix");
        assert_eq!(kind("**"), "suffix");
        assert_eq!(kind("**/**/*.txt"), r"^(.*/)?(.*/)?[^/]*\.txt$");
        assert_eq!(kind("a*/**"), "^a[^/]*/.*$");
    }
}
