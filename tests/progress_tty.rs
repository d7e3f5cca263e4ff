//! The tty display of a real build whose step names and output hold CJK and
//! emoji: every painted line fits the terminal, so the frame redraws in
//! place instead of wrapping down the screen.

mod support;

use support::{assert_success, context, rbuild, stack, stderr, unique};
use unicode_width::UnicodeWidthStr;

/// A painted line as the terminal shows it: escapes and carriage returns
/// take no columns.
fn shown(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                chars.by_ref().find(|c| ('@'..='~').contains(c));
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[test]
fn wide_characters_in_step_names_do_not_break_the_frame() {
    let stack = stack();
    let id = unique("tty");
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "ARG BASE\nFROM ${{BASE}}\n\
             RUN echo '构建镜像 🚀🚀🚀 デプロイ中 ❤️ {id}' && sleep 1\n\
             RUN for i in 1 2 3 4 5 6; do printf 'コンパイル中'; done; echo; sleep 1\n"
        ),
    )]);
    for cols in [40, 80] {
        let out = rbuild()
            .args(["build", "--addr", &stack.buildkit_host])
            .args(["--progress", "tty", "--no-cache"])
            .args(["--build-arg", &format!("BASE={}", stack.base)])
            .env("COLUMNS", cols.to_string())
            .env("LINES", "30")
            .env("NO_COLOR", "1")
            .arg(ctx.path())
            .output()
            .unwrap();
        assert_success(&out);
        let err = stderr(&out);
        let frame_end = err.rfind("\x1b[K\n").expect("a tty frame");
        let lines: Vec<String> = err[..frame_end].split("\x1b[K\n").map(shown).collect();
        for line in &lines {
            assert!(line.width() < cols, "{cols} columns: {line:?}\n{err}");
        }
        for name in ["构建镜像 🚀", "RUN for i"] {
            assert!(lines.iter().any(|l| l.contains(name)), "{name}: {err}");
        }
        // Timed step rows reach the last column but one.
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(" => [2/3] RUN echo") && l.width() == cols - 1),
            "{err}"
        );
    }
}
