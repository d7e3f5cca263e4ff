//! The text after the last step, shared by plain and tty: the log tail of each
//! failed step (progressui's `printErrorLogs`) and the warning list (buildx's
//! `printWarnings`, without the `docker --debug` hint: details are shown).

use std::fmt::Write as _;

use super::state::State;
use super::units;

/// Yellow, as buildx prints its warning header on a terminal.
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// ```text
/// ------
///  > [2/3] RUN make:
/// 0.312 cc: error: ...
/// ------
/// ```
pub(crate) fn error_logs(state: &State) -> String {
    let mut out = String::new();
    for v in state.numbered().into_iter().map(|i| &state.vertices[i]) {
        if !v.failed() {
            continue;
        }
        let _ = writeln!(out, "------\n > {}:", v.name);
        for line in &v.recent {
            let _ = writeln!(out, "{} {}", units::log_elapsed(line.elapsed), line.text);
        }
        out.push_str("------\n");
    }
    out
}

/// ```text
///
///  2 warnings found:
///  - JSONArgsRecommended: JSON arguments recommended ... (line 3)
///    detail line
///    More info: https://...
/// ```
pub(crate) fn warnings(state: &State, color: bool) -> String {
    let n = state.warnings.len();
    if n == 0 {
        return String::new();
    }
    let header = match n {
        1 => "1 warning found:".to_string(),
        n => format!("{n} warnings found:"),
    };
    let mut out = if color {
        format!("\n {YELLOW}{header}{RESET}\n")
    } else {
        format!("\n {header}\n")
    };
    for w in &state.warnings {
        let _ = write!(out, " - {}", w.short);
        // The Dockerfile frontend puts the line into `short` already; other
        // frontends may only send a range.
        let line = w.ranges.first().map_or(0, |r| r.start.line);
        if line > 0 && !w.short.contains("(line ") {
            let _ = write!(out, " (line {line})");
        }
        out.push('\n');
        for d in &w.detail {
            let _ = writeln!(out, "   {d}");
        }
        if let Some(url) = &w.url {
            let _ = writeln!(out, "   More info: {url}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;
    use crate::progress::status::StatusUpdate;
    use crate::proto::pb;

    #[test]
    fn warnings_list_adds_missing_line_numbers() {
        let mut state = State::default();
        let mut ranged = warn("", "NoLine: something");
        ranged.detail = vec!["why it matters".into()];
        ranged.url = "https://example.invalid/r".into();
        ranged.ranges = vec![pb::Range {
            start: Some(pb::Position {
                line: 4,
                character: 0,
            }),
            end: None,
        }];
        let resp = resp()
            .warning(warn("", "JSONArgsRecommended: use JSON (line 3)"))
            .warning(ranged)
            .build();
        state.apply(&StatusUpdate::from_proto(&resp));
        assert_eq!(
            warnings(&state, false),
            "\n 2 warnings found:\n \
             - JSONArgsRecommended: use JSON (line 3)\n \
             - NoLine: something (line 4)\n   \
             why it matters\n   \
             More info: https://example.invalid/r\n"
        );
        assert_eq!(warnings(&State::default(), false), "");
    }
}
