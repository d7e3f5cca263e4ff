//! A git URL as the build context: the daemon fetches it (the engine runs
//! the host's git), and `-f` names a file inside it. The upstream is a
//! `git daemon` on loopback serving a repository the test makes.

mod support;

use support::git::serve_repo;
use support::{assert_success, build_cmd, stack};

#[test]
fn a_git_url_context_and_a_dockerfile_inside_it() {
    let stack = stack();
    let base = tempfile::tempdir().unwrap();
    let daemon = serve_repo(
        base.path(),
        &[
            (
                "Dockerfile",
                "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /hello.txt\n",
            ),
            (
                "sub/Other.Dockerfile",
                "ARG BASE\nFROM ${BASE}\nCOPY hello.txt /other.txt\n",
            ),
            ("hello.txt", "from git\n"),
        ],
    );
    let url = daemon.url("main");
    let out_dir = tempfile::tempdir().unwrap();
    let dest = |name: &str| out_dir.path().join(name);

    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-o", &format!("type=local,dest={}", dest("a").display())])
        .arg(&url)
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        std::fs::read_to_string(dest("a").join("hello.txt")).unwrap(),
        "from git\n"
    );

    let out = build_cmd(&stack)
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(["-f", "sub/Other.Dockerfile"])
        .args(["-o", &format!("type=local,dest={}", dest("b").display())])
        .arg(&url)
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        std::fs::read_to_string(dest("b").join("other.txt")).unwrap(),
        "from git\n"
    );
}
