use super::*;

const FILE: &str = r#"
variable "TAG" {
  default = "dev"
}
variable "REPO" {
  default = "r/${lower("APP")}"
}
variable "DEBUG" {
  default = false
}
group "default" {
  targets = ["app", "all"]
}
group "all" {
  targets = ["app", "tests"]
}
target "base" {
  context = "src"
  args = { BASE = "busybox", MODE = "release" }
}
target "app" {
  inherits = ["base"]
  tags = ["${REPO}:${TAG}"]
  args = { MODE = DEBUG ? "debug" : "release" }
}
target "tests" {
  inherits = ["base"]
  target = "test"
  output = ["type=local,dest=out"]
}
"#;

fn def(env: &[(&str, &str)]) -> Definition {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Definition::parse(&[("docker-bake.hcl", FILE)], move |k| {
        env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap()
}

#[test]
fn default_group_inherits_and_interpolation() {
    let chosen = def(&[]).resolve(&[], &[]).unwrap();
    let names: Vec<&str> = chosen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["app", "tests"]);
    let app = &chosen[0].1;
    assert_eq!(app.tags, ["r/app:dev"]);
    assert_eq!(app.context.as_deref(), Some("src"));
    assert_eq!(app.args["BASE"], "busybox");
    assert_eq!(app.args["MODE"], "release");
    assert!(app.inherits.is_empty());
}

#[test]
fn the_environment_overrides_variables_with_their_type() {
    let chosen = def(&[("TAG", "1.2"), ("DEBUG", "true")])
        .resolve(&["app".into()], &[])
        .unwrap();
    assert_eq!(chosen[0].1.tags, ["r/app:1.2"]);
    assert_eq!(chosen[0].1.args["MODE"], "debug");
}

#[test]
fn set_overrides_by_pattern() {
    let sets: Vec<Override> = ["*.args.V=2", "tests.no-cache=true"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let chosen = def(&[]).resolve(&["all".into()], &sets).unwrap();
    assert!(chosen.iter().all(|(_, t)| t.args["V"] == "2"));
    assert_eq!(chosen[1].1.no_cache, Some(true));
    assert_eq!(chosen[0].1.no_cache, None);
    let tags: Vec<Override> = ["app.tags=r/a:1", "app.tags=r/a:2"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let app = &def(&[]).resolve(&["app".into()], &tags).unwrap()[0].1;
    assert_eq!(
        app.tags,
        ["r/a:1", "r/a:2"],
        "a repeated list override appends"
    );
    let nowhere: Override = "nope.tags=x".parse().unwrap();
    assert!(def(&[]).resolve(&[], &[nowhere]).is_err());
    assert!("novalue".parse::<Override>().is_err());
}

#[test]
fn later_files_override_earlier_ones() {
    let d = Definition::parse(
        &[
            ("docker-bake.hcl", FILE),
            ("docker-bake.override.json", r#"{"variable":{"TAG":{"default":"ovr"}},"target":{"app":{"platforms":["linux/arm64"]}}}"#),
        ],
        |_| None,
    )
    .unwrap();
    let app = &d.resolve(&["app".into()], &[]).unwrap()[0].1;
    assert_eq!(app.tags, ["r/app:ovr"]);
    assert_eq!(app.platforms, ["linux/arm64"]);
}

#[test]
fn mistakes_are_named() {
    let unknown = def(&[]).resolve(&["nope".into()], &[]).unwrap_err();
    assert!(
        unknown.to_string().contains("known: all, default"),
        "{unknown}"
    );
    let err = Definition::parse(
        &[("b.hcl", "target \"a\" {\n  tags = [nosuch(\"x\")]\n}\n")],
        |_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("b.hcl:2:11: ") && err.contains("unknown function nosuch"),
        "{err}"
    );
    let called = Definition::parse(
        &[("b.hcl", "target \"a\" {\n  call = \"check\"\n}\n")],
        |_| None,
    )
    .unwrap();
    assert_eq!(called.targets["a"].call.as_deref(), Some("check"));
    let cyc = Definition::parse(
        &[(
            "b.hcl",
            "target \"a\" {\n inherits = [\"b\"]\n}\ntarget \"b\" {\n inherits = [\"a\"]\n}\n",
        )],
        |_| None,
    )
    .unwrap()
    .resolve(&["a".into()], &[])
    .unwrap_err();
    assert!(cyc.to_string().contains("cycle"), "{cyc}");
}

#[test]
fn targets_become_typed_builds() {
    let chosen = def(&[]).resolve(&[], &[]).unwrap();
    let builds = Definition::builds(&chosen, Path::new("/work")).unwrap();
    assert_eq!(builds[0].name(), Some("app"));
    assert_eq!(builds[0].context(), Path::new("/work/src"));
    let bad = Target {
        network: Some("bridge".into()),
        ..Target::default()
    };
    let err = Definition::builds(&[("x".into(), bad)], Path::new("/")).unwrap_err();
    assert!(err.to_string().contains("target \"x\""), "{err}");
}

#[test]
fn contexts_take_every_build_context_form() {
    use crate::buildspec::NamedContext;
    let contexts = [
        ("lib", "shared/lib"),
        ("base", "docker-image://alpine:3"),
        ("src", "https://github.com/o/r.git#main"),
        ("layout", "oci-layout://layouts/app:v1"),
    ];
    let t = Target {
        context: Some("app".into()),
        contexts: contexts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Target::default()
    };
    let builds = Definition::builds(&[("x".into(), t)], Path::new("/w")).unwrap();
    let got = &builds[0].contexts;
    assert_eq!(got["lib"], NamedContext::Dir("/w/app/shared/lib".into()));
    assert_eq!(got["base"], NamedContext::Image("alpine:3".into()));
    assert_eq!(
        got["src"],
        NamedContext::Remote("https://github.com/o/r.git#main".into())
    );
    match &got["layout"] {
        NamedContext::OciLayout(l) => {
            assert_eq!(l.dir, Path::new("/w/app/layouts/app"));
            assert_eq!(l.tag.as_deref(), Some("v1"));
        }
        other => panic!("{other:?}"),
    }
    let bad = Target {
        contexts: [("x".to_string(), "s3://bucket/ctx".to_string())].into(),
        ..Target::default()
    };
    let err = Definition::builds(&[("t".into(), bad)], Path::new("/")).unwrap_err();
    assert!(err.to_string().contains("s3://bucket/ctx"), "{err}");
}

#[test]
fn globs_match_like_buildx() {
    assert!(glob("*", "anything"));
    assert!(glob("app-*", "app-web"));
    assert!(!glob("app-*", "db"));
    assert!(glob("a*c", "abbc"));
}

#[test]
fn matrix_targets_expand_and_their_name_is_a_group() {
    let d = Definition::parse(
        &[(
            "docker-bake.hcl",
            r#"
target "build" {
  name = "build-${tgt}-${replace(v, ".", "-")}"
  matrix = {
    tgt = ["release", "debug"]
    v = ["1.0", "2.0"]
  }
  target = tgt
  args = { VERSION = v }
}
"#,
        )],
        |_| None,
    )
    .unwrap();
    let chosen = d.resolve(&["build".into()], &[]).unwrap();
    let names: Vec<&str> = chosen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "build-release-1-0",
            "build-release-2-0",
            "build-debug-1-0",
            "build-debug-2-0"
        ]
    );
    assert_eq!(chosen[3].1.target.as_deref(), Some("debug"));
    assert_eq!(chosen[3].1.args["VERSION"], "2.0");
}

#[test]
fn user_functions_work_in_attributes_templates_and_each_other() {
    let d = Definition::parse(
        &[(
            "docker-bake.hcl",
            r#"
variable "REGISTRY" {
  default = "r:5000"
}
function "image" {
  params = [name, version]
  result = "${REGISTRY}/${name}:${version}"
}
function "tags" {
  params = [name]
  variadic_params = versions
  result = [for v in versions : image(name, v)]
}
target "app" {
  tags = tags("app", "1", "latest")
  labels = { ref = "built from ${image("app", "1")}" }
}
"#,
        )],
        |_| None,
    )
    .unwrap();
    let app = &d.resolve(&["app".into()], &[]).unwrap()[0].1;
    assert_eq!(app.tags, ["r:5000/app:1", "r:5000/app:latest"]);
    assert_eq!(app.labels["ref"], "built from r:5000/app:1");
    let bad = Definition::parse(
        &[("b.hcl", "function \"f\" {\n  params = [a]\n}\n")],
        |_| None,
    );
    assert!(bad.unwrap_err().to_string().contains("needs a result"));
}
