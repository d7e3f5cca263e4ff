//! On GitHub Actions a failed step is an `::error` annotation on its
//! Dockerfile line, and the report lands in the job's step summary.

mod support;

use support::{build_cmd, context, stack, stdout};

#[test]
fn a_failed_step_is_annotated_and_summarised() {
    let stack = stack();
    let ctx = context(&[(
        "Dockerfile",
        "ARG BASE\nFROM ${BASE}\n\nRUN echo annotated && exit 3\n",
    )]);
    let summary = tempfile::NamedTempFile::new().unwrap();
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ctx.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let dockerfile = ctx.path().join("Dockerfile");
    let want = format!(
        "::error file={},line=4,endLine=4,title=[2/2] RUN echo annotated && exit 3::",
        dockerfile.display()
    );
    let annotation = stdout(&out);
    assert!(annotation.starts_with(&want), "{annotation}");
    assert!(annotation.contains("exit code: 3"), "{annotation}");
    let table = std::fs::read_to_string(summary.path()).unwrap();
    assert!(table.contains("| build | failed | "), "{table}");

    // A good build appends its own row; no annotation.
    let ok = context(&[("Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN true\n")]);
    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .arg(ok.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .output()
        .unwrap();
    support::assert_success(&out);
    assert!(!stdout(&out).contains("::error"));
    let table = std::fs::read_to_string(summary.path()).unwrap();
    assert!(table.contains("| build | succeeded | "), "{table}");
    assert!(
        table.contains("| build | failed | "),
        "the earlier row is kept: {table}"
    );
}
