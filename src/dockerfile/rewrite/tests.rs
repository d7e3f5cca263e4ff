use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

const DAY: u64 = 86_400;

/// 05:00 UTC on day `day` since the epoch.
fn at(day: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(day * DAY + 5 * 3_600)
}

fn every(secs: u64) -> Option<Duration> {
    Some(Duration::from_secs(secs))
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn nothing_to_refresh_is_none() {
    let text = "FROM a\nRUN make\n";
    assert!(prepare(text, None, false, at(1)).unwrap().is_none());
    assert!(prepare(text, every(DAY), true, at(1)).unwrap().is_none());
    let never = "FROM a\n# rbuild:refresh=never\nRUN git clone https://x\n";
    assert!(prepare(never, every(DAY), true, at(1)).unwrap().is_none());
}

#[test]
fn directive_line_becomes_the_arg_and_lines_keep_their_numbers() {
    let text = "FROM a\nRUN echo one\n# rbuild:refresh=6h\nCOPY x /x\nRUN echo two\n";
    let r = prepare(text, None, false, at(20_451)).unwrap().unwrap();
    // 05:00 on day 20451 is the second 6h window of that day.
    let window = 20_451 * 4;
    assert_eq!(
        lines(&r.text),
        [
            "FROM a",
            "RUN echo one",
            &format!("ARG RBUILD_REFRESH=6h.{window}"),
            "COPY x /x",
            "RUN echo two"
        ]
    );
    assert!(r.keeps_lines());
    assert_eq!(r.map_message("error on line 5"), "error on line 5");
    assert_eq!(r.refreshed.len(), 1);
    let step = &r.refreshed[0];
    assert_eq!((step.line, step.instruction.as_str()), (4, "COPY x /x"));
    assert_eq!(
        (step.reason.as_str(), step.window.clone()),
        ("directive", window.to_string())
    );
}

#[test]
fn windows_agree_within_a_period_and_move_at_its_end() {
    let text = "FROM a\n\nRUN git clone https://x\n";
    let text_at = |t| prepare(text, every(DAY), false, t).unwrap().unwrap().text;
    let day = text_at(at(20_451));
    assert_eq!(lines(&day)[1], "ARG RBUILD_REFRESH=24h.20451");
    let late = UNIX_EPOCH + Duration::from_secs(20_452 * DAY - 1);
    assert_eq!(text_at(late), day);
    assert_ne!(text_at(at(20_452)), day);
    assert!(text_at(at(20_452)).contains("=24h.20452\n"));
}

#[test]
fn without_a_free_line_the_arg_is_inserted_and_lines_map_back() {
    let text = "FROM a\nRUN echo one\nRUN git clone https://x\nRUN echo two\nRUNN typo\n";
    let r = prepare(text, every(DAY), false, at(7)).unwrap().unwrap();
    assert_eq!(
        lines(&r.text),
        [
            "FROM a",
            "RUN echo one",
            "ARG RBUILD_REFRESH=24h.7",
            "RUN git clone https://x",
            "RUN echo two",
            "RUNN typo"
        ]
    );
    assert!(!r.keeps_lines());
    let mapped: Vec<usize> = (0..=8).map(|n| r.map_line(n)).collect();
    assert_eq!(mapped, [0, 1, 2, 3, 3, 4, 5, 6, 7]);
    assert_eq!(
        r.map_message("dockerfile parse error on line 6: unknown instruction: RUNN"),
        "dockerfile parse error on line 5: unknown instruction: RUNN"
    );
    assert_eq!(
        r.map_message("Dockerfile:4 and (line 2)"),
        "Dockerfile:3 and (line 2)"
    );
}

#[test]
fn a_blank_line_is_preferred_to_a_comment_and_the_step_keeps_its_line() {
    let text = "FROM a\nRUN x\n\n# fetch\nRUN curl https://x\n";
    let r = prepare(text, every(3_600), false, at(1)).unwrap().unwrap();
    assert_eq!(lines(&r.text)[2], "ARG RBUILD_REFRESH=1h.29");
    assert_eq!(lines(&r.text)[3], "# fetch");
    assert!(r.keeps_lines());
    let text = "FROM a\nRUN x\n# fetch\nRUN curl https://x\n";
    let r = prepare(text, every(3_600), false, at(1)).unwrap().unwrap();
    assert_eq!(lines(&r.text)[2], "ARG RBUILD_REFRESH=1h.29");
}

#[test]
fn from_directive_renews_the_stage_and_shares_a_gap_with_its_first_step() {
    let text = "FROM a\n# rbuild:refresh=7d\nFROM b AS two\nRUN apk add git\nFROM c\nRUN x\n";
    let r = prepare(text, every(DAY), false, at(14)).unwrap().unwrap();
    assert_eq!(
        lines(&r.text),
        [
            "FROM a",
            "# rbuild:refresh=7d",
            "FROM b AS two",
            "ARG RBUILD_REFRESH=7d.2+24h.14",
            "RUN apk add git",
            "FROM c",
            "RUN x"
        ]
    );
    assert_eq!(r.map_line(4), 3, "the inserted line belongs to the FROM");
    assert_eq!(r.refreshed.len(), 2);
    // A FROM last in the file gets its ARG at the end.
    let r = prepare("FROM a\n# rbuild:refresh=1h\nFROM b", None, false, at(0))
        .unwrap()
        .unwrap();
    assert_eq!(
        r.text,
        "FROM a\n# rbuild:refresh=1h\nFROM b\nARG RBUILD_REFRESH=1h.5"
    );
}

#[test]
fn refresh_forces_a_window_of_its_own() {
    let text = "FROM a\n\nRUN git clone https://x\n\nRUN wget https://y\n# rbuild:refresh=never\nRUN curl https://z\n";
    let now = at(3);
    let secs = 3 * DAY + 5 * 3_600;
    let r = prepare(text, every(DAY), true, now).unwrap().unwrap();
    let t = lines(&r.text);
    assert_eq!(t[1], format!("ARG RBUILD_REFRESH=24h.f{secs}"));
    assert_eq!(r.refreshed.len(), 2, "never stays never");
    assert_eq!(r.refreshed[0].window, "forced");
    // --refresh alone renews the detected steps.
    let r = prepare(text, None, true, now).unwrap().unwrap();
    assert_eq!(lines(&r.text)[3], format!("ARG RBUILD_REFRESH=now.f{secs}"));
}

#[test]
fn case_crlf_and_continuations_are_kept() {
    let text = "from a\r\nrun echo 1 \\\r\n  && echo 2\r\nrun curl https://x\r\n";
    let r = prepare(text, every(60), false, at(0)).unwrap().unwrap();
    assert_eq!(
        r.text,
        "from a\r\nrun echo 1 \\\r\n  && echo 2\r\narg RBUILD_REFRESH=1m.300\nrun curl https://x\r\n"
    );
    assert_eq!(r.map_line(5), 4);
}

#[test]
fn the_rewrite_analyzes_like_the_original() {
    let text = "ARG BASE\nFROM ${BASE}\nRUN apt-get update\n# rbuild:refresh=1h\nRUN echo $HOME\n";
    let r = prepare(text, every(DAY), false, at(2)).unwrap().unwrap();
    let before = crate::dockerfile::analyze(text).unwrap();
    let after = crate::dockerfile::analyze(&r.text).unwrap();
    let runs = |s: &[crate::dockerfile::DetectedStep]| {
        s.iter()
            .filter(|s| s.instruction.starts_with("RUN"))
            .map(|s| (r.map_line(s.line), s.instruction.clone()))
            .collect::<Vec<_>>()
    };
    let original: Vec<_> = before
        .iter()
        .filter(|s| s.instruction.starts_with("RUN"))
        .map(|s| (s.line, s.instruction.clone()))
        .collect();
    assert_eq!(runs(&after), original);
    assert_eq!(
        after
            .iter()
            .filter(|s| s.instruction.starts_with("ARG RBUILD_REFRESH="))
            .count(),
        2
    );
}

#[test]
fn progress_marks_match_step_names() {
    let text = "FROM a\n\nRUN git clone   https://x \\\n  /src\n\nRUN curl $URL -o /f\n\nRUN <<EOT\nwget https://y\nEOT\nRUN echo\n";
    let r = prepare(text, every(DAY), false, at(20_451))
        .unwrap()
        .unwrap();
    let mark = progress_marks(&r);
    let want = Some("(refresh every 24h, window 20451)".to_string());
    assert_eq!(mark("[2/5] RUN git clone https://x /src"), want);
    assert_eq!(mark("[stage-1 3/5] RUN git clone   https://x   /src"), want);
    assert_eq!(mark("[3/5] RUN curl https://example.com/f -o /f"), want);
    assert_eq!(mark("[4/5] RUN <<EOT (wget https://y)"), want);
    assert_eq!(mark("[5/5] RUN echo"), None);
    assert_eq!(mark("[2/5] RUN git clone https://x /src2"), None);
    assert_eq!(mark("[internal] load metadata"), None);
    let forced = prepare(text, None, true, at(1)).unwrap().unwrap();
    assert_eq!(
        progress_marks(&forced)("[2/5] RUN git clone https://x /src"),
        Some("(refresh forced)".to_string())
    );
}

mod upstream {
    use super::*;
    use crate::upstream::{Identity, LookupError, Resolved, Source};

    const TEXT: &str = "FROM a\nRUN echo before\n# rbuild:refresh=upstream\n\
                        RUN git clone https://h/r /r\nRUN make -C /r\n";

    fn options(lookup: Result<Identity, LookupError>) -> RefreshOptions {
        let mut resolved = Resolved::default();
        let git = Source::Git {
            url: "https://h/r".into(),
            reference: None,
        };
        resolved.insert(git, lookup);
        RefreshOptions {
            resolved,
            ..RefreshOptions::default()
        }
    }

    fn commit(c: char) -> Result<Identity, LookupError> {
        Ok(Identity::Commit(c.to_string().repeat(40)))
    }

    #[test]
    fn the_key_follows_the_commit_not_the_clock() {
        let r = prepare_with(TEXT, &options(commit('a')), at(1))
            .unwrap()
            .unwrap();
        let arg = lines(&r.text)[2].to_string();
        assert!(arg.starts_with("ARG RBUILD_REFRESH=up."), "{arg}");
        assert!(r.keeps_lines());
        let later = prepare_with(TEXT, &options(commit('a')), at(400))
            .unwrap()
            .unwrap();
        assert_eq!(later.text, r.text, "the same upstream, the same key");
        let moved = prepare_with(TEXT, &options(commit('b')), at(1))
            .unwrap()
            .unwrap();
        assert_ne!(moved.text, r.text);
        let step = &r.refreshed[0];
        assert_eq!(step.window, "");
        assert!(step.warning().is_none());
        assert_eq!(step.upstreams[0].upstream, "git https://h/r HEAD");
        let marks = progress_marks(&r);
        assert_eq!(
            marks("[2/4] RUN git clone https://h/r /r").as_deref(),
            Some("(upstream aaaaaaaaaaaa)")
        );
        // No identity, URL or ETag in the rewrite.
        assert!(!r.text.contains("aaaa"), "{}", r.text);
    }

    #[test]
    fn an_unreachable_upstream_falls_back_to_the_window_and_says_so() {
        let down = options(Err(LookupError::Unreachable("connection refused".into())));
        let r = prepare_with(TEXT, &down, at(20_451)).unwrap().unwrap();
        assert_eq!(lines(&r.text)[2], "ARG RBUILD_REFRESH=24h.20451");
        let step = &r.refreshed[0];
        assert_eq!(step.window, "20451");
        assert_eq!(
            step.warning().unwrap(),
            "line 4 `RUN git clone https://h/r /r`: cannot look up git https://h/r HEAD \
             (unreachable: connection refused); renewed every 24h instead (window 20451)"
        );
        // --refresh-every names the fallback window.
        let mut six = down.clone();
        six.every = every(6 * 3_600);
        let r = prepare_with(TEXT, &six, at(20_451)).unwrap().unwrap();
        assert_eq!(
            lines(&r.text)[2],
            format!("ARG RBUILD_REFRESH=6h.{}", 20_451 * 4)
        );
        // Not looked up at all (a build's validate): the same fallback.
        let r = prepare(TEXT, None, false, at(20_451)).unwrap().unwrap();
        assert_eq!(lines(&r.text)[2], "ARG RBUILD_REFRESH=24h.20451");
    }

    #[test]
    fn the_flag_keys_every_fetching_step_and_force_still_wins() {
        let text = "FROM a\nRUN git clone https://h/r /r\nRUN apt-get update\n";
        let mut o = options(commit('a'));
        o.upstream = true;
        let r = prepare_with(text, &o, at(3)).unwrap().unwrap();
        assert_eq!(r.refreshed.len(), 2);
        assert!(r.refreshed[0].warning().is_none());
        let apt = r.refreshed[1].warning().unwrap();
        assert!(
            apt.contains(
                "`RUN apt-get update`: apt-get update: rbuild cannot look up what it fetches;"
            ),
            "{apt}"
        );
        o.force = true;
        let r = prepare_with(text, &o, at(3)).unwrap().unwrap();
        assert!(
            lines(&r.text).iter().any(|l| l.contains("=up.f")),
            "{}",
            r.text
        );
        assert_eq!(r.refreshed[0].window, "forced");
    }
}
