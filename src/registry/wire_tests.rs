//! The client's HTTP behaviour against [`FakeRegistry`]: paging, the
//! token flow, Basic logins, redirects and the errors users act on. The
//! real registry is tested end to end in `tests/cache_registry_*.rs`; these
//! cover what distribution 2.8 cannot show (`Link` paging, OAuth2 identity
//! tokens, storage redirects).

use crate::registry::RegistryError;
use crate::registry::reference::ManifestRef;
use crate::testing::fake_registry::FakeRegistry;

#[tokio::test]
async fn tags_follow_link_pages() {
    let fake = FakeRegistry::start(
        "app",
        vec![
            FakeRegistry::reply(
                200,
                &[r#"Link: </v2/app/tags/list?last=b&n=2>; rel="next""#],
                r#"{"name":"app","tags":["b","a"]}"#,
            ),
            FakeRegistry::reply(200, &[], r#"{"name":"app","tags":["c"]}"#),
        ],
    )
    .await;
    assert_eq!(fake.registry.tags().await.unwrap(), ["a", "b", "c"]);
    let heads = fake.requests().await;
    assert!(
        heads[0].starts_with("GET /v2/app/tags/list HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with("GET /v2/app/tags/list?last=b&n=2 "),
        "{}",
        heads[1]
    );
}

#[tokio::test]
async fn anonymous_bearer_token_flow() {
    // The realm is the fake itself: the token request is its 2nd connection.
    let fake = FakeRegistry::start_with("app", |addr| {
        vec![
            FakeRegistry::reply(
                401,
                &[&format!(r#"WWW-Authenticate: Bearer realm="http://{addr}/token",service="reg",scope="repository:app:pull""#)],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            ),
            FakeRegistry::reply(200, &[], r#"{"token":"t0k3n"}"#),
            FakeRegistry::reply(200, &[], r#"{"tags":["x"]}"#),
        ]
    })
    .await;
    assert_eq!(fake.registry.tags().await.unwrap(), ["x"]);
    let heads = fake.requests().await;
    assert!(
        heads[1].starts_with("GET /token?service=reg&scope=repository%3Aapp%3Apull "),
        "{}",
        heads[1]
    );
    assert!(
        heads[2].contains("authorization: Bearer t0k3n\r\n"),
        "{}",
        heads[2]
    );
}

#[tokio::test]
async fn statuses_become_errors_the_user_can_act_on() {
    let fake = FakeRegistry::start(
        "app",
        vec![
            FakeRegistry::reply(404, &[], r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#),
            FakeRegistry::reply(405, &[], r#"{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}"#),
            FakeRegistry::reply(401, &[r#"WWW-Authenticate: Basic realm="r""#], ""),
            FakeRegistry::reply(200, &["Docker-Content-Digest: sha256:00"], "{}"),
        ],
    )
    .await;
    let r = &fake.registry;
    let err = r.tags().await.unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("NAME_UNKNOWN"), "{err}");
    let digest = crate::registry::Digest::sha256_of(b"x");
    let err = r.delete_manifest(&digest).await.unwrap_err();
    assert!(matches!(err, RegistryError::DeleteDisabled { .. }), "{err}");
    let err = r.tag_digest("t").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Denied { status: 401, .. }),
        "{err}"
    );
    let err = r.manifest(ManifestRef::Tag("t")).await.unwrap_err();
    assert!(err.to_string().contains("not sha256:00"), "{err}");
    let heads = fake.requests().await;
    assert!(
        heads[1].starts_with(&format!("DELETE /v2/app/manifests/{digest} ")),
        "{}",
        heads[1]
    );
    assert!(
        heads[2].starts_with("HEAD /v2/app/manifests/t "),
        "{}",
        heads[2]
    );
}

#[tokio::test]
async fn unreachable_names_the_host() {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap().to_string();
    drop(probe);
    let repo = format!("{addr}/app").parse().unwrap();
    let r = super::Registry::new(repo, super::RegistryOptions::default());
    let err = r.tags().await.unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
}

fn login(addr: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr3t");
    format!(r#"{{"auths": {{"{addr}": {{"auth": "{auth}"}}}}}}"#)
}

#[tokio::test]
async fn a_basic_challenge_is_answered_once_with_the_docker_config_login() {
    let fake = FakeRegistry::start(
        "app",
        vec![
            FakeRegistry::reply(401, &[r#"WWW-Authenticate: Basic realm="r""#], ""),
            FakeRegistry::reply(200, &[], r#"{"tags":["x"]}"#),
            FakeRegistry::reply(200, &["Docker-Content-Digest: sha256:00"], ""),
        ],
    )
    .await;
    let addr = fake.addr.clone();
    let fake = fake.with_docker_config(&login(&addr));
    assert_eq!(fake.registry.tags().await.unwrap(), ["x"]);
    fake.registry.tag_digest("x").await.unwrap();
    let heads = fake.requests().await;
    assert!(!heads[0].contains("authorization"), "{}", heads[0]);
    // base64("alice:s3cr3t"), then sent unasked.
    for head in &heads[1..] {
        assert!(
            head.contains("authorization: Basic YWxpY2U6czNjcjN0\r\n"),
            "{head}"
        );
    }
}

#[tokio::test]
async fn wrong_login_is_denied_without_a_second_try() {
    let fake = FakeRegistry::start(
        "app",
        vec![
            FakeRegistry::reply(401, &[r#"WWW-Authenticate: Basic realm="r""#], ""),
            FakeRegistry::reply(401, &[r#"WWW-Authenticate: Basic realm="r""#], ""),
        ],
    )
    .await;
    let addr = fake.addr.clone();
    let fake = fake.with_docker_config(&login(&addr));
    let err = fake.registry.tags().await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Denied {
                credentials: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert_eq!(fake.requests().await.len(), 2);
}

#[tokio::test]
async fn an_identity_token_is_posted_as_an_oauth2_refresh_grant() {
    let fake = FakeRegistry::start_with("team/app", |addr| {
        vec![
            FakeRegistry::reply(
                401,
                &[&format!(
                    r#"WWW-Authenticate: Bearer realm="http://{addr}/token",service="reg",scope="repository:team/app:pull""#
                )],
                "",
            ),
            FakeRegistry::reply(200, &[], r#"{"access_token":"acc3ss"}"#),
            FakeRegistry::reply(200, &[], r#"{"tags":["x"]}"#),
        ]
    })
    .await;
    let addr = fake.addr.clone();
    let config = format!(r#"{{"auths": {{"{addr}": {{"identitytoken": "r3fresh"}}}}}}"#);
    let fake = fake.with_docker_config(&config);
    assert_eq!(fake.registry.tags().await.unwrap(), ["x"]);
    let heads = fake.requests().await;
    assert!(heads[1].starts_with("POST /token "), "{}", heads[1]);
    assert!(
        heads[1].contains("content-type: application/x-www-form-urlencoded\r\n"),
        "{}",
        heads[1]
    );
    assert!(
        heads[2].contains("authorization: Bearer acc3ss\r\n"),
        "{}",
        heads[2]
    );
}

#[tokio::test]
async fn a_blob_redirect_to_storage_leaves_the_login_behind() {
    let body = "{}";
    let digest = crate::registry::Digest::sha256_of(body.as_bytes());
    let storage = FakeRegistry::start("unused", vec![FakeRegistry::reply(200, &[], body)]).await;
    let location = format!("Location: http://{}/blob?sig=1", storage.addr);
    let fake = FakeRegistry::start(
        "app",
        vec![
            FakeRegistry::reply(401, &[r#"WWW-Authenticate: Basic realm="r""#], ""),
            FakeRegistry::reply(307, &[&location], ""),
        ],
    )
    .await;
    let addr = fake.addr.clone();
    let fake = fake.with_docker_config(&login(&addr));
    let got = fake.registry.blob(&digest, 1 << 10).await.unwrap();
    assert_eq!(got, body.as_bytes());
    let heads = fake.requests().await;
    assert!(heads[1].contains("authorization: Basic"), "{}", heads[1]);
    let stored = storage.requests().await;
    assert!(stored[0].starts_with("GET /blob?sig=1 "), "{}", stored[0]);
    assert!(!stored[0].contains("authorization"), "{}", stored[0]);
}
