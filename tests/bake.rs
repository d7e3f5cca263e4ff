//! `rbuild bake` against the real stack: a bake file's targets built
//! together over one connection, each checked where the user would look.

mod support;

use std::path::Path;

use support::{context, rbuild, registry, stack, stderr, stdout, unique};

/// A project with one Dockerfile and a bake file with three targets.
fn project(image: &str) -> tempfile::TempDir {
    let dir = context(&[
        (
            "app/Dockerfile",
            "ARG BASE\nFROM ${BASE} AS base\nRUN echo base-step\n\
             FROM base AS app\nARG MSG\nRUN echo \"$MSG\" > /msg\n\
             FROM scratch AS tests\nCOPY report.txt /report.txt\n\
             FROM base AS broken\nRUN echo about-to-break && exit 7\n",
        ),
        ("app/report.txt", "all tests passed\n"),
    ]);
    let hcl = format!(
        r#"variable "BASE" {{
  default = ""
}}
variable "TAG" {{
  default = "dev"
}}
group "default" {{
  targets = ["app", "tests"]
}}
target "_common" {{
  context = "app"
  args = {{ BASE = BASE }}
}}
target "app" {{
  inherits = ["_common"]
  target = "app"
  args = {{ MSG = upper("built ${{TAG}}") }}
  tags = ["{image}:${{TAG}}"]
  output = ["type=registry"]
}}
target "tests" {{
  inherits = ["_common"]
  target = "tests"
  output = ["type=local,dest=out-tests"]
}}
target "broken" {{
  inherits = ["_common"]
  target = "broken"
}}
"#
    );
    std::fs::write(dir.path().join("docker-bake.hcl"), hcl).unwrap();
    dir
}

fn bake(dir: &Path, stack: &support::Stack) -> std::process::Command {
    let mut cmd = rbuild();
    cmd.current_dir(dir)
        .args([
            "bake",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "plain",
        ])
        .env("BASE", &stack.base);
    cmd
}

#[test]
fn print_resolves_variables_inherits_and_override_files() {
    let stack = stack();
    let dir = project("r/app");
    std::fs::write(
        dir.path().join("docker-bake.override.json"),
        r#"{"target": {"tests": {"platforms": ["linux/amd64"]}}}"#,
    )
    .unwrap();
    let out = bake(dir.path(), &stack)
        .args(["--print", "--set", "*.labels.team=ci"])
        .env("TAG", "v7")
        .output()
        .unwrap();
    support::assert_success(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        json["group"]["default"]["targets"],
        serde_json::json!(["app", "tests"])
    );
    let app = &json["target"]["app"];
    assert_eq!(app["tags"][0], "r/app:v7");
    assert_eq!(app["args"]["MSG"], "BUILT V7");
    assert_eq!(app["args"]["BASE"], stack.base.as_str());
    assert_eq!(app["context"], "app");
    assert_eq!(app["dockerfile"], "Dockerfile");
    assert_eq!(app["labels"]["team"], "ci");
    assert_eq!(json["target"]["tests"]["platforms"][0], "linux/amd64");
    assert!(json["target"].get("broken").is_none());
}

#[test]
fn targets_build_together_and_a_failure_stops_only_itself() {
    let stack = stack();
    let image = format!("{}/rbuild/{}", stack.registry, unique("bake"));
    let dir = project(&image);
    let out = bake(dir.path(), &stack)
        .args(["--metadata-file", "meta.json", "default", "broken"])
        .env("TAG", "t1")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // One progress view, each line naming its target.
    for name in ["app", "tests", "broken"] {
        assert!(err.contains(&format!("[{name}] #1 ")), "{name}: {err}");
    }
    let failures: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(failures.len(), 1, "{err}");
    assert!(failures[0].contains("target \"broken\"") && failures[0].contains("exit code: 7"));
    // The others did their job: the image is in the registry under the
    // digest the metadata names, the local output has the file.
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("meta.json")).unwrap()).unwrap();
    let digest = meta["app"]["containerimage.digest"]
        .as_str()
        .expect("app digest");
    let repo = image.strip_prefix(&format!("{}/", stack.registry)).unwrap();
    let head = registry::request(&stack.registry, "HEAD", &format!("/v2/{repo}/manifests/t1"));
    assert_eq!(head.header("docker-content-digest"), Some(digest));
    assert!(meta.get("broken").is_none(), "{meta}");
    let report = std::fs::read_to_string(dir.path().join("out-tests/report.txt")).unwrap();
    assert_eq!(report, "all tests passed\n");
}

