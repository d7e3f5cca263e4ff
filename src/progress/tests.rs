//! Golden scenarios through the public [`Progress`] API: synthetic status
//! streams in, exact text out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;

use super::fixture::*;
use super::*;

const ERR: &str = "process \"/bin/sh -c false\" did not complete successfully: exit code: 1";

/// A small build: a context load with a transfer status and a lint warning,
/// a cached base, a RUN whose output arrives split mid-line, a failing RUN.
fn build() -> Vec<StatusResponse> {
    let load = vtx(
        "sha256:load",
        "[internal] load build definition from Dockerfile",
    );
    let from = vtx("sha256:from", "[1/3] FROM docker.io/library/busybox");
    let run = vtx("sha256:run", "[2/3] RUN echo hello; echo world");
    let bad = vtx("sha256:bad", "[3/3] RUN false");
    vec![
        resp()
            .vertex(load.clone())
            .vertex(from.clone())
            .vertex(run.clone())
            .build(),
        resp().vertex(load.clone().started(0.0)).build(),
        resp()
            .status(
                st("sha256:load", "transferring dockerfile:")
                    .progress(131, 0, 0.0)
                    .started(0.0)
                    .completed(0.0),
            )
            .warning(warn(
                "sha256:load",
                "JSONArgsRecommended: JSON arguments recommended for CMD (line 4)",
            ))
            .vertex(load.clone().started(0.0).completed(0.04))
            .build(),
        resp()
            .vertex(from.started(0.1).completed(0.1).cached())
            .build(),
        resp().vertex(run.clone().started(0.2)).build(),
        resp().log("sha256:run", 0.45, "hel").build(),
        resp().log("sha256:run", 0.5, "lo\nwor").build(),
        resp()
            .log("sha256:run", 1.0, "ld\n")
            .vertex(run.clone().started(0.2).completed(1.4))
            .build(),
        // Repeats of what was already shown print nothing.
        resp()
            .vertex(run.started(0.2).completed(1.4))
            .vertex(load.started(0.0).completed(0.04))
            .build(),
        resp()
            .vertex(bad.clone().started(1.5))
            .log("sha256:bad", 1.6, "oops")
            .build(),
        resp()
            .vertex(bad.started(1.5).completed(1.7).error(ERR))
            .build(),
    ]
}

fn plain(msgs: &[StatusResponse]) -> (String, Summary) {
    let sink = Sink::default();
    let mut p = Progress::new(Mode::Plain, Box::new(sink.clone()));
    p.mark(|name| {
        name.contains("FROM")
            .then(|| "(refresh every 24h)".to_string())
    });
    // As if each message arrived in its own tick window.
    for m in msgs {
        p.update(m).expect("writing to memory");
        p.tick().expect("writing to memory");
    }
    let summary = p.finish().expect("writing to memory");
    (sink.text(), summary)
}

#[test]
fn plain_build_golden() {
    let (text, summary) = plain(&build());
    let want = "\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 131B done
#1 WARN: JSONArgsRecommended: JSON arguments recommended for CMD (line 4)
#1 DONE 0.0s

#2 [1/3] FROM docker.io/library/busybox (refresh every 24h)
#2 CACHED

#3 [2/3] RUN echo hello; echo world
#3 0.250 hello
#3 0.300 world
#3 DONE 1.2s

#4 [3/3] RUN false
#4 0.100 oops
#4 ERROR: process \"/bin/sh -c false\" did not complete successfully: exit code: 1
------
 > [3/3] RUN false:
0.100 oops
------

 1 warning found:
 - JSONArgsRecommended: JSON arguments recommended for CMD (line 4)
";
    assert_eq!(text, want);
    let failed = FailedVertex {
        name: "[3/3] RUN false".into(),
        error: ERR.into(),
        logs: vec!["oops".into()],
    };
    assert_eq!(
        summary,
        Summary {
            total: 4,
            cached: 1,
            executed: 2,
            failed: 1,
            executed_time: Duration::from_millis(1_240),
            warnings: 1,
            failed_vertex: Some(failed),
        }
    );
}

