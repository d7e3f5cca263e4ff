//! `--check` and `--call outline|targets[,format=json]` on the modern engine
//! (Docker Engine 28, whose Dockerfile frontend has build checks): the
//! answers as buildx 0.29.1 prints them, byte for byte, with its exit
//! codes; a normal build's check warnings in the metadata file and as
//! GitHub annotations.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::buildx::{buildx_new, modern_engine};
use support::{context, rbuild, stack, stdout};

/// Three problems: MAINTAINER (line 2), `ENV key value` (line 3), an
/// upper-case stage name (line 4).
fn three_problems(base: &str) -> tempfile::TempDir {
    context(&[(
        "Dockerfile",
        &format!(
            "FROM {base} AS build\nMAINTAINER someone\nENV GREETING hello\nFROM build AS Final\nRUN true\n"
        ),
    )])
}

fn rbuild_call(dir: &Path, args: &[&str]) -> Output {
    rbuild()
        .current_dir(dir)
        .args(["build", "--addr", &modern_engine(), "--progress", "plain"])
        .args(args)
        .arg(".")
        .output()
        .unwrap()
}

fn buildx_call(dir: &Path, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    buildx_new(&modern_engine(), config.path())
        .current_dir(dir)
        .args(["build", "--progress", "plain"])
        .args(args)
        .arg(".")
        .output()
        .unwrap()
}

/// A check's JSON names the frontend's session inside each source's
/// definition: the one part that differs between two runs.
fn without_definitions(text: &str) -> String {
    let Ok(mut json) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    for source in json["sources"].as_array_mut().into_iter().flatten() {
        if let Some(s) = source.as_object_mut() {
            s.remove("definition");
        }
    }
    json.to_string()
}

/// rbuild and buildx print the same answer and exit alike; rbuild's answer.
#[track_caller]
fn same_as_buildx(dir: &Path, args: &[&str]) -> (String, Option<i32>) {
    let ours = rbuild_call(dir, args);
    let theirs = buildx_call(dir, args);
    assert_eq!(
        without_definitions(&stdout(&ours)),
        without_definitions(&stdout(&theirs)),
        "{args:?}: rbuild's answer differs from buildx's\n--- rbuild stderr\n{}\n--- buildx stderr\n{}",
        support::stderr(&ours),
        support::stderr(&theirs)
    );
    assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
    (stdout(&ours), ours.status.code())
}

#[test]
fn a_check_reports_three_problems_with_their_lines_and_exits_1() {
    let stack = stack();
    let dir = three_problems(&stack.base);
    let (text, code) = same_as_buildx(dir.path(), &["--check"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("Check complete, 3 warnings have been found!\n"),
        "{text}"
    );
    for (rule, line, shown) in [
        ("MaintainerDeprecated", 2, "MAINTAINER someone"),
        ("LegacyKeyValueFormat", 3, "ENV GREETING hello"),
        ("StageNameCasing", 4, "FROM build AS Final"),
    ] {
        assert!(
            text.contains(&format!(
                "\nWARNING: {rule} - https://docs.docker.com/go/dockerfile/rule/"
            )),
            "{rule}: {text}"
        );
        assert!(
            text.contains(&format!("Dockerfile:{line}\n")),
            "{rule}: {text}"
        );
        assert!(
            text.contains(&format!("{line:>4} | >>> {shown}\n")),
            "{rule}: {text}"
        );
    }

    // The same as JSON: the frontend's answer as it sent it.
    let (json, code) = same_as_buildx(dir.path(), &["--call", "check,format=json"]);
    assert_eq!(code, Some(1));
    let report: Value = serde_json::from_str(&json).unwrap();
    let mut lines: Vec<(String, u64)> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["ruleName"].as_str().unwrap().to_string(),
                w["location"]["ranges"][0]["start"]["line"]
                    .as_u64()
                    .unwrap(),
            )
        })
        .collect();
    lines.sort_by_key(|l| l.1);
    assert_eq!(
        lines,
        [
            ("MaintainerDeprecated".to_string(), 2),
            ("LegacyKeyValueFormat".to_string(), 3),
            ("StageNameCasing".to_string(), 4)
        ]
    );

    // ignorestatus: the same report, exit 0.
    let out = rbuild_call(dir.path(), &["--call", "check,ignorestatus=true"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), text);
}

#[test]
fn a_clean_dockerfile_checks_clean_and_exits_0() {
    let stack = stack();
    let dir = context(&[(
        "Dockerfile",
        &format!("FROM {} AS build\nRUN true\n", stack.base),
    )]);
    let (text, code) = same_as_buildx(dir.path(), &["--check"]);
    assert_eq!(code, Some(0));
    assert_eq!(text, "Check complete, no warnings found.\n");
}

