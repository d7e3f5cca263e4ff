//! A pool of real daemons (the stack's runners): each build goes to the node
//! its route key picks, a node that does not answer is skipped and the next
//! one takes the build, `rbuild info` shows every node, bake spreads its
//! targets, and `--load` from another engine lands in the local one.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use rbuild::docker_api::Engine;
use rbuild::pool::{Node, Pool};
use support::fleet::{Runner, runners};
use support::{assert_success, context, rbuild, stack, stderr, stdout, unique};

/// A builders file naming the nodes, so names (the hash identity) are the
/// same on every machine.
fn builders(dir: &Path, nodes: &[(&str, &str)]) -> PathBuf {
    let mut text = String::from("builder \"fleet\" {\n");
    for (name, endpoint) in nodes {
        text.push_str(&format!(
            "  node \"{name}\" {{\n    endpoint = \"{endpoint}\"\n  }}\n"
        ));
    }
    text.push_str("}\n");
    let path = dir.join("builders.hcl");
    std::fs::write(&path, text).unwrap();
    path
}

/// The same nodes as a library pool, to ask which node a key goes to.
fn ranked(nodes: &[(&str, &str)], key: &str) -> Vec<String> {
    let pool = Pool::new(
        nodes
            .iter()
            .map(|(n, e)| Node::new(e.parse().unwrap()).name(*n))
            .collect(),
    )
    .unwrap();
    pool.ranked(key).iter().map(|n| n.name.clone()).collect()
}

/// A listener that accepts and never answers: a hung daemon.
fn silent_daemon() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", listener.local_addr().unwrap());
    (listener, addr)
}

fn tiny_project(id: &str) -> tempfile::TempDir {
    context(&[(
        "Dockerfile",
        &format!("ARG BASE\nFROM ${{BASE}}\nRUN echo {id} > /id\n"),
    )])
}

fn pool_build(file: &Path, ctx: &Path, extra: &[&str]) -> std::process::Output {
    let stack = stack();
    rbuild()
        .env("RBUILD_BUILDERS", file)
        .args(["--builder", "fleet", "--connect-timeout", "1", "build"])
        .args(["--progress", "plain"])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(extra)
        .arg(ctx)
        .output()
        .unwrap()
}

/// The node a build's plain progress says it was built on.
fn built_on(out: &std::process::Output) -> String {
    let err = stderr(out);
    let line = err
        .lines()
        .find_map(|l| l.strip_prefix("#0 building on node "))
        .unwrap_or_else(|| panic!("no placement line:\n{err}"));
    line.split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

fn two(rs: &[Runner]) -> [(&'static str, String); 2] {
    [("r1", rs[0].address.clone()), ("r2", rs[1].address.clone())]
}

#[test]
fn builds_follow_their_route_key_and_spread_over_the_nodes() {
    let rs = runners(2);
    let [a, b] = two(&rs);
    let nodes = [(a.0, a.1.as_str()), (b.0, b.1.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &nodes);
    let ctx = tiny_project(&unique("route"));
    let mut seen = std::collections::BTreeSet::new();
    // Fixed keys: their order over "r1" and "r2" never changes.
    for key in ["project-a", "project-b", "project-c", "project-d"] {
        let want = &ranked(&nodes, key)[0];
        for _ in 0..2 {
            let out = pool_build(&file, ctx.path(), &["--route-key", key]);
            assert_success(&out);
            assert_eq!(&built_on(&out), want, "{key}\n{}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("route key {key} (given)")),
                "{}",
                stderr(&out)
            );
        }
        seen.insert(want.clone());
    }
    assert_eq!(seen.len(), 2, "four projects should use both nodes");
}

#[test]
fn a_node_that_does_not_answer_is_skipped_and_the_next_takes_the_build() {
    let rs = runners(2);
    let [a, b] = two(&rs);
    let (_hung, dead) = silent_daemon();
    let nodes = [
        (a.0, a.1.as_str()),
        ("dead", dead.as_str()),
        (b.0, b.1.as_str()),
    ];
    // A key whose first choice is the dead node.
    let key = (0..)
        .map(|i| format!("failover-{i}"))
        .find(|k| ranked(&nodes, k)[0] == "dead")
        .unwrap();
    let next = ranked(&nodes, &key)[1].clone();
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &nodes);
    let ctx = tiny_project(&unique("failover"));
    let report = dir.path().join("report.json");
    let out = pool_build(
        &file,
        ctx.path(),
        &["--route-key", &key, "--report", report.to_str().unwrap()],
    );
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "#0 skipped node \"dead\" ({dead}): no answer within 1s"
        )),
        "{err}"
    );
    assert_eq!(built_on(&out), next);
    assert!(
        err.contains(&format!("built on {next} (skipped dead)")),
        "{err}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["node"]["name"], next.as_str(), "{report}");
    assert_eq!(report["node"]["route_key"], key.as_str());
    assert_eq!(report["node"]["skipped"][0]["node"], "dead");
    let reason = report["node"]["skipped"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("no answer within 1s"), "{reason}");
}