#[test]
fn plain_interleaves_concurrent_steps() {
    let a = vtx("a", "[a 1/1] RUN a");
    let b = vtx("b", "[b 1/1] RUN b");
    let msgs = [
        resp()
            .vertex(a.clone().started(0.0))
            .vertex(b.clone().started(0.0))
            .build(),
        resp().log("a", 1.0, "a1\n").build(),
        resp().log("b", 2.0, "b1\n").build(),
        // b has waited 10s of daemon time: it gets the floor, and keeps it
        // until its block closes.
        resp().log("a", 11.0, "a2\n").build(),
        resp()
            .vertex(a.started(0.0).completed(12.0))
            .log("b", 12.0, "b2\n")
            .build(),
        resp()
            .vertex(b.clone().started(0.0).completed(13.0))
            .build(),
        resp().vertex(b.started(0.0).completed(13.0)).build(),
    ];
    let (text, summary) = plain(&msgs);
    let want = "\
#1 [a 1/1] RUN a
#1 1.000 a1
#1 11.00 a2
#1 ...

#2 [b 1/1] RUN b
#2 2.000 b1
#2 12.00 b2
#2 DONE 13.0s

#1 [a 1/1] RUN a
#1 DONE 12.0s
";
    assert_eq!(text, want);
    assert_eq!((summary.total, summary.executed, summary.failed), (2, 2, 0));
}

#[test]
fn plain_transfer_statuses_wait_then_are_throttled() {
    let v = vtx("v", "[1/1] FROM registry.invalid/x");
    let layer = |current, at| {
        st("v", "sha256:aaa")
            .started(0.0)
            .progress(current, 20_000_000, at)
    };
    let msgs = [
        resp().vertex(v.clone().started(0.0)).build(),
        // Young: not shown; then running a second: shown.
        resp().status(layer(100_000, 0.3)).build(),
        resp().status(layer(1_200_000, 1.2)).build(),
        // 1.5% more: throttled; 19% more: shown.
        resp().status(layer(1_500_000, 1.5)).build(),
        resp().status(layer(5_000_000, 2.5)).build(),
        // 2.5% more: throttled; 5.5s later: shown.
        resp().status(layer(5_500_000, 3.0)).build(),
        resp().status(layer(6_000_000, 8.0)).build(),
        resp()
            .status(layer(20_000_000, 9.0).completed(9.0))
            .vertex(v.started(0.0).completed(9.1))
            .build(),
    ];
    let want = "\
#1 [1/1] FROM registry.invalid/x (refresh every 24h)
#1 sha256:aaa 1.20MB / 20.00MB 1.2s
#1 sha256:aaa 5.00MB / 20.00MB 2.5s
#1 sha256:aaa 6.00MB / 20.00MB 8.0s
#1 sha256:aaa 20.00MB / 20.00MB 9.0s done
#1 DONE 9.1s
";
    assert_eq!(plain(&msgs).0, want);
}

#[test]
fn plain_canceled_step_is_not_a_failure() {
    let v = vtx("v", "[2/2] RUN sleep 60");
    let msgs = [
        resp().vertex(v.clone().started(0.0)).build(),
        resp()
            .vertex(
                v.started(0.0)
                    .completed(2.0)
                    .error("rpc error: context canceled"),
            )
            .build(),
    ];
    let (text, summary) = plain(&msgs);
    assert_eq!(text, "#1 [2/2] RUN sleep 60\n#1 CANCELED\n");
    assert_eq!(
        (summary.total, summary.failed, summary.failed_vertex),
        (1, 0, None)
    );
}

