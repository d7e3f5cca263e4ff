//! Physical lines -> instructions, the way BuildKit's parser groups them
//! (moby/buildkit `frontend/dockerfile/parser/parser.go`): the `# escape=`
//! parser directive, line continuations that skip comment and blank lines,
//! and heredocs (`RUN <<EOF ... EOF`).
//!
//! dockerfile-parser stays the reader of one instruction's shell or exec
//! form (`run` in mod.rs), but the whole file is split here, because its
//! grammar falls short of BuildKit's where valid Dockerfiles go:
//!
//! - parser directives: it takes `# escape=` for a comment and keeps `\` as
//!   the line continuation, so a backtick-continued line becomes an
//!   instruction of its own; [`split`] honours the directive;
//! - heredocs (`RUN <<EOF`): it fails on the body; [`split`] gives each
//!   instruction its bodies and keeps them out of the instruction stream;
//! - multi-pair `ARG a=1 b=2`: it fails; here it is an instruction's text.
//!
//! A valid Dockerfile must never fail here (the test at the end shows each
//! case). Splitting here also gives the exact physical line ranges the
//! rewrite needs to keep line numbers.

/// What one physical line is, outside or inside an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineKind {
    /// Whitespace only, between instructions.
    Blank,
    /// A `#` comment between instructions (parser directives included).
    Comment,
    /// Part of instruction number `.0` (continuation, skipped comment,
    /// heredoc body included).
    Instruction(usize),
}

/// One instruction with its physical extent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// 1-based first physical line.
    pub start: usize,
    /// 1-based last physical line, continuations and heredoc bodies included.
    pub end: usize,
    /// The keyword as written (`RUN`, `run`).
    pub keyword: String,
    /// The logical line after the keyword: continuations joined, skipped
    /// comment lines removed, heredoc bodies not included.
    pub args: String,
    /// Heredoc bodies, in order.
    pub heredocs: Vec<String>,
}

impl Instruction {
    pub fn is(&self, keyword: &str) -> bool {
        self.keyword.eq_ignore_ascii_case(keyword)
    }
}

/// The file split into instructions, with each physical line's kind.
#[derive(Debug, Default)]
pub(crate) struct Split {
    pub lines: Vec<LineKind>,
    pub instructions: Vec<Instruction>,
}

/// The file's physical lines as written (a trailing `\r` kept): a final
/// newline ends the last line, it does not start another.
pub(crate) fn physical_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.is_empty() || text.ends_with('\n') {
        lines.pop();
    }
    lines
}

pub(crate) fn split(text: &str) -> Split {
    let lines: Vec<&str> = physical_lines(text)
        .into_iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let escape = escape_char(&lines);
    let mut out = Split::default();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim();
        if trimmed.is_empty() {
            out.lines.push(LineKind::Blank);
            i += 1;
        } else if trimmed.starts_with('#') {
            out.lines.push(LineKind::Comment);
            i += 1;
        } else {
            let next = instruction(&lines, i, escape, &mut out);
            i = next;
        }
    }
    out
}

/// Reads one instruction starting at index `first`; returns the index of
/// the line after it.
fn instruction(lines: &[&str], first: usize, escape: char, out: &mut Split) -> usize {
    let index = out.instructions.len();
    let mut logical = String::new();
    let mut i = first;
    loop {
        let line = lines[i];
        out.lines.push(LineKind::Instruction(index));
        i += 1;
        let content = line.trim_end();
        match content.strip_suffix(escape) {
            Some(rest) => logical.push_str(rest),
            None => {
                logical.push_str(content);
                break;
            }
        }
        // Inside a continuation BuildKit skips comment and blank lines.
        while i < lines.len() && is_skipped(lines[i]) {
            out.lines.push(LineKind::Instruction(index));
            i += 1;
        }
        if i >= lines.len() {
            break;
        }
    }
    let logical = logical.trim_start();
    let (keyword, args) = match logical.split_once(char::is_whitespace) {
        Some((k, a)) => (k.to_string(), a.trim_start().to_string()),
        None => (logical.to_string(), String::new()),
    };
    let mut heredocs = Vec::new();
    if ["RUN", "COPY", "ADD"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(&keyword))
    {
        for (word, strip_tabs) in heredoc_words(&args) {
            let mut body = String::new();
            while i < lines.len() {
                out.lines.push(LineKind::Instruction(index));
                let line = lines[i];
                i += 1;
                let cmp = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if cmp == word {
                    break;
                }
                body.push_str(line);
                body.push('\n');
            }
            heredocs.push(body);
        }
    }
    out.instructions.push(Instruction {
        start: first + 1,
        end: i,
        keyword,
        args,
        heredocs,
    });
    i
}

