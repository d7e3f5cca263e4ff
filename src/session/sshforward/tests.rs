//! Flag syntax, checks before the build, and CheckAgent.

use super::*;

#[test]
fn parses_buildx_syntax() {
    for (input, id, paths) in [
        ("default", "default", vec![]),
        ("git", "git", vec![]),
        (
            "default=/run/agent.sock",
            "default",
            vec!["/run/agent.sock"],
        ),
        ("a=/p=q", "a", vec!["/p=q"]),
        ("k=/k1,/k2", "k", vec!["/k1", "/k2"]),
    ] {
        let got = SshSpec::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got.id, id, "{input}");
        let want: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
        assert_eq!(got.paths, want, "{input}");
    }
    for (input, reason) in [
        ("", "id is empty"),
        ("=/p", "id is empty"),
        ("a=", "path is empty"),
        ("a=/k1,", "path is empty"),
    ] {
        let err = SshSpec::parse(input).unwrap_err().to_string();
        assert!(err.contains(reason), "{input}: {err}");
    }
}

#[test]
fn validates_sockets_and_key_files_before_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let not_a_key = dir.path().join("id_ed25519");
    std::fs::write(&not_a_key, "key").unwrap();
    let spec = |s: &str| SshSpec::parse(s).unwrap();

    let agents = load_with(&[spec("default")], Some(sock.clone().into())).unwrap();
    assert!(matches!(&agents.agents["default"], Agent::Socket(p) if *p == sock));
    let err = load_with(&[spec("default")], None).unwrap_err();
    assert!(matches!(err, SshError::NoAuthSock { .. }), "{err}");
    let err = load_with(&[spec(&format!("k={}", not_a_key.display()))], None).unwrap_err();
    assert!(matches!(err, SshError::Key { .. }), "{err}");
    assert!(
        err.to_string().contains("not an OpenSSH private key"),
        "{err}"
    );
    let err = load_with(&[spec("k=/nonexistent.sock")], None).unwrap_err();
    assert!(err.to_string().contains("/nonexistent.sock"), "{err}");
    let mixed = spec(&format!("k={},{}", not_a_key.display(), sock.display()));
    let err = load_with(&[mixed], None).unwrap_err();
    assert!(matches!(err, SshError::SocketAmongKeys { .. }), "{err}");
    let twice = [
        spec("default"),
        spec(&format!("default={}", sock.display())),
    ];
    let err = load_with(&twice, Some(sock.clone().into())).unwrap_err();
    assert!(matches!(err, SshError::Duplicate { .. }), "{err}");
}

#[tokio::test]
async fn check_agent_knows_configured_ids() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agents = load_with(&[SshSpec::parse("default").unwrap()], Some(sock.into())).unwrap();
    let service = SshService::new(agents);
    let check = |id: &str| Request::new(CheckAgentRequest { id: id.into() });
    assert!(service.check_agent(check("")).await.is_ok());
    assert!(service.check_agent(check("default")).await.is_ok());
    let status = service.check_agent(check("other")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert!(status.message().contains("other"));
}
