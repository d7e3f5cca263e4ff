//! The request metadata of one `DiffCopy` call (upstream buildkit `session/filesync/
//! filesync.go`, `decodeOpts`).
//!
//! Each metadata value is one item (no comma splitting). When `<key>-encoded` parses as a Go
//! bool true, every value of `<key>` is URL-query-escaped (form encoding: `+` is a space);
//! the daemon does that only when a value holds non-ASCII characters.

use tonic::metadata::MetadataMap;

const DIR_NAME: &str = "dir-name";
const INCLUDE_PATTERNS: &str = "include-patterns";
const EXCLUDE_PATTERNS: &str = "exclude-patterns";
const FOLLOW_PATHS: &str = "followpaths";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffCopyRequest {
    /// The local source name; the first value, empty when absent.
    pub dir_name: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// `None` when the key is absent, which upstream treats differently from empty.
    pub follow_paths: Option<Vec<String>>,
}

impl DiffCopyRequest {
    pub fn from_metadata(md: &MetadataMap) -> Self {
        Self {
            dir_name: values(md, DIR_NAME)
                .and_then(|v| v.into_iter().next())
                .unwrap_or_default(),
            include: values(md, INCLUDE_PATTERNS).unwrap_or_default(),
            exclude: values(md, EXCLUDE_PATTERNS).unwrap_or_default(),
            follow_paths: values(md, FOLLOW_PATHS),
        }
    }
}

/// All values of `key`, decoded; `None` if the key is absent.
fn values(md: &MetadataMap, key: &str) -> Option<Vec<String>> {
    let raw: Vec<String> = md
        .get_all(key)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    if raw.is_empty() {
        return None;
    }
    let encoded_key = format!("{key}-encoded");
    let encoded = md
        .get(encoded_key.as_str())
        .and_then(|v| v.to_str().ok())
        .is_some_and(go_parse_bool_true);
    if !encoded {
        return Some(raw);
    }
    // Like upstream, a value that fails to decode becomes empty.
    Some(
        raw.iter()
            .map(|v| query_unescape(v).unwrap_or_default())
            .collect(),
    )
}

/// Go `strconv.ParseBool` returning true.
fn go_parse_bool_true(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// Go `url.QueryUnescape`.
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let digit = |c: u8| (c as char).to_digit(16);
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut md = MetadataMap::new();
        for (k, v) in pairs {
            md.append(*k, MetadataValue::try_from(*v).expect("ascii value"));
        }
        md
    }

    #[test]
    fn reads_repeated_values() {
        let req = DiffCopyRequest::from_metadata(&md(&[
            ("dir-name", "context"),
            ("dir-name", "ignored"),
            ("exclude-patterns", "node_modules"),
            ("exclude-patterns", "!node_modules/keep,me"),
            ("include-patterns", "src"),
        ]));
        assert_eq!(req.dir_name, "context");
        assert_eq!(req.exclude, ["node_modules", "!node_modules/keep,me"]);
        assert_eq!(req.include, ["src"]);
        assert_eq!(req.follow_paths, None);
    }

    #[test]
    fn decodes_encoded_values() {
        let req = DiffCopyRequest::from_metadata(&md(&[
            ("followpaths", "D%C3%B6ckerfile"),
            ("followpaths", "a+b%2Bc"),
            ("followpaths", "bad%zz"),
            ("followpaths-encoded", "1"),
            ("exclude-patterns", "a+b"),
            ("exclude-patterns-encoded", "no"),
        ]));
        assert_eq!(
            req.follow_paths.as_deref(),
            Some(&["Döckerfile".to_owned(), "a b+c".to_owned(), String::new()][..])
        );
        assert_eq!(req.exclude, ["a+b"]);
        assert_eq!(req.dir_name, "");
    }
}
