use super::*;

/// Shaped like the frontend's answer: Go leaves out zero fields
/// (`sourceIndex` 0, `character` 0) and base64-encodes the file.
const REPORT: &str = r#"{
  "warnings": [
    {
      "ruleName": "MaintainerDeprecated",
      "description": "The MAINTAINER instruction is deprecated, use a label instead to define an image author",
      "url": "https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/",
      "detail": "Maintainer instruction is deprecated in favor of using label",
      "location": { "ranges": [ { "start": { "line": 2 }, "end": { "line": 2 } } ] }
    },
    {
      "ruleName": "StageNameCasing",
      "description": "Stage names should be lowercase",
      "url": "https://docs.docker.com/go/dockerfile/rule/stage-name-casing/",
      "detail": "Stage name 'Build' should be lowercase",
      "location": { "ranges": [ { "start": { "line": 1 }, "end": { "line": 1 } } ] }
    }
  ],
  "sources": [
    { "filename": "Dockerfile", "language": "Dockerfile",
      "data": "RlJPTSBiYXNlIGFzIEJ1aWxkCk1BSU5UQUlORVIgeApSVU4gdHJ1ZQo=" }
  ]
}"#;

fn render(lint: &Lint, name: Option<&str>) -> String {
    let mut out = Vec::new();
    lint.write_report(&mut out, name).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn warnings_print_as_buildx_prints_them() {
    let lint: Lint = serde_json::from_str(REPORT).unwrap();
    assert_eq!(lint.warnings[0].line(), Some(2));
    assert_eq!(lint.warnings[0].location.as_ref().unwrap().source_index, 0);
    let text = render(&lint, Some("ctx/Dockerfile"));
    let expected = "Check complete, 2 warnings have been found!\n\
\n\
WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\n\
Stage name 'Build' should be lowercase\n\
ctx/Dockerfile:1\n\
--------------------\n\
\x20  1 | >>> FROM base as Build\n\
\x20  2 |     MAINTAINER x\n\
\x20  3 |     RUN true\n\
--------------------\n\
\n\
WARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\n\
Maintainer instruction is deprecated in favor of using label\n\
ctx/Dockerfile:2\n\
--------------------\n\
\x20  1 |     FROM base as Build\n\
\x20  2 | >>> MAINTAINER x\n\
\x20  3 |     RUN true\n\
\x20  4 |     \n\
--------------------\n";
    assert_eq!(text, expected);
}

#[test]
fn a_clean_file_and_a_build_error() {
    let clean: Lint = serde_json::from_str(r#"{"warnings": null, "sources": []}"#).unwrap();
    assert_eq!(render(&clean, None), "Check complete, no warnings found.\n");
    assert_eq!(clean.error_text(None), None);

    let failing: Lint = serde_json::from_str(
        r#"{"warnings": [], "sources": [{"filename": "Dockerfile", "data": "RlJPTSBhCg=="}],
            "buildError": {"message": "lint violation found for rules: X",
                           "location": {"ranges": [{"start": {"line": 1}, "end": {"line": 1}}]}}}"#,
    )
    .unwrap();
    // No "no warnings" line: the error is what the command fails with.
    assert_eq!(render(&failing, None), "");
    assert_eq!(
        failing.error_text(None).unwrap(),
        "lint violation found for rules: X\nDockerfile:1\n--------------------\n   1 | >>> FROM a\n   2 |     \n--------------------\n"
    );
}

#[test]
fn a_multi_line_range_gets_one_line_of_context() {
    let mut out = Vec::new();
    let range = |a, b| SourceRange {
        start: Position {
            line: a,
            character: 0,
        },
        end: Position {
            line: b,
            character: 0,
        },
    };
    write_snippet(&mut out, "D", b"a\nb\nc\nd\ne\nf", &[range(3, 4)]).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "D:3\n--------------------\n   2 |     b\n   3 | >>> c\n   4 | >>> d\n   5 |     e\n--------------------\n"
    );
    // A range past the end prints nothing.
    let mut none = Vec::new();
    write_snippet(&mut none, "D", b"a", &[range(9, 9)]).unwrap();
    assert!(none.is_empty());
}