#[test]
fn rawjson_writes_one_parsable_line_per_message() {
    let sink = Sink::default();
    let mut p = Progress::new(Mode::RawJson, Box::new(sink.clone()));
    let msgs = build();
    for m in &msgs {
        p.update(m).expect("writing to memory");
    }
    let summary = p.finish().expect("writing to memory");
    assert_eq!(summary.failed, 1);
    let text = sink.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), msgs.len());
    let v = &lines[1]["vertexes"][0];
    assert_eq!(v["digest"], "sha256:load");
    assert_eq!(v["started"], "2023-11-14T22:13:20Z");
    assert!(v.get("completed").is_none() && v.get("cached").is_none());
    let s = &lines[2]["statuses"][0];
    assert_eq!(
        (s["id"].as_str(), s["current"].as_u64()),
        (Some("transferring dockerfile:"), Some(131))
    );
    assert!(s.get("total").is_none(), "total 0 is omitted");
    assert_eq!(lines[2]["warnings"][0]["level"], 1);
    let short = base64::engine::general_purpose::STANDARD
        .encode("JSONArgsRecommended: JSON arguments recommended for CMD (line 4)");
    assert_eq!(lines[2]["warnings"][0]["short"], short.as_str());
    let log = &lines[6]["logs"][0];
    assert_eq!(
        (log["data"].as_str(), log["stream"].as_i64()),
        (Some("bG8Kd29y"), Some(1))
    );
    assert_eq!(log["timestamp"], "2023-11-14T22:13:20.5Z");
    assert_eq!(lines[10]["vertexes"][0]["error"], ERR);
}

#[test]
fn quiet_prints_nothing_but_summarises() {
    let sink = Sink::default();
    let mut p = Progress::new(Mode::Quiet, Box::new(sink.clone()));
    for m in &build() {
        p.update(m).expect("no output");
    }
    p.tick().expect("no output");
    let summary = p.finish().expect("no output");
    assert_eq!(
        (
            summary.total,
            summary.cached,
            summary.executed,
            summary.failed
        ),
        (4, 1, 2, 1)
    );
    assert_eq!(sink.text(), "");
}

/// A tty display on an 80x24 screen whose clock the test moves.
fn tty() -> (Progress, Sink, Arc<AtomicU64>) {
    tty_sized(80, 24)
}

fn tty_sized(cols: usize, lines: usize) -> (Progress, Sink, Arc<AtomicU64>) {
    let sink = Sink::default();
    let millis = Arc::new(AtomicU64::new(0));
    let base = Instant::now();
    let m = millis.clone();
    let clock: Clock = Box::new(move || base + Duration::from_millis(m.load(Ordering::SeqCst)));
    let mut p = Progress::with_clock(Mode::Tty, Box::new(sink.clone()), clock);
    if let View::Tty(t) = &mut p.view {
        t.size = Some((cols, lines));
        t.color = false;
    }
    (p, sink, millis)
}

/// The text of the last frame drawn (after the last cursor-up), escapes removed.
fn last_frame(text: &str) -> String {
    let start = text.rfind("A\r[+]").map_or(0, |i| i + 1);
    let frame = &text[start..];
    let end = frame.find("\x1b[J").unwrap_or(frame.len());
    frame[..end].replace("\x1b[K", "").replace('\r', "")
}

fn row(left: &str, time: &str) -> String {
    format!("{left:<width$} {time}\n", width = 79 - time.len() - 1)
}

#[test]
fn tty_redraws_in_place_and_leaves_the_final_frame() {
    let (mut p, sink, clock) = tty();
    let msgs = build();
    for (i, m) in msgs[..9].iter().enumerate() {
        clock.store(200 * i as u64, Ordering::SeqCst);
        p.update(m).expect("writing to memory");
    }
    // Live: the running step shows its log tail.
    let bad = vtx("sha256:bad", "[3/3] RUN false").started(1.5);
    p.update(
        &resp()
            .vertex(bad)
            .log("sha256:bad", 1.6, "oops\npartial")
            .build(),
    )
    .unwrap();
    clock.store(2_000, Ordering::SeqCst);
    p.tick().expect("writing to memory");
    let live = last_frame(&sink.text());
    assert!(live.starts_with("[+] Building 2.0s (3/4)\n"), "{live}");
    assert!(live.contains(" => => # oops\n => => # partial\n"), "{live}");
    assert!(live.contains(&row(" => [3/3] RUN false", "0.3s")), "{live}");

    p.update(&msgs[10]).expect("writing to memory");
    let summary = p.finish().expect("writing to memory");
    assert_eq!(summary.failed, 1);
    let text = sink.text();
    let want_frame = [
        "[+] Building 2.0s (4/4) FINISHED\n".to_string(),
        row(
            " => [internal] load build definition from Dockerfile",
            "0.0s",
        ),
        row(" => => transferring dockerfile: 131B", "0.0s"),
        " => WARN: JSONArgsRecommended: JSON arguments recommended for CMD (line 4)\n".into(),
        row(" => CACHED [1/3] FROM docker.io/library/busybox", "0.0s"),
        row(" => [2/3] RUN echo hello; echo world", "1.2s"),
        row(" => ERROR [3/3] RUN false", "0.2s"),
    ]
    .concat();
    let tail = "\x1b[J------\n > [3/3] RUN false:\n0.100 oops\n0.100 partial\n------\n\n \
                1 warning found:\n - JSONArgsRecommended: JSON arguments recommended for CMD (line 4)\n";
    assert!(text.ends_with(tail), "{text:?}");
    assert_eq!(last_frame(&text), want_frame);
    assert!(
        text.contains("\x1b[9A\r[+] Building"),
        "redraws move up over the previous frame"
    );
}