fn is_skipped(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// The `# escape=` parser directive, if it is among the leading directives.
fn escape_char(lines: &[&str]) -> char {
    for line in lines {
        let Some(rest) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            break;
        }
        if key.eq_ignore_ascii_case("escape") && value.trim() == "`" {
            return '`';
        }
    }
    '\\'
}

/// Heredoc markers in an instruction: words `<<EOF`, `<<-EOF`, `<<"EOF"`
/// (BuildKit matches whole words, so `echo "a<<b"` is no heredoc).
/// Returns (terminator word, strip leading tabs).
fn heredoc_words(args: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for word in args.split_whitespace() {
        let Some(rest) = word.strip_prefix("<<") else {
            continue;
        };
        if rest.starts_with('<') {
            continue; // a here-string, `<<<`
        }
        let (strip, rest) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let name: String = rest
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push((name, strip));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use LineKind::*;

    #[test]
    fn continuations_skip_comments_and_blank_lines() {
        let s = split("FROM a\n\nRUN one \\\n# inner\n\n  && two\n# after\nRUN three");
        assert_eq!(
            s.lines,
            [
                Instruction(0),
                Blank,
                Instruction(1),
                Instruction(1),
                Instruction(1),
                Instruction(1),
                Comment,
                Instruction(2)
            ]
        );
        let run = &s.instructions[1];
        assert_eq!((run.start, run.end), (3, 6));
        assert_eq!(run.keyword, "RUN");
        assert_eq!(run.args, "one   && two");
        assert_eq!(s.instructions[2].start, 8);
    }

    #[test]
    fn heredoc_bodies_belong_to_their_instruction() {
        let s = split(
            "FROM a\nRUN <<EOT bash\nRUN not-an-instruction\n\nEOT\nCOPY <<-'X' /f\n\thi\n\tX\n",
        );
        assert_eq!(s.instructions.len(), 3);
        assert_eq!(s.instructions[1].heredocs, ["RUN not-an-instruction\n\n"]);
        assert_eq!((s.instructions[1].start, s.instructions[1].end), (2, 5));
        assert_eq!((s.instructions[2].start, s.instructions[2].end), (6, 8));
        assert_eq!(s.lines.len(), 8);
    }

    #[test]
    fn only_whole_words_start_heredocs() {
        let s = split("FROM a\nRUN echo \"a<<b\" && cat <<< x\nRUN y\n");
        assert_eq!(s.instructions.len(), 3);
        assert!(s.instructions[1].heredocs.is_empty());
        // An unterminated heredoc runs to the end of the file.
        let s = split("FROM a\nRUN <<EOF\nRUN y\n");
        assert_eq!(s.instructions.len(), 2);
        assert_eq!(s.instructions[1].end, 3);
    }

    #[test]
    fn escape_directive_changes_the_continuation() {
        let s = split("# escape=`\nFROM a\nRUN dir `\n  c:\\x\n");
        assert_eq!(s.instructions[1].args, "dir   c:\\x");
        assert_eq!(s.instructions[1].end, 4);
        // After the first instruction it is only a comment.
        let s = split("FROM a\n# escape=`\nRUN x `\nRUN y\n");
        assert_eq!(s.instructions.len(), 3);
    }

    /// What the module doc says of dockerfile-parser, checked: if a new
    /// version reads these, the splitter's cover for them can go.
    #[test]
    fn covers_what_dockerfile_parser_misreads() {
        let escape = "# escape=`\nFROM a\nRUN wget `\n  http://x\nRUN y\n";
        let parsed = dockerfile_parser::Dockerfile::parse(escape).unwrap();
        assert_eq!(parsed.instructions.len(), 4, "the URL line read apart");
        assert_eq!(split(escape).instructions.len(), 3);
        assert_eq!(split(escape).instructions[1].args, "wget   http://x");

        let heredoc = "FROM a\nRUN <<EOF\nwget http://x\nRUN not-this\nEOF\nRUN y\n";
        assert!(dockerfile_parser::Dockerfile::parse(heredoc).is_err());
        let s = split(heredoc);
        assert_eq!(s.instructions.len(), 3);
        assert_eq!(
            s.instructions[1].heredocs,
            ["wget http://x\nRUN not-this\n"]
        );

        let args = "FROM a\nARG a=1 b=2\n";
        assert!(dockerfile_parser::Dockerfile::parse(args).is_err());
        assert_eq!(split(args).instructions[1].args, "a=1 b=2");
    }

    #[test]
    fn crlf_trailing_continuation_and_empty_input() {
        let s = split("FROM a\r\nRUN x \\\r\n  y\r\n");
        assert_eq!(s.instructions[1].args, "x   y");
        assert_eq!(s.lines.len(), 3);
        let s = split("RUN x \\");
        assert_eq!(s.instructions[0].end, 1);
        assert!(split("").lines.is_empty());
        assert_eq!(split("\n").lines, [Blank]);
    }
}
