use super::super::fixture::*;
use super::*;
use crate::progress::status::StatusUpdate;

fn apply(state: &mut State, resp: crate::proto::moby::buildkit::v1::StatusResponse) -> Applied {
    state.apply(&StatusUpdate::from_proto(&resp))
}

#[test]
fn numbers_follow_start_order_not_first_seen() {
    let mut s = State::default();
    apply(
        &mut s,
        resp().vertex(vtx("a", "A")).vertex(vtx("b", "B")).build(),
    );
    assert!(s.numbered().is_empty());
    apply(&mut s, resp().vertex(vtx("b", "B").started(1.0)).build());
    apply(&mut s, resp().vertex(vtx("a", "A").started(2.0)).build());
    let names: Vec<_> = s
        .numbered()
        .iter()
        .map(|&i| s.vertices[i].name.clone())
        .collect();
    assert_eq!(names, ["B", "A"]);
    assert_eq!(s.vertices[1].number, Some(1));
}

#[test]
fn repeats_are_not_news_and_unknown_vertices_are_ignored() {
    let mut s = State::default();
    let done = vtx("a", "A").started(1.0).completed(2.0);
    assert_eq!(
        apply(&mut s, resp().vertex(done.clone()).build()).touched,
        [0]
    );
    assert!(
        apply(&mut s, resp().vertex(done.clone()).build())
            .touched
            .is_empty()
    );
    // The initial unstarted form arriving late changes nothing.
    assert!(
        apply(&mut s, resp().vertex(vtx("a", "A")).build())
            .touched
            .is_empty()
    );
    assert!(s.vertices[0].is_completed());
    let a = apply(
        &mut s,
        resp()
            .log("nope", 1.0, "x\n")
            .status(st("nope", "id"))
            .build(),
    );
    assert!(a.touched.is_empty() && a.lines.is_empty());
}

#[test]
fn summary_counts_and_failure() {
    let mut s = State::default();
    apply(
        &mut s,
        resp()
            .vertex(vtx("c", "cached").started(1.0).completed(1.0).cached())
            .vertex(vtx("e", "ran").started(1.0).completed(3.5))
            .vertex(vtx("f", "bad").started(2.0))
            .vertex(
                vtx("x", "canceled")
                    .started(2.0)
                    .completed(3.0)
                    .error("context canceled"),
            )
            .log("f", 2.5, "one\ntwo")
            .warning(warn("e", "W1"))
            .build(),
    );
    apply(
        &mut s,
        resp()
            .vertex(vtx("f", "bad").started(2.0).completed(4.0).error("exit 1"))
            .build(),
    );
    let sum = s.summary();
    assert_eq!(
        (sum.total, sum.cached, sum.executed, sum.failed),
        (4, 1, 1, 1)
    );
    assert_eq!(sum.executed_time, Duration::from_millis(2500));
    assert_eq!(sum.warnings, 1);
    let f = sum.failed_vertex.expect("one step failed");
    assert_eq!((f.name.as_str(), f.error.as_str()), ("bad", "exit 1"));
    assert_eq!(f.logs, ["one", "two"]);
}

#[test]
fn progress_group_is_one_step_revealed_by_a_strong_member() {
    let mut s = State::default();
    let weak = vtx("m1", "one").group("g", "group", true).started(1.0);
    assert!(
        apply(&mut s, resp().vertex(weak).build())
            .touched
            .is_empty()
    );
    let strong = vtx("m2", "two")
        .group("g", "group", false)
        .started(2.0)
        .completed(3.0);
    assert_eq!(apply(&mut s, resp().vertex(strong).build()).touched, [0]);
    assert_eq!(s.vertices.len(), 1);
    assert_eq!(s.vertices[0].name, "group");
    assert!(s.vertices[0].is_running(), "the weak member still runs");
    let a = apply(&mut s, resp().log("m1", 1.5, "hi\n").build());
    assert_eq!(a.lines[0].0, 0);
}

#[test]
fn marker_annotates_numbered_steps() {
    let mut s = State::default();
    apply(
        &mut s,
        resp().vertex(vtx("a", "RUN a").started(1.0)).build(),
    );
    s.set_marker(Box::new(|n: &str| {
        n.starts_with("RUN").then(|| "(m)".to_string())
    }));
    assert_eq!(s.vertices[0].mark.as_deref(), Some("(m)"));
}
