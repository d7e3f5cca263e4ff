//! Freshness on the real stack: steps that fetch from outside are renewed
//! once per time window, and every runner in a window shares one result.
//!
//! The Dockerfile is rewritten with the library (`rbuild::dockerfile`) at
//! injected times and served from memory with `-f -`; a fresh runner is the
//! engine with its build cache pruned, importing only the registry cache.

mod support;

use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rbuild::docker_api::Engine;
use rbuild::dockerfile::{Rewritten, prepare};
use support::steps::assert_cached;
use support::{Stack, context, rbuild, stack, stderr, unique};

const DAY: u64 = 86_400;
const EVERY_DAY: Option<Duration> = Some(Duration::from_secs(DAY));

/// `hours` past midnight UTC of day `day` since the epoch.
fn at(day: u64, hours: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(day * DAY + hours * 3_600)
}

/// A build of `dockerfile` (served from stdin) with the registry cache
/// `cache`, rawjson progress on stdout.
fn build(stack: &Stack, dockerfile: &str, cache: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let ctx = context(&[("README", "freshness test context\n")]);
    let mut child = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "rawjson",
        ])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--cache", cache, "-f", "-"])
        .arg(ctx.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rbuild runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(dockerfile.as_bytes())
        .expect("Dockerfile written to stdin");
    child.wait_with_output().expect("rbuild finishes")
}

fn rewrite(text: &str, force: bool, now: SystemTime) -> Rewritten {
    prepare(text, EVERY_DAY, force, now)
        .expect("the Dockerfile is analyzed")
        .expect("a step is refreshed")
}

#[tokio::test(flavor = "multi_thread")]
async fn runners_share_a_window_and_the_next_window_reruns_from_the_marked_step() {
    let stack = stack();
    let engine = Engine::new(stack.engine_socket.clone());
    let id = unique("fresh");
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    // wget is detected as fetching from outside; the port refuses at once,
    // so the step is quick and offline. `never` keeps the step before it.
    let text = format!(
        "ARG BASE\nFROM ${{BASE}}\nRUN echo before-{id} > /before\n\
         # rbuild:refresh=never\n\
         RUN wget -q -T 2 http://127.0.0.1:9/{id} || echo pinned-{id} > /pinned\n\
         RUN wget -q -T 2 http://127.0.0.1:9/{id} || echo fetched-{id} > /fetched\n\
         RUN echo after-{id} > /after\n"
    );
    let day = 20_000;
    let first = rewrite(&text, false, at(day, 1));
    assert_eq!(first.refreshed.len(), 1, "{:?}", first.refreshed);
    assert!(first.refreshed[0].instruction.contains("fetched-"));

    // Runner 1, window N: everything runs and goes to the registry cache.
    let out = build(&stack, &first.text, &cache);
    assert_cached(
        &out,
        &[
            ("before-", false),
            ("pinned-", false),
            ("fetched-", false),
            ("after-", false),
        ],
    );

    // Runner 2, a fresh runner later in window N: the same rewrite, all reused.
    let later = rewrite(&text, false, at(day, 23));
    assert_eq!(later.text, first.text, "one window, one key");
    engine.prune_build_cache().await.unwrap();
    let out = build(&stack, &later.text, &cache);
    assert_cached(
        &out,
        &[
            ("before-", true),
            ("pinned-", true),
            ("fetched-", true),
            ("after-", true),
        ],
    );

    // Runner 3, fresh, window N+1: the marked step and those after it rerun;
    // the steps before it, including the `never` one, stay cached.
    let next = rewrite(&text, false, at(day + 1, 0));
    assert_ne!(next.text, first.text);
    engine.prune_build_cache().await.unwrap();
    let out = build(&stack, &next.text, &cache);
    assert_cached(
        &out,
        &[
            ("before-", true),
            ("pinned-", true),
            ("fetched-", false),
            ("after-", false),
        ],
    );

    // Runner 4, fresh, still window N+1: runner 3's layers are reused.
    engine.prune_build_cache().await.unwrap();
    let out = build(&stack, &next.text, &cache);
    assert_cached(&out, &[("fetched-", true), ("after-", true)]);

    // --refresh: a window of its own now; `never` is still never refreshed.
    let forced = rewrite(&text, true, at(day + 1, 2));
    let out = build(&stack, &forced.text, &cache);
    assert_cached(
        &out,
        &[
            ("before-", true),
            ("pinned-", true),
            ("fetched-", false),
            ("after-", false),
        ],
    );
    let _ = stderr(&out);
}

#[test]
fn a_syntax_error_after_a_refreshed_step_maps_to_the_users_line() {
    let stack = stack();
    let id = unique("fresh-err");
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    // No free line above the curl step: the ARG is inserted and shifts the
    // lines below it by one.
    let text =
        format!("ARG BASE\nFROM ${{BASE}}\nRUN echo {id}\nRUN curl https://x || true\nRUNN typo\n");
    let r = rewrite(&text, false, at(1, 0));
    assert!(!r.keeps_lines());
    let out = build(&stack, &r.text, &cache);
    assert!(!out.status.success(), "RUNN must fail");
    let err = stderr(&out);
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("line 6"),
        "the frontend sees the rewrite: {err}"
    );
    let mapped = r.map_message(last);
    assert!(
        mapped.contains("dockerfile parse error on line 5: unknown instruction: RUNN"),
        "{mapped}"
    );

    // With a directive the ARG takes its line: no mapping needed at all.
    let text = format!(
        "ARG BASE\nFROM ${{BASE}}\nRUN echo {id}\n# rbuild:refresh=6h\nRUN curl https://x || true\nRUNN typo\n"
    );
    let r = rewrite(&text, false, at(1, 0));
    assert!(r.keeps_lines());
    let out = build(&stack, &r.text, &cache);
    let err = stderr(&out);
    assert!(
        err.contains("parse error on line 6: unknown instruction: RUNN"),
        "{err}"
    );
}

/// The parts of BuildKit's grammar dockerfile-parser lacks, which the
/// splitter covers: a `# escape=` directive (backtick continuations) and
/// heredocs. Both fetching steps are found, the rewrite stays a Dockerfile
/// the daemon accepts (the directive still first), and the steps run.
#[test]
fn escape_directives_and_heredocs_are_refreshed_and_build() {
    let stack = stack();
    let id = unique("fresh-grammar");
    let cache = format!("{}/rbuild-test/{id}-cache", stack.registry);
    let text = format!(
        "# escape=`\nARG BASE\nFROM ${{BASE}}\n\
         RUN wget -q -T 2 http://127.0.0.1:9/{id} `\n    || echo continued-{id} > /continued\n\
         RUN <<EOF\nwget -q -T 2 http://127.0.0.1:9/{id} || echo heredoc-{id} > /heredoc\n\
         echo second line >> /heredoc\nEOF\n\
         RUN cat /continued /heredoc\n"
    );
    let r = rewrite(&text, false, at(1, 0));
    let refreshed: Vec<&str> = r.refreshed.iter().map(|s| s.instruction.as_str()).collect();
    assert_eq!(refreshed.len(), 2, "{refreshed:?}");
    assert!(refreshed[0].contains("continued-"), "{refreshed:?}");
    assert!(refreshed[1].starts_with("RUN <<EOF"), "{refreshed:?}");
    assert!(r.text.starts_with("# escape=`\n"), "{}", r.text);
    let out = build(&stack, &r.text, &cache);
    assert_cached(
        &out,
        &[
            ("continued-", false),
            ("<<EOF", false),
            ("cat /continued", false),
        ],
    );
}
