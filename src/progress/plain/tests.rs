//! Plain output through the public [`Progress`] API: synthetic streams with
//! ticks between messages, and real daemon streams replayed (recorded with
//! `rbuild --progress rawjson` from Docker Engine 26.1 / BuildKit 0.13; the
//! `.plain` files are what buildx 0.13 printed for the same builds, give or
//! take timings, digests and buildx's attestation manifests).

use crate::progress::fixture::*;
use crate::progress::{Mode, Progress, Summary, replay};
use crate::proto::moby::buildkit::v1::StatusResponse;

/// Feeds each batch, then ticks `ticks` times after it.
fn run(batches: &[(StatusResponse, u32)]) -> (String, Summary) {
    let sink = Sink::default();
    let mut p = Progress::new(Mode::Plain, Box::new(sink.clone()));
    for (msg, ticks) in batches {
        p.update(msg).expect("writing to memory");
        for _ in 0..*ticks {
            p.tick().expect("writing to memory");
        }
    }
    let summary = p.finish().expect("writing to memory");
    (sink.text(), summary)
}

fn testdata(name: &str) -> String {
    let path = format!(
        "{}/src/progress/plain/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Wherever the 100ms ticks fall, a recorded build prints the same text.
#[test]
fn recorded_builds_print_the_same_whatever_the_tick_phase() {
    let counts = [
        ("simple", (8, 1, 7, 0)),
        ("cached", (8, 2, 6, 0)),
        ("fail", (5, 1, 3, 1)),
        ("par", (10, 1, 9, 0)),
        ("parfail", (6, 1, 3, 1)),
    ];
    for (name, (total, cached, executed, failed)) in counts {
        let msgs = replay::parse(&testdata(&format!("{name}.jsonl")));
        let want = testdata(&format!("{name}.plain"));
        for phase in 0..100 {
            let (text, s) = replay::plain(&msgs, phase);
            assert_eq!(text, want, "{name} with ticks at +{phase}ms");
            let got = (s.total, s.cached, s.executed, s.failed);
            assert_eq!(got, (total, cached, executed, failed), "{name}");
        }
    }
}

/// A 300MB context upload and a 7.6s layer export: long sub-tasks are shown
/// while they run, and only the first running line depends on the ticks.
#[test]
fn recorded_long_transfers_show_progress() {
    let msgs = replay::parse(&testdata("big.jsonl"));
    assert_eq!(replay::plain(&msgs, 0).0, testdata("big.plain"));
    for phase in 0..100 {
        let (text, _) = replay::plain(&msgs, phase);
        let context: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("#5 transferring context: "))
            .collect();
        assert_eq!(context.len(), 2, "{text}");
        assert!(context[1].ends_with(" 300.01MB 2.0s done"), "{text}");
        assert!(text.contains("#8 exporting layers\n#8 exporting layers 7.6s done\n"));
    }
}

/// The cache-key pass reports a step done, then the work starts it again:
/// the first end is never printed.
#[test]
fn a_step_restarted_right_after_its_end_prints_once() {
    let first = vtx("d", "[internal] load build definition from Dockerfile");
    let transfer = || st("d", "transferring dockerfile:").started(0.02);
    let (text, _) = run(&[
        (
            resp()
                .vertex(first.clone().started(0.0).completed(0.0))
                .build(),
            1,
        ),
        (resp().vertex(first.clone().started(0.001)).build(), 0),
        (resp().status(transfer().progress(0, 0, 0.02)).build(), 1),
        (
            resp()
                .status(transfer().progress(94, 0, 0.03).completed(0.03))
                .vertex(first.started(0.001).completed(0.04))
                .build(),
            3,
        ),
    ]);
    let want = "\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 94B done
#1 DONE 0.0s
";
    assert_eq!(text, want);
}

/// A base image is resolved (not cached), then reported again as a cached
/// run: one block, ending CACHED, as progressui decides on the latest state.
#[test]
fn a_resolved_base_reported_cached_ends_cached_once() {
    let from = vtx("f", "[1/2] FROM registry.invalid/base");
    let resolve = || st("f", "resolve registry.invalid/base").started(0.0);
    let run_ = vtx("r", "[2/2] RUN true");
    let (text, summary) = run(&[
        (resp().vertex(from.clone().started(0.0)).build(), 1),
        (
            resp()
                .vertex(from.clone().started(0.0).completed(0.013))
                .status(resolve().progress(0, 0, 0.013).completed(0.013))
                .build(),
            1,
        ),
        (
            resp().vertex(from.clone().started(0.015).cached()).build(),
            0,
        ),
        (
            resp()
                .vertex(from.started(0.015).completed(0.016).cached())
                .vertex(run_.clone().started(0.02))
                .build(),
            2,
        ),
        (resp().vertex(run_.started(0.02).completed(0.3)).build(), 2),
    ]);
    let want = "\
#1 [1/2] FROM registry.invalid/base
#1 resolve registry.invalid/base 0.0s done
#1 CACHED

#2 [2/2] RUN true
#2 DONE 0.3s
";
    assert_eq!(text, want);
    assert_eq!((summary.total, summary.cached, summary.executed), (2, 1, 1));
}

/// Late news for a step whose end line is out: repeats, running sub-task
/// updates and a restart without output are dropped; a finished sub-task not
/// shown yet, output, or another outcome re-open it.
#[test]
fn late_news_after_the_end_line() {
    let v = vtx("v", "[1/1] RUN make");
    let layer = || st("v", "sha256:aaa").started(0.1);
    let done = v.clone().started(0.0).completed(1.0);
    let (text, summary) = run(&[
        (resp().vertex(done.clone()).build(), 2),
        (resp().vertex(done.clone()).build(), 2),
        (resp().status(layer().progress(5, 10, 0.5)).build(), 2),
        (resp().vertex(v.clone().started(2.0)).build(), 1),
        (
            resp().vertex(v.clone().started(2.0).completed(2.1)).build(),
            2,
        ),
        (
            resp()
                .status(layer().progress(10, 10, 1.0).completed(1.0))
                .build(),
            2,
        ),
        (resp().log("v", 2.05, "late line\n").build(), 2),
        (
            resp()
                .vertex(v.started(2.0).completed(2.2).error("exit code: 2"))
                .build(),
            2,
        ),
    ]);
    let want = "\
#1 [1/1] RUN make
#1 DONE 1.0s

#1 [1/1] RUN make
#1 sha256:aaa 10B / 10B 0.9s done
#1 DONE 1.1s

#1 [1/1] RUN make
#1 0.050 late line
#1 DONE 1.1s

#1 [1/1] RUN make
#1 ERROR: exit code: 2
------
 > [1/1] RUN make:
0.050 late line
------
";
    assert_eq!(text, want);
    assert_eq!((summary.total, summary.failed, summary.executed), (1, 1, 0));
}

/// Sub-tasks that finish quickly print only their `done` line; one that runs
/// silently is shown once it has run a second by ticks.
#[test]
fn quick_sub_tasks_print_done_only_slow_ones_also_while_running() {
    let v = vtx("x", "exporting to image");
    let layers = || st("x", "exporting layers").started(0.0);
    let manifest = || st("x", "exporting manifest sha256:m").started(8.0);
    let (text, _) = run(&[
        (
            resp()
                .vertex(v.clone().started(0.0))
                .status(layers().progress(0, 0, 0.0))
                .build(),
            9,
        ),
        (resp().build(), 1),
        (
            resp()
                .status(layers().progress(0, 0, 8.0).completed(8.0))
                .status(manifest().progress(0, 0, 8.0))
                .build(),
            0,
        ),
        (
            resp()
                .status(manifest().progress(0, 0, 8.005).completed(8.005))
                .vertex(v.started(0.0).completed(8.1))
                .build(),
            2,
        ),
    ]);
    let want = "\
#1 exporting to image
#1 exporting layers
#1 exporting layers 8.0s done
#1 exporting manifest sha256:m done
#1 DONE 8.1s
";
    assert_eq!(text, want);
}

/// Output of a step that does not hold the floor waits; the holder is
/// interrupted (`#N ...`) once it has been quiet for five seconds of ticks,
/// even when the daemon sends nothing meanwhile.
#[test]
fn a_quiet_floor_holder_yields_after_five_seconds_of_ticks() {
    let a = vtx("a", "[a 1/1] RUN sleep 60");
    let b = vtx("b", "[b 1/1] RUN work");
    let (text, _) = run(&[
        (resp().vertex(a.clone().started(0.0)).build(), 1),
        (resp().vertex(b.clone().started(0.0)).build(), 1),
        (resp().log("b", 0.2, "b1\n").build(), 48),
        (resp().build(), 1),
        (resp().build(), 1),
        (resp().vertex(b.started(0.0).completed(5.5)).build(), 2),
    ]);
    let want = "\
#1 [a 1/1] RUN sleep 60
#1 ...

#2 [b 1/1] RUN work
#2 0.200 b1
#2 DONE 5.5s

#1 [a 1/1] RUN sleep 60
";
    assert_eq!(text, want);
}
