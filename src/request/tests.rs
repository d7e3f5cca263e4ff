use super::*;
use std::path::Path;

#[test]
fn shared_key_is_stable_and_distinct() {
    assert_eq!(shared_key(Path::new("/a")), shared_key(Path::new("/a")));
    assert_ne!(shared_key(Path::new("/a")), shared_key(Path::new("/b")));
    assert_eq!(shared_key(Path::new("/a")).len(), 16);
}

#[test]
fn cache_entries_are_completed_from_the_callers_env() {
    use crate::cache::{CacheEnv, GhaRuntime};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let build = Build::new(dir.path()).cache_to(CacheEntry::gha("app"));
    // Nothing is read from the process: without an env the entry is out.
    let plan = prepare(
        &build,
        DaemonKind::Engine,
        None,
        AttestSupport::Yes,
        &Resolved::default(),
    )
    .unwrap();
    assert!(plan.cache_exports.is_empty());
    assert!(plan.warnings[0].contains("type=gha (scope app) skipped"));
    let env = CacheEnv {
        gha: GhaRuntime {
            token: Some("runtime-token".into()),
            cache_url: Some("http://cache/".into()),
            ..GhaRuntime::default()
        },
        aws: None,
    };
    let plan = prepare(
        &build.cache_env(env),
        DaemonKind::Engine,
        None,
        AttestSupport::Yes,
        &Resolved::default(),
    )
    .unwrap();
    assert_eq!(plan.cache_exports[0].attrs["token"], "runtime-token");
    assert!(plan.warnings.is_empty());
    assert_eq!(plan.scrubber.text("x runtime-token"), "x <redacted>");
}

#[test]
fn mistakes_are_found_before_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let err = prepare(
        &Build::new("/nonexistent/ctx"),
        DaemonKind::Engine,
        None,
        AttestSupport::Yes,
        &Resolved::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/ctx does not exist"),
        "{err}"
    );
    let err = prepare(
        &Build::new(dir.path()),
        DaemonKind::Engine,
        None,
        AttestSupport::Yes,
        &Resolved::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no Dockerfile at"), "{err}");
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let reserved = Build::new(dir.path()).named_context("context", dir.path());
    let err = prepare(
        &reserved,
        DaemonKind::Engine,
        None,
        AttestSupport::Yes,
        &Resolved::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    let push = Build::new(dir.path()).output(crate::output::Output::registry());
    let err = prepare(
        &push,
        DaemonKind::Buildkitd,
        None,
        AttestSupport::Yes,
        &Resolved::default(),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        BuildError::Invalid(InvalidBuild::PushWithoutName)
    ));
}