#[test]
fn no_healthy_node_is_one_line_naming_every_node() {
    let (_hung, dead) = silent_daemon();
    let dir = tempfile::tempdir().unwrap();
    let file = builders(
        dir.path(),
        &[
            ("dead", &dead),
            ("gone", "unix:///nonexistent/buildkitd.sock"),
        ],
    );
    let ctx = tiny_project("none");
    let out = pool_build(&file, ctx.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap();
    assert!(
        line.contains("no node of the pool can take the build"),
        "{err}"
    );
    assert!(
        line.contains("\"dead\"") && line.contains("no answer within 1s"),
        "{err}"
    );
    assert!(
        line.contains("\"gone\"") && line.contains("no socket at"),
        "{err}"
    );
}

#[test]
fn info_shows_every_node_with_its_health() {
    let rs = runners(2);
    let (_hung, dead) = silent_daemon();
    let addrs = format!("{},{},{dead}", rs[0].address, rs[1].address);
    let out = rbuild()
        .env("BUILDKIT_HOST", &addrs)
        .args(["--connect-timeout", "1", "info"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    for r in &rs {
        assert!(text.contains(&format!("Address:  {}", r.address)), "{text}");
    }
    assert_eq!(text.matches("Health:   healthy").count(), 2, "{text}");
    assert!(
        text.contains("Health:   unhealthy: no answer within 1s"),
        "{text}"
    );
    assert_eq!(text.matches("Running:  ").count(), 2, "{text}");
    assert!(text.contains("linux/amd64"), "{text}");

    let out = rbuild()
        .env("BUILDKIT_HOST", &addrs)
        .args(["--connect-timeout", "1", "info", "--format", "json"])
        .output()
        .unwrap();
    assert_success(&out);
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = nodes.as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["health"]["status"], "healthy");
    assert!(
        nodes[0]["workers"]
            .as_array()
            .is_some_and(|w| !w.is_empty())
    );
    assert!(nodes[0]["running_builds"].is_u64(), "{}", nodes[0]);
    assert_eq!(nodes[2]["health"]["status"], "unhealthy");
}

#[test]
fn bake_spreads_targets_by_their_cache_refs() {
    let stack = stack();
    let rs = runners(2);
    let [a, b] = two(&rs);
    let nodes = [(a.0, a.1.as_str()), (b.0, b.1.as_str())];
    // A cache repository whose four targets land on both nodes.
    let (repo, want) = (0..)
        .map(|i| format!("{}/rbuild-test/{}-{i}", stack.registry, unique("bake-pool")))
        .find_map(|repo| {
            let want: Vec<String> = ["t1", "t2", "t3", "t4"]
                .iter()
                .map(|t| ranked(&nodes, &format!("{repo}:{t}"))[0].clone())
                .collect();
            (want.contains(&"r1".to_string()) && want.contains(&"r2".to_string()))
                .then_some((repo, want))
        })
        .unwrap();
    let dir = context(&[(
        "app/Dockerfile",
        "ARG BASE\nFROM ${BASE}\nARG T\nRUN echo $T > /t\n",
    )]);
    let mut hcl = String::from("variable \"BASE\" {\n  default = \"\"\n}\n");
    for t in ["t1", "t2", "t3", "t4"] {
        hcl.push_str(&format!(
            "target \"{t}\" {{\n  context = \"app\"\n  args = {{ BASE = BASE, T = \"{t}\" }}\n}}\n"
        ));
    }
    hcl.push_str("group \"default\" {\n  targets = [\"t1\", \"t2\", \"t3\", \"t4\"]\n}\n");
    std::fs::write(dir.path().join("docker-bake.hcl"), hcl).unwrap();
    let file = builders(dir.path(), &nodes);
    let out = rbuild()
        .current_dir(dir.path())
        .env("RBUILD_BUILDERS", &file)
        .env("BASE", &stack.base)
        .args(["--builder", "fleet", "bake", "--progress", "plain"])
        .args(["--cache", &repo])
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    for (t, node) in ["t1", "t2", "t3", "t4"].iter().zip(&want) {
        assert!(
            err.contains(&format!("[{t}] #0 building on node \"{node}\"")),
            "{t} should build on {node}\n{err}"
        );
        let report = err
            .lines()
            .find(|l| l.starts_with(&format!("[{t}] rbuild:")))
            .unwrap_or_else(|| panic!("no report line for {t}\n{err}"));
        assert!(report.ends_with(&format!("built on {node}")), "{report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn load_from_another_engine_streams_into_the_local_one() {
    let stack = stack();
    let rs = runners(2);
    let [a, b] = two(&rs);
    let nodes = [(a.0, a.1.as_str()), (b.0, b.1.as_str())];
    // The local engine is runner 2's; the build goes to runner 1.
    let local = &rs[1];
    let key = (0..)
        .map(|i| format!("load-{i}"))
        .find(|k| ranked(&nodes, k)[0] == "r1")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = builders(dir.path(), &nodes);
    let id = unique("pool-load");
    let ctx = tiny_project(&id);
    let image = format!("{}/rbuild-test/{id}:1", stack.registry);
    let out = rbuild()
        .env("RBUILD_BUILDERS", &file)
        .env(
            "DOCKER_HOST",
            format!("unix://{}", local.engine_socket.display()),
        )
        .args(["--builder", "fleet", "build", "--progress", "plain"])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["--route-key", &key, "-t", &image, "--load"])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(built_on(&out), "r1");
    assert!(stderr(&out).contains("sending tarball"), "{}", stderr(&out));
    let builder = Engine::new(rs[0].engine_socket.clone());
    let local = Engine::new(local.engine_socket.clone());
    assert!(
        local.image_id(&image).await.unwrap().is_some(),
        "not loaded into the local engine"
    );
    assert!(
        builder.image_id(&image).await.unwrap().is_none(),
        "--load went to the building engine"
    );
    local.remove_image(&image, true).await.unwrap();
}
