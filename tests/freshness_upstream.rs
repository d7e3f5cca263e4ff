//! Exact freshness on the real stack (`--refresh-upstream`): a fetching
//! step is keyed by what its upstream is now, against real upstreams on
//! loopback — a `git daemon` serving a repository the test commits to, and
//! an HTTP server whose file and ETag the test changes. RUN steps reach
//! them with `--network host`.
//!
//! A fresh runner is the engine with its build cache pruned, importing the
//! registry cache: a step must come back CACHED from there while its
//! upstream stands still, and re-run (with the steps after it, not those
//! before) when it moved. An upstream that is down falls back to the
//! window, with a warning naming the step, the URL and the reason.

mod support;

use std::path::Path;
use std::process::Output;

use rbuild::docker_api::Engine;
use support::git::{commit_and_push, git_image, head, serve_repo};
use support::http_file::FileServer;
use support::steps::assert_cached;
use support::{Stack, assert_success, rbuild, stack, stderr, stdout, unique};

/// `rbuild build --refresh-upstream` of `ctx` with the registry cache
/// `cache`, rawjson progress on stdout and the report in `report`; with
/// `rootfs`, instead the image's root file system is written there (the
/// cache is then only read).
///
/// The cache is asserted on builds without a local output: on this engine
/// a `type=local` export re-runs the last step instead of taking it from
/// the registry cache. The files are exported by a second build right
/// after, which finds everything in the engine's own cache.
fn build(
    stack: &Stack,
    base: &str,
    ctx: &Path,
    cache: &str,
    report: &Path,
    rootfs: Option<&Path>,
) -> Output {
    let mut cmd = rbuild();
    cmd.args([
        "build",
        "--addr",
        &stack.buildkit_host,
        "--progress",
        "rawjson",
    ])
    .args(["--network", "host", "--refresh-upstream"])
    .args(["--build-arg", &format!("BASE={base}")])
    .args(["--cache", cache])
    .arg("--report")
    .arg(report);
    if let Some(dir) = rootfs {
        cmd.arg("-o")
            .arg(format!("type=local,dest={}", dir.display()));
    }
    cmd.arg(ctx).output().expect("rbuild runs")
}

fn check(ctx: &Path, last_report: &Path) -> String {
    let out = rbuild()
        .args(["check", "--refresh-upstream", "--last-report"])
        .arg(last_report)
        .arg(ctx)
        .output()
        .expect("rbuild runs");
    assert_success(&out);
    stdout(&out)
}

/// One test at a time: each prunes the engine, and both pick free
/// loopback ports by binding and releasing them.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The warnings of a build's rawjson progress (BuildKit's bytes fields
/// are base64 there).
fn warnings(out: &Output) -> Vec<String> {
    use base64::Engine as _;
    let mut found = Vec::new();
    for line in stdout(out).lines().filter(|l| l.starts_with('{')) {
        let msg: serde_json::Value = serde_json::from_str(line).expect("rawjson line");
        for w in msg["warnings"].as_array().into_iter().flatten() {
            let short = w["short"].as_str().unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(short)
                .expect("base64");
            found.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    found
}

/// The report's freshness entry for the step whose text contains `needle`.
fn reported(report: &Path, needle: &str) -> serde_json::Value {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report).expect("report written")).unwrap();
    json["freshness"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["step"].as_str().is_some_and(|t| t.contains(needle)))
        .cloned()
        .unwrap_or_else(|| panic!("no {needle:?} step in {json}"))
}