#[test]
fn a_dockerfile_that_makes_its_checks_errors_fails_after_the_report() {
    let stack = stack();
    let dir = context(&[(
        "Dockerfile",
        &format!(
            "# check=error=true\nFROM {} AS build\nMAINTAINER someone\n",
            stack.base
        ),
    )]);
    let (text, code) = same_as_buildx(dir.path(), &["--check"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("WARNING: MaintainerDeprecated"), "{text}");
    let out = rbuild_call(dir.path(), &["--check"]);
    let err = support::stderr(&out);
    assert!(
        err.contains("error: lint violation found for rules: MaintainerDeprecated"),
        "{err}"
    );
}

/// A Dockerfile with two documented stages, build arguments, secrets and
/// SSH agents.
fn outlined(base: &str) -> tempfile::TempDir {
    context(&[(
        "Dockerfile",
        &format!(
            "ARG BASE={base}\n\n\
             # build compiles the sources\n\
             FROM ${{BASE}} AS build\n\
             # VERSION is the release number\n\
             ARG VERSION=1.0\nARG GOFLAGS\n\
             RUN --mount=type=secret,id=token,required=true true\n\
             RUN --mount=type=secret,id=npmrc --mount=type=ssh true\n\n\
             # release is what ships\n\
             FROM build AS release\nARG CHANNEL=stable\n\
             RUN --mount=type=ssh,id=deploy,required true\n"
        ),
    )])
}

#[test]
fn outline_and_targets_print_as_buildx_prints_them() {
    let stack = stack();
    let dir = outlined(&stack.base);
    let (outline, code) = same_as_buildx(dir.path(), &["--call", "outline"]);
    assert_eq!(code, Some(0));
    assert!(
        outline.starts_with("TARGET:      release\nDESCRIPTION: is what ships\n\n"),
        "{outline}"
    );
    for row in [
        "BUILD ARG   VALUE",
        "\nVERSION     1.0 ",
        "is the release number\n",
        "\nGOFLAGS ",
        "\nSECRET   REQUIRED\ntoken    true\nnpmrc    \n",
        "\nSSH       REQUIRED\ndefault   \ndeploy    true\n",
    ] {
        assert!(outline.contains(row), "{row:?} in\n{outline}");
    }
    let (of_build, _) = same_as_buildx(dir.path(), &["--call", "outline", "--target", "build"]);
    assert!(of_build.starts_with("TARGET:      build\n"), "{of_build}");
    assert!(!of_build.contains("CHANNEL"), "{of_build}");

    let (targets, code) = same_as_buildx(dir.path(), &["--call", "targets"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        targets,
        "TARGET            DESCRIPTION\nbuild             compiles the sources\nrelease (default) is what ships\n"
    );

    // The JSON forms parse, with the same content.
    let (json, _) = same_as_buildx(dir.path(), &["--call", "outline,format=json"]);
    let o: Value = serde_json::from_str(&json).unwrap();
    let names = |key: &str| -> Vec<String> {
        o[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("args"), ["BASE", "VERSION", "GOFLAGS", "CHANNEL"]);
    assert_eq!(names("secrets"), ["token", "npmrc"]);
    assert_eq!(names("ssh"), ["default", "deploy"]);
    let (json, _) = same_as_buildx(dir.path(), &["--call", "targets,format=json"]);
    let t: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(t["targets"][1]["name"], "release");
    assert_eq!(t["targets"][1]["default"], true);
}

#[test]
fn a_builds_check_warnings_go_to_the_metadata_file_and_github() {
    let stack = stack();
    let dir = three_problems(&stack.base);
    let meta = dir.path().join("meta.json");
    let out = rbuild()
        .current_dir(dir.path())
        .args(["build", "--addr", &modern_engine(), "--progress", "plain"])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["-o", "type=cacheonly", "."])
        .env("BUILDX_METADATA_WARNINGS", "1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", dir.path())
        .output()
        .unwrap();
    support::assert_success(&out);
    let md: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let warnings = md["buildx.build.warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 3, "{md:#}");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut shorts: Vec<String> = warnings
        .iter()
        .map(|w| String::from_utf8(b64.decode(w["short"].as_str().unwrap()).unwrap()).unwrap())
        .collect();
    shorts.sort();
    assert!(
        shorts[0].starts_with("LegacyKeyValueFormat: ") && shorts[0].ends_with("(line 3)"),
        "{shorts:?}"
    );
    assert_eq!(warnings[0]["sourceInfo"]["filename"], "Dockerfile");

    // Each warning is an annotation on its line of the workspace's Dockerfile.
    let text = stdout(&out);
    let annotations: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("::warning "))
        .collect();
    assert_eq!(annotations.len(), 3, "{text}");
    assert!(
        annotations.iter().any(|a| a
            .starts_with("::warning title=The MAINTAINER instruction is deprecated%2C")
            && a.contains(",file=Dockerfile,line=2::MaintainerDeprecated: ")),
        "{annotations:?}"
    );

    // Without the variable, as buildx: no key.
    let out = rbuild()
        .current_dir(dir.path())
        .args(["build", "--addr", &modern_engine(), "--progress", "quiet"])
        .arg("--metadata-file")
        .arg(&meta)
        .args(["-o", "type=cacheonly", "."])
        .output()
        .unwrap();
    support::assert_success(&out);
    let md: Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert!(md.get("buildx.build.warnings").is_none(), "{md:#}");
}
