//! `rbuild bake --check` / `--call` and a target's `call` attribute on the
//! modern engine: one report per target, by name, as buildx 0.29.1 prints
//! them (byte for byte), its exit status (the first target's that asks for
//! one), and the one JSON document of `format=json`.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use support::buildx::{buildx_new, modern_engine};
use support::{context, rbuild, stdout};

/// Three targets: `lint` with three problems, `clean` with none, `api` with
/// a description and one problem; `api` asks for its outline itself.
fn project() -> tempfile::TempDir {
    context(&[
        (
            "lint/Dockerfile",
            "FROM scratch as Build\nMAINTAINER someone\n",
        ),
        ("clean/Dockerfile", "FROM scratch AS clean\nCOPY x /\n"),
        ("clean/x", "x\n"),
        (
            "api/Dockerfile",
            "FROM scratch AS api\nARG PORT=8080\nENV LISTEN :$PORT\n",
        ),
        (
            "docker-bake.hcl",
            "group \"default\" {\n  targets = [\"lint\", \"clean\", \"api\"]\n}\n\
             target \"lint\" {\n  context = \"lint\"\n}\n\
             target \"clean\" {\n  context = \"clean\"\n}\n\
             target \"api\" {\n  context = \"api\"\n  description = \"the API server\"\n  call = \"outline\"\n}\n",
        ),
    ])
}

fn ours(dir: &Path, args: &[&str]) -> Output {
    rbuild()
        .current_dir(dir)
        .args(["bake", "--addr", &modern_engine(), "--progress", "plain"])
        .args(args)
        .output()
        .unwrap()
}

fn theirs(dir: &Path, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    buildx_new(&modern_engine(), config.path())
        .current_dir(dir)
        .args(["bake", "--progress", "plain"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bake_prints_one_report_per_target_as_buildx_does() {
    let dir = project();
    // --check asks every target, whatever its own call says.
    let (a, b) = (
        ours(dir.path(), &["--check"]),
        theirs(dir.path(), &["--check"]),
    );
    assert_eq!(
        stdout(&a),
        stdout(&b),
        "rbuild stderr:\n{}",
        support::stderr(&a)
    );
    assert_eq!(a.status.code(), Some(1));
    assert_eq!(b.status.code(), Some(1));
    let text = stdout(&a);
    assert!(
        text.starts_with("api\nthe API server\n\nCheck complete, 1 warning has been found!\n"),
        "{text}"
    );
    assert!(
        text.contains("\nclean\n\nCheck complete, no warnings found.\n"),
        "{text}"
    );
    assert!(
        text.contains("\nlint\n\nCheck complete, 3 warnings have been found!\n"),
        "{text}"
    );
    assert!(text.contains("lint/Dockerfile:1\n"), "{text}");

    // Without the flag, only `api` asks (its outline) and the others build.
    let (a, b) = (ours(dir.path(), &[]), theirs(dir.path(), &[]));
    assert_eq!(stdout(&a), stdout(&b));
    assert_eq!(a.status.code(), Some(0), "{}", support::stderr(&a));
    assert_eq!(
        stdout(&a),
        "api\nthe API server\n\nTARGET: api\n\nBUILD ARG   VALUE   DESCRIPTION\nPORT        8080    \n\n"
    );
}

#[test]
fn bake_json_is_one_document_with_every_target() {
    let dir = project();
    let args = ["--call", "check,format=json"];
    let (a, b) = (ours(dir.path(), &args), theirs(dir.path(), &args));
    assert_eq!(a.status.code(), b.status.code());
    let strip = |out: &Output| -> Value {
        let mut doc: Value = serde_json::from_str(&stdout(out))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)));
        for t in doc["target"].as_object_mut().unwrap().values_mut() {
            for s in t["check"]["sources"].as_array_mut().into_iter().flatten() {
                s.as_object_mut().unwrap().remove("definition");
            }
        }
        doc
    };
    let (doc, expected) = (strip(&a), strip(&b));
    // The targets' parts are buildx's; the group is what `--print` shows.
    assert_eq!(doc["target"], expected["target"]);
    assert!(doc["group"]["default"]["targets"].is_array(), "{doc}");
    assert_eq!(
        doc["target"]["lint"]["check"]["warnings"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(doc["target"]["lint"]["build"]["call"], "lint");
}
