//! One line for an error and its causes, the form every message of the
//! library and the CLI ends in.

/// An error and its causes on one line, leaving out a cause whose text the
/// outer message already quotes (transport errors often repeat theirs).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ")
}