#[test]
fn tty_successful_build_ends_with_the_frame() {
    let (mut p, sink, clock) = tty();
    for m in &build()[..9] {
        p.update(m).expect("writing to memory");
    }
    clock.store(1_500, Ordering::SeqCst);
    p.finish().expect("writing to memory");
    let text = sink.text();
    assert!(text.ends_with(&format!("{}\x1b[K\n\x1b[J\n 1 warning found:\n - JSONArgsRecommended: JSON arguments recommended for CMD (line 4)\n", row(" => [2/3] RUN echo hello; echo world", "1.2s").trim_end())));
    assert!(last_frame(&text).starts_with("[+] Building 1.5s (3/3) FINISHED\n"));
}

/// Step names, statuses and logs in CJK and emoji, with combining accents:
/// every line of every frame fits the terminal (one column spare, as the
/// frame leaves it), and timed rows end exactly at that column.
#[test]
fn tty_frames_fit_the_terminal_with_wide_characters() {
    use super::width::{columns, truncate};
    let (from, run, make) = (
        vtx("sha256:a", "[1/3] FROM 镜像仓库/基础镜像:最新版本"),
        vtx("sha256:b", "[2/3] RUN echo 🚀🚀🚀 デプロイ ❤\u{fe0f} done"),
        vtx("sha256:c", "[3/3] RUN make ce\u{301}le\u{301}bre 構築する"),
    );
    let pull = st("sha256:b", "下载中 📦📦").progress(5 << 20, 9 << 20, 0.4);
    let rockets = "🚀".repeat(22) + "\n部分的な出力";
    let compiling = "コンパイル中".repeat(4) + "\n";
    let msgs = [
        resp().vertex(from.started(0.0).completed(0.3)).build(),
        resp()
            .vertex(run.clone().started(0.3))
            .status(pull.started(0.3))
            .log("sha256:b", 0.5, &rockets)
            .build(),
        resp()
            .vertex(run.started(0.3).completed(1.2))
            .vertex(make.started(1.2))
            .log("sha256:c", 1.3, &compiling)
            .build(),
    ];
    for cols in [20, 37, 80] {
        let (mut p, sink, clock) = tty_sized(cols, 24);
        for (i, m) in msgs.iter().enumerate() {
            clock.store(500 * i as u64, Ordering::SeqCst);
            p.update(m).expect("writing to memory");
            p.tick().expect("writing to memory");
        }
        p.finish().expect("writing to memory");
        let text = sink.text();
        let end = text.rfind("\x1b[K\n").expect("a painted line");
        let mut timed = 0;
        // Every painted line ends with clear-to-end-of-line; escapes and
        // carriage returns take no columns.
        for line in text[..end].split("\x1b[K\n") {
            let shown = truncate(line, usize::MAX);
            assert!(columns(&shown) < cols, "{cols} columns: {shown:?}");
            if shown.starts_with(" => ") && shown.ends_with('s') {
                timed += 1;
                assert_eq!(columns(&shown), cols - 1, "{cols} columns: {shown:?}");
            }
        }
        assert!(timed >= 9, "{cols} columns: {text:?}");
    }
}

#[test]
fn progress_can_move_into_a_task() {
    fn assert_send<T: Send>() {}
    assert_send::<Progress>();
}