#[test]
fn bake_file_mistakes_are_one_clear_line() {
    let stack = stack();
    let dir = context(&[(
        "docker-bake.hcl",
        "target \"a\" {\n  tags = [shout(\"x\")]\n}\n",
    )]);
    let out = bake(dir.path(), &stack).arg("a").output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("docker-bake.hcl:2:11") && err.contains("unknown function shout"),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let out = bake(empty.path(), &stack).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no bake file here"),
        "{}",
        stderr(&out)
    );

    let valid = context(&[("docker-bake.hcl", "target \"a\" {\n}\n")]);
    let out = bake(valid.path(), &stack).arg("nosuch").output().unwrap();
    assert!(
        stderr(&out).contains("no target or group named \"nosuch\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn compose_services_are_targets() {
    let stack = stack();
    let image = format!("{}/rbuild/{}", stack.registry, unique("compose"));
    let dir = context(&[
        (
            "web/Dockerfile",
            "ARG BASE\nFROM ${BASE}\nARG MODE\nRUN echo \"mode=$MODE\" > /mode\n",
        ),
        (
            "compose.yaml",
            "services:\n  web:\n    image: ${IMAGE}:${TAG:-latest}\n    build:\n      context: ./web\n      args:\n        - MODE=prod\n        - BASE\n      x-bake:\n        output: type=registry\n  db:\n    image: postgres\n",
        ),
    ]);
    let out = bake(dir.path(), &stack)
        .arg("--print")
        .env("IMAGE", &image)
        .output()
        .unwrap();
    support::assert_success(&out);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        json["group"]["default"]["targets"],
        serde_json::json!(["web"])
    );
    assert_eq!(
        json["target"]["web"]["tags"][0],
        format!("{image}:latest").as_str()
    );
    assert_eq!(json["target"]["web"]["args"]["BASE"], stack.base.as_str());

    // The same file from stdin, built: the tag reaches the registry.
    let compose = std::fs::read(dir.path().join("compose.yaml")).unwrap();
    let mut child = bake(dir.path(), &stack)
        .args(["-f", "-", "web"])
        .env("IMAGE", &image)
        .env("TAG", "c1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&compose).unwrap();
    let out = child.wait_with_output().unwrap();
    support::assert_success(&out);
    registry::manifest(&stack.registry, &format!("{image}:c1"));
}

#[test]
fn a_target_context_feeds_one_target_into_another() {
    let stack = stack();
    let dir = context(&[
        (
            "base/Dockerfile",
            "ARG BASE\nFROM ${BASE}\nRUN echo from-base > /base.txt\n",
        ),
        (
            "app/Dockerfile",
            "FROM base\nRUN cat /base.txt > /seen.txt\n",
        ),
        ("bad/Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN exit 9\n"),
        (
            "docker-bake.hcl",
            "variable \"BASE\" {\n  default = \"\"\n}\n\
             target \"base\" {\n  context = \"base\"\n  args = { BASE = BASE }\n}\n\
             target \"app\" {\n  context = \"app\"\n  contexts = { base = \"target:base\" }\n  output = [\"type=local,dest=out-app\"]\n}\n\
             target \"bad\" {\n  context = \"bad\"\n  args = { BASE = BASE }\n}\n\
             target \"after-bad\" {\n  context = \"app\"\n  contexts = { base = \"target:bad\" }\n}\n",
        ),
    ]);
    // Asking for app alone builds base first: the dependency comes along.
    let out = bake(dir.path(), &stack).arg("app").output().unwrap();
    support::assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("[base] #") && err.contains("[app] #"), "{err}");
    let seen = std::fs::read_to_string(dir.path().join("out-app/seen.txt")).unwrap();
    assert_eq!(seen, "from-base\n");

    // A failed dependency fails its dependent, which says which and why.
    let out = bake(dir.path(), &stack).arg("after-bad").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error: target \"after-bad\": context \"base\" needs target \"bad\""),
        "{err}"
    );
}

#[test]
fn run_limits_annotations_and_no_cache_filter_reach_the_daemon() {
    let stack = stack();
    let image = format!("{}/rbuild/{}", stack.registry, unique("bake-attrs"));
    let stamp = unique("stamp");
    let dir = context(&[
        (
            "Dockerfile",
            &format!(
                "ARG BASE\nFROM ${{BASE}} AS first\nRUN echo {stamp} > /first\n\
                 FROM first AS second\nRUN df -k /dev/shm | tail -n 1 | awk '{{print $2}}' > /shm && ulimit -n > /nofile && cat /proc/sys/kernel/random/uuid > /second\n\
                 FROM scratch AS out\nCOPY --from=second /shm /nofile /second /\n"
            ),
        ),
        (
            "docker-bake.hcl",
            &format!(
                "variable \"BASE\" {{\n  default = \"\"\n}}\n\
                 target \"limits\" {{\n  args = {{ BASE = BASE }}\n  target = \"out\"\n  shm-size = \"96m\"\n  ulimits = [\"nofile=1234:2345\"]\n  output = [\"type=local,dest=limits\"]\n}}\n\
                 target \"annotated\" {{\n  args = {{ BASE = BASE }}\n  target = \"first\"\n  tags = [\"{image}:1\"]\n  annotations = [\"org.example.note=from-bake\"]\n  attest = [\"type=provenance,mode=min\"]\n  output = [\"type=registry,oci-mediatypes=true\"]\n}}\n"
            ),
        ),
    ]);
    let out = bake(dir.path(), &stack)
        .args(["limits", "annotated"])
        .output()
        .unwrap();
    support::assert_success(&out);
    let read = |f: &str| std::fs::read_to_string(dir.path().join("limits").join(f)).unwrap();
    assert_eq!(
        read("shm").trim(),
        (96 * 1024).to_string(),
        "/dev/shm size in KiB"
    );
    assert_eq!(read("nofile").trim(), "1234");
    let manifest = registry::manifest(&stack.registry, &format!("{image}:1"));
    assert_eq!(
        manifest["annotations"]["org.example.note"], "from-bake",
        "{manifest}"
    );

    // Again with only `second` uncached: `first` comes from cache, `second` re-runs.
    let first = read("second");
    let out = bake(dir.path(), &stack)
        .args(["--set", "limits.no-cache-filter=second", "limits"])
        .output()
        .unwrap();
    support::assert_success(&out);
    let err = stderr(&out);
    let step = |prefix: &str| -> String {
        let line = err.lines().find(|l| l.contains(prefix));
        let number = line.and_then(|l| l.split_whitespace().next());
        number
            .unwrap_or_else(|| panic!("no {prefix} step in: {err}"))
            .to_string()
    };
    let (first_step, second_step) = (step("[first 2/2] RUN"), step("[second 1/1] RUN"));
    assert!(err.contains(&format!("{first_step} CACHED")), "{err}");
    assert!(!err.contains(&format!("{second_step} CACHED")), "{err}");
    assert_ne!(read("second"), first, "the filtered stage ran again");
}
