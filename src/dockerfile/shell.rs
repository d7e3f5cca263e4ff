//! A small POSIX-shell word splitter, enough to find the simple commands of
//! a `RUN` script: quotes, backslashes, `;` `&&` `||` `|` `&` newlines,
//! subshells, redirections, comments, and `$(...)`/backtick substitutions
//! (whose commands are listed too, since `V=$(curl ...)` fetches).
//!
//! It is not a shell: no expansion, no aliases. A misread script can only
//! make the detector miss or over-report a step, which `rbuild check` shows
//! and a `# rbuild:refresh=` directive overrides.

/// How deep `$(...)` inside `$(...)` is followed; deeper text is ignored.
const MAX_DEPTH: usize = 8;

/// The simple commands of `script`, each as its words after quote removal.
pub(crate) fn commands(script: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    lex(script, 0, &mut out);
    out
}

struct Lexer<'a> {
    chars: Vec<char>,
    i: usize,
    depth: usize,
    out: &'a mut Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    in_word: bool,
    /// The next word is a redirection target, not an argument.
    skip_word: bool,
}

fn lex(script: &str, depth: usize, out: &mut Vec<Vec<String>>) {
    let mut l = Lexer {
        chars: script.chars().collect(),
        i: 0,
        depth,
        out,
        words: Vec::new(),
        word: String::new(),
        in_word: false,
        skip_word: false,
    };
    while l.i < l.chars.len() {
        l.step();
    }
    l.end_command();
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn step(&mut self) {
        let c = self.chars[self.i];
        self.i += 1;
        match c {
            '\'' => {
                self.in_word = true;
                while let Some(c) = self.peek(0) {
                    self.i += 1;
                    if c == '\'' {
                        break;
                    }
                    self.word.push(c);
                }
            }
            '"' => self.double_quoted(),
            '\\' => match self.peek(0) {
                Some('\n') => self.i += 1,
                Some(next) => {
                    self.i += 1;
                    self.in_word = true;
                    self.word.push(next);
                }
                None => {}
            },
            '$' if self.peek(0) == Some('(') => self.substitution(')'),
            '`' => self.substitution('`'),
            '#' if !self.in_word => {
                while self.peek(0).is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
            }
            '<' | '>' => self.redirection(),
            '&' if self.peek(0) == Some('>') => self.redirection(),
            ' ' | '\t' | '\r' => self.end_word(),
            '\n' | ';' | '&' | '|' | '(' | ')' => self.end_command(),
            c => {
                self.in_word = true;
                self.word.push(c);
            }
        }
    }

    fn double_quoted(&mut self) {
        self.in_word = true;
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                '"' => return,
                '\\' => match self.peek(0) {
                    Some(n @ ('"' | '\\' | '$' | '`')) => {
                        self.i += 1;
                        self.word.push(n);
                    }
                    Some('\n') => self.i += 1,
                    _ => self.word.push('\\'),
                },
                '$' if self.peek(0) == Some('(') => self.substitution(')'),
                '`' => self.substitution('`'),
                c => self.word.push(c),
            }
        }
    }

    /// `$(...)` (the `$` consumed, `(` next) or `` `...` `` (opening
    /// consumed): its text is lexed as a script of its own and kept verbatim
    /// in the current word.
    fn substitution(&mut self, close: char) {
        let start = self.i;
        let mut depth = 0usize;
        let mut end = self.chars.len();
        let mut j = if close == ')' { start + 1 } else { start };
        while j < self.chars.len() {
            match self.chars[j] {
                '\\' => j += 1,
                '(' if close == ')' => depth += 1,
                c if c == close && depth == 0 => {
                    end = j;
                    break;
                }
                ')' if close == ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            j += 1;
        }
        let inner_start = if close == ')' { start + 1 } else { start };
        let inner: String = self.chars[inner_start.min(end)..end].iter().collect();
        if self.depth < MAX_DEPTH {
            lex(&inner, self.depth + 1, self.out);
        }
        self.in_word = true;
        self.word.push_str(if close == ')' { "$(" } else { "`" });
        self.word.push_str(&inner);
        self.word.push(close);
        self.i = (end + 1).min(self.chars.len());
    }

    /// `>`, `>>`, `2>&1`, `<file`, `&>file`: the operator and its target are
    /// not arguments.
    fn redirection(&mut self) {
        if self.word.chars().all(|c| c.is_ascii_digit()) {
            // `2>`: the fd number belongs to the operator.
            self.word.clear();
            self.in_word = false;
        }
        self.end_word();
        while self
            .peek(0)
            .is_some_and(|c| matches!(c, '<' | '>' | '&' | '|'))
        {
            self.i += 1;
        }
        self.skip_word = true;
    }

    fn end_word(&mut self) {
        if self.in_word {
            let word = std::mem::take(&mut self.word);
            if !std::mem::take(&mut self.skip_word) {
                self.words.push(word);
            }
        }
        self.in_word = false;
    }

    fn end_command(&mut self) {
        self.end_word();
        self.skip_word = false;
        if !self.words.is_empty() {
            self.out.push(std::mem::take(&mut self.words));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::commands;

    fn cmds(script: &str) -> Vec<String> {
        commands(script).iter().map(|c| c.join(" ")).collect()
    }

    #[test]
    fn splits_simple_commands() {
        let table: &[(&str, &[&str])] = &[
            (
                "a b && c || d; e | f & g",
                &["a b", "c", "d", "e", "f", "g"],
            ),
            ("a 'b c' \"d \\\"e\\\"\" f\\ g", &["a b c d \"e\" f g"]),
            ("a \\\n  b", &["a b"]),
            (
                "(cd x && make) # a comment\nnext",
                &["cd x", "make", "next"],
            ),
            ("a > /dev/null 2>&1 && b <in >>out", &["a", "b"]),
            ("a &> log; b", &["a", "b"]),
            ("a#b c", &["a#b c"]),
            ("", &[]),
        ];
        for (script, want) in table {
            assert_eq!(cmds(script), *want, "{script:?}");
        }
    }

    #[test]
    fn substitutions_are_commands_too() {
        assert_eq!(
            cmds("V=$(curl -s https://x | jq -r .v) && echo \"$(wget -qO- y)\""),
            [
                "curl -s https://x",
                "jq -r .v",
                "V=$(curl -s https://x | jq -r .v)",
                "wget -qO- y",
                "echo $(wget -qO- y)"
            ]
        );
        assert_eq!(
            cmds("echo `git rev-parse HEAD`"),
            ["git rev-parse HEAD", "echo `git rev-parse HEAD`"]
        );
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for s in [
            "'abc", "\"abc", "$(abc", "`abc", "a \\", "$(", "a >", "\"$(\"",
        ] {
            let _ = commands(s);
        }
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let s = "$(".repeat(10_000);
        let _ = commands(&s);
    }
}
