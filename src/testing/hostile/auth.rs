//! The daemon asks the session's `Auth` for the credentials of every registry it can think
//! of. Only the hosts the build names get them; the others get an anonymous answer, one
//! warning each, and not even a credential helper is run for them.

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use tonic::transport::Channel;

use super::FakeDaemon;
use crate::buildspec::{AttestSupport, Build};
use crate::credentials::DockerConfig;
use crate::daemon::DaemonKind;
use crate::proto::moby::filesync::v1::CredentialsRequest;
use crate::proto::moby::filesync::v1::auth_client::AuthClient;
use crate::request::{self as plan, BuildPlan};
use crate::session::SessionConfig;
use crate::session::auth::AuthService;

/// A Docker config with a login for the build's registry, one for a registry the build
/// never uses, and a credential helper for a third; the helper leaves a mark when run.
struct Logins {
    dir: tempfile::TempDir,
}

impl Logins {
    fn new() -> Logins {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "#!/bin/sh\ntouch {}\necho '{{\"Username\":\"u\",\"Secret\":\"helper-secret\"}}'\n",
            dir.path().join("helper-ran").display()
        );
        let helper = dir.path().join("docker-credential-spy");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Logins { dir }
    }

    fn config(&self) -> DockerConfig {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let json = format!(
            r#"{{"auths": {{"used.example:5000": {{"auth": "{}"}},
                "unused.example": {{"auth": "{}"}}}},
                "credHelpers": {{"helper.example": "spy"}}}}"#,
            b64("builder:used-secret"),
            b64("admin:unused-secret"),
        );
        DockerConfig::parse(json.as_bytes())
            .unwrap()
            .with_helper_path(self.dir.path().as_os_str())
    }

    fn helper_ran(&self) -> bool {
        self.dir.path().join("helper-ran").exists()
    }

    fn plan(&self, build: Build) -> BuildPlan {
        let build = build.registry_auth(self.config());
        plan::prepare(
            &build,
            DaemonKind::Buildkitd,
            None,
            AttestSupport::No("test".into()),
            &crate::upstream::Resolved::default(),
        )
        .expect("a valid build")
    }
}

fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "ARG REGISTRY=used.example:5000\nFROM ${REGISTRY}/base:1\nRUN true\n",
    )
    .unwrap();
    dir
}

async fn ask(channel: &Channel, host: &str) -> (String, String) {
    let reply = AuthClient::new(channel.clone())
        .credentials(CredentialsRequest { host: host.into() })
        .await
        .expect("answered")
        .into_inner();
    (reply.username, reply.secret)
}

async fn harvest(plan: &BuildPlan) -> Vec<(String, (String, String))> {
    let mut daemon = FakeDaemon::start().await;
    let config = SessionConfig {
        auth: AuthService::new(plan.docker_config.clone(), plan.auth_scope.clone()),
        ..SessionConfig::default()
    };
    let (session, d) = daemon.attach(config).await;
    let mut got = Vec::new();
    // Every host of the config, twice, plus a guess.
    for host in [
        "used.example:5000",
        "unused.example",
        "helper.example",
        "unused.example",
        "registry-1.docker.io",
        "helper.example",
    ] {
        got.push((host.to_string(), ask(&d.channel, host).await));
    }
    session.close().await;
    got
}

#[tokio::test]
async fn only_the_registries_the_build_names_get_credentials() {
    let logins = Logins::new();
    let ctx = context();
    let plan = logins.plan(Build::new(ctx.path()));
    let got = harvest(&plan).await;
    for (host, (user, secret)) in &got {
        if host == "used.example:5000" {
            assert_eq!((user.as_str(), secret.as_str()), ("builder", "used-secret"));
        } else {
            assert!(user.is_empty() && secret.is_empty(), "{host} got {user}");
        }
    }
    assert!(
        !logins.helper_ran(),
        "a helper ran for a host the build does not use"
    );
    // One warning per refused host, however often it was asked for.
    let withheld = plan.auth_scope.withheld();
    assert_eq!(withheld, ["docker.io", "helper.example", "unused.example"]);
    let message = crate::credentials::withheld_message(&withheld[2]);
    assert!(message.contains("unused.example") && !message.contains("secret"));
}

#[tokio::test]
async fn extra_hosts_and_star_widen_the_scope() {
    let logins = Logins::new();
    let ctx = context();
    let plan = logins.plan(Build::new(ctx.path()).auth_host("helper.example"));
    let got = harvest(&plan).await;
    let helper = &got.iter().find(|(h, _)| h == "helper.example").unwrap().1;
    assert_eq!(helper.1, "helper-secret");
    assert!(logins.helper_ran());
    assert_eq!(plan.auth_scope.withheld(), ["docker.io", "unused.example"]);

    // `*` is buildx's behaviour: every login of the config is handed out.
    let plan = logins.plan(Build::new(ctx.path()).auth_host("*"));
    let got = harvest(&plan).await;
    let unused = &got.iter().find(|(h, _)| h == "unused.example").unwrap().1;
    assert_eq!(unused.1, "unused-secret");
    assert!(plan.auth_scope.withheld().is_empty());
}