/// The NEXT BUILD text of the upstream row of the step at `line`.
fn next_build(check: &str, line: usize) -> String {
    let prefix = format!("{line:<7} ");
    let upstreams = check
        .split("UPSTREAM (looked up now)")
        .nth(1)
        .unwrap_or_default();
    let row = upstreams
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no row for line {line}:\n{check}"));
    row.split("  ")
        .filter(|c| !c.trim().is_empty())
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clone_stays_cached_until_its_upstream_moves() {
    let _one = SERIAL.lock().await;
    let stack = stack();
    let engine = Engine::new(stack.engine_socket.clone());
    let id = unique("upstream-git");
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    let base = git_image(&stack);
    let upstream = tempfile::tempdir().unwrap();
    let daemon = serve_repo(upstream.path(), &[("f", "v1\n")]);
    let repo = format!("git://127.0.0.1:{}/repo.git", daemon.port);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "ARG BASE\nFROM ${{BASE}}\nRUN echo before-{id} > /before\n\
             RUN git clone -q {repo} /src && echo {id}\n\
             RUN cat /src/f > /after\n"
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.json");
    let rootfs = out.path().join("rootfs");
    let run = || build(&stack, &base, ctx.path(), &cache, &report, None);
    let exported = || {
        let scratch = out.path().join("export-report.json");
        assert_success(&build(
            &stack,
            &base,
            ctx.path(),
            &cache,
            &scratch,
            Some(&rootfs),
        ));
        std::fs::read_to_string(rootfs.join("after")).unwrap()
    };

    // Runner 1: everything runs; the report has the commit the clone saw.
    let first = run();
    assert_cached(
        &first,
        &[
            ("before-", false),
            ("git clone", false),
            ("cat /src/f", false),
        ],
    );
    let v1 = head(&upstream.path().join("work"));
    let step = reported(&report, "git clone");
    assert_eq!(step["upstreams"][0]["identity"], format!("commit {v1}"));
    assert_eq!(step["upstreams"][0]["upstream"], format!("git {repo} HEAD"));
    assert!(step["warning"].is_null(), "{step}");
    assert!(step["key"].as_str().unwrap().starts_with("up."), "{step}");

    // Runner 2, fresh, upstream unchanged: all from the registry cache.
    engine.prune_build_cache().await.unwrap();
    let same = run();
    assert_cached(
        &same,
        &[("before-", true), ("git clone", true), ("cat /src/f", true)],
    );
    assert_eq!(
        next_build(&check(ctx.path(), &report), 4),
        "cached: same key as the last build"
    );

    // A new upstream commit: rbuild check sees it before any build does.
    let v2 = commit_and_push(upstream.path(), &[("f", "v2\n")]);
    assert_ne!(v1, v2);
    assert_eq!(
        next_build(&check(ctx.path(), &report), 4),
        "re-runs: its upstream moved since the last build"
    );

    // Runner 3, fresh: the clone and the step after it re-run, the one
    // before it stays cached, and the new content is in the image.
    engine.prune_build_cache().await.unwrap();
    let moved = run();
    assert_cached(
        &moved,
        &[
            ("before-", true),
            ("git clone", false),
            ("cat /src/f", false),
        ],
    );
    assert_eq!(exported(), "v2\n");
    assert_eq!(
        reported(&report, "git clone")["upstreams"][0]["identity"],
        format!("commit {v2}")
    );

    // Runner 4, fresh, still at v2: runner 3's layers are reused.
    engine.prune_build_cache().await.unwrap();
    let again = run();
    assert_cached(&again, &[("git clone", true), ("cat /src/f", true)]);

    // Upstream down: no silent reuse of the v2 layers. The step falls back
    // to its window, so it re-runs (and the clone fails), and the warning
    // names the step, the URL and why, even though the build failed.
    drop(daemon);
    engine.prune_build_cache().await.unwrap();
    let down = run();
    assert!(!down.status.success(), "the clone cannot succeed offline");
    let said = warnings(&down).join("\n");
    assert!(stderr(&down).contains("error:"), "{}", stderr(&down));
    let warning = format!(
        "line 4 `RUN git clone -q {repo} /src && echo {id}`: cannot look up git {repo} HEAD (unreachable:"
    );
    assert!(said.contains(&warning), "{said}");
    assert!(
        said.contains("renewed every 24h instead (window "),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_follows_its_etag_and_falls_back_when_down() {
    let _one = SERIAL.lock().await;
    let stack = stack();
    let engine = Engine::new(stack.engine_socket.clone());
    let id = unique("upstream-http");
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    let server = FileServer::start("one\n", "e1");
    let url = server.url("file");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "ARG BASE\nFROM ${{BASE}}\nRUN echo before-{id} > /before\n\
             RUN (wget -q -O /f {url} || echo offline > /f) && echo {id}\n\
             RUN cat /f > /after\n"
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.json");
    let rootfs = out.path().join("rootfs");
    let run = || build(&stack, &stack.base, ctx.path(), &cache, &report, None);
    let content = || {
        let scratch = out.path().join("export-report.json");
        let exported = build(
            &stack,
            &stack.base,
            ctx.path(),
            &cache,
            &scratch,
            Some(&rootfs),
        );
        assert_success(&exported);
        std::fs::read_to_string(rootfs.join("after")).unwrap()
    };

    let first = run();
    assert_cached(
        &first,
        &[("before-", false), ("wget", false), ("cat /f", false)],
    );
    assert_eq!(content(), "one\n");
    assert_eq!(
        reported(&report, "wget")["upstreams"][0]["identity"],
        "etag \"e1\""
    );

    // Unchanged ETag, fresh runner: cached, and nothing was downloaded.
    let (_, gets) = server.requests();
    engine.prune_build_cache().await.unwrap();
    let same = run();
    assert_cached(
        &same,
        &[("before-", true), ("wget", true), ("cat /f", true)],
    );
    let (heads, gets_after) = server.requests();
    assert!(heads >= 2, "rbuild asked with HEAD ({heads})");
    assert_eq!(gets_after, gets, "a cached step downloads nothing");

    // A new ETag: the download and what follows re-run, with the new file.
    server.set("two\n", "e2");
    engine.prune_build_cache().await.unwrap();
    let changed = run();
    assert_cached(
        &changed,
        &[("before-", true), ("wget", false), ("cat /f", false)],
    );
    assert_eq!(content(), "two\n");
    engine.prune_build_cache().await.unwrap();
    assert_cached(&run(), &[("wget", true), ("cat /f", true)]);

    // `rbuild check` shows the ETag now for the RUN step and for an ADD
    // of the same URL, which BuildKit checks itself.
    let add = tempfile::tempdir().unwrap();
    std::fs::write(
        add.path().join("Dockerfile"),
        format!("FROM scratch\nADD {url} /a\nRUN wget -q {url}\n"),
    )
    .unwrap();
    let shown = check(add.path(), &report);
    assert_eq!(shown.matches("etag \"e2\"").count(), 2, "{shown}");
    assert_eq!(
        next_build(&shown, 2),
        "BuildKit checks it: re-runs when the content changed"
    );

    // Upstream down: the step falls back to the 24h window (it re-runs, the
    // fallback in the RUN line keeps the build going) with the warning; a
    // second fresh runner in the same window reuses that result.
    drop(server);
    engine.prune_build_cache().await.unwrap();
    let down = run();
    assert_cached(
        &down,
        &[("before-", true), ("wget", false), ("cat /f", false)],
    );
    assert_eq!(content(), "offline\n");
    let warning = format!("cannot look up {url} (unreachable:");
    // rbuild's own warnings only: a newer Dockerfile frontend (Docker 28)
    // adds lint warnings of its own (InvalidDefaultArgInFrom for `FROM ${BASE}`).
    let said: Vec<String> = warnings(&down)
        .into_iter()
        .filter(|w| w.starts_with("line "))
        .collect();
    assert_eq!(said.len(), 1, "one warning: {said:?}");
    assert!(said[0].contains(&warning), "{said:?}");
    assert!(
        said[0].starts_with("line 4 `RUN (wget -q -O /f "),
        "{said:?}"
    );
    let step = reported(&report, "wget");
    assert!(
        step["warning"].as_str().unwrap().contains(&warning),
        "{step}"
    );
    assert!(step["key"].as_str().unwrap().starts_with("24h."), "{step}");
    engine.prune_build_cache().await.unwrap();
    let still_down = run();
    assert_cached(&still_down, &[("wget", true), ("cat /f", true)]);
}
