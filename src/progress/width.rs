//! Terminal columns of text: what the tty frame measures and cuts by.
//!
//! A frame is redrawn by moving the cursor up over the lines printed last,
//! so a line that wraps throws the count off and the frame walks down the
//! screen. Step names and log lines may hold CJK characters or emoji, which
//! take two columns, and combining marks, which take none; counting chars
//! gets both wrong, so widths come from the Unicode tables.

use unicode_width::UnicodeWidthStr;

/// The columns `s` takes on a terminal; `s` is already printable text.
pub(super) fn columns(s: &str) -> usize {
    s.width()
}

/// At most `width` columns of printable text: control characters and the
/// colour escapes that build tools print would break the cursor arithmetic.
/// A two-column character that would straddle the edge is left out.
pub(super) fn truncate(s: &str, width: usize) -> String {
    let clean = printable(s);
    if columns(&clean) <= width {
        return clean;
    }
    let mut out = String::new();
    for c in clean.chars() {
        out.push(c);
        // The whole prefix is measured, not char by char: a selector after
        // an emoji can widen the char before it.
        if columns(&out) > width {
            out.pop();
            break;
        }
    }
    out
}

/// `s` cut or padded with spaces to exactly `width` columns.
pub(super) fn pad(s: &str, width: usize) -> String {
    let mut out = truncate(s, width);
    let fill = width.saturating_sub(columns(&out));
    out.extend(std::iter::repeat_n(' ', fill));
    out
}

/// `s` without control characters and terminal escapes.
fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte; anything else: ESC + one char.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_cuts_by_columns() {
        assert_eq!(truncate("\x1b[1;31merror\x1b[0m: x", 80), "error: x");
        assert_eq!(truncate("a\tb\r\n", 80), "ab");
        // CJK and emoji are two columns; a combining accent none.
        assert_eq!(columns("構築"), 4);
        assert_eq!(columns("🚀"), 2);
        assert_eq!(columns("e\u{301}"), 1);
        assert_eq!(truncate("構築する", 5), "構築");
        assert_eq!(truncate("a🚀b", 2), "a");
        assert_eq!(truncate("e\u{301}e\u{301}", 1), "e\u{301}");
        // The emoji selector widens the heart to two columns; where that
        // does not fit, the selector goes and the heart shows as text.
        assert_eq!(columns("❤"), 1);
        assert_eq!(columns("❤\u{fe0f}"), 2);
        assert_eq!(truncate("x❤\u{fe0f}", 2), "x❤");
        assert_eq!(truncate("x❤\u{fe0f}", 3), "x❤\u{fe0f}");
        for (text, width, want) in [
            ("構築", 5, "構築 "),
            ("構築する", 5, "構築 "),
            ("ab", 3, "ab "),
            ("abcd", 3, "abc"),
        ] {
            assert_eq!(pad(text, width), want, "{text}");
            assert_eq!(columns(&pad(text, width)), width, "{text}");
        }
    }
}
