//! `moby.filesync.v1.Auth`: registry credentials the daemon asks for while it
//! pulls and pushes (images, `--cache-from`/`--cache-to type=registry`).
//!
//! Credentials come from the Docker CLI config ([`DockerConfig`]): inline
//! `auths` entries or a credential helper, and only for the hosts of the
//! build's [`AuthScope`]: any other host is answered anonymously without
//! looking at the config at all. Only `Credentials` is served; the
//! token-authority methods answer `Unimplemented`, after which the daemon
//! does the registry token exchange itself with those credentials
//! (upstream: session/auth/authprovider/authprovider.go, and the caller in
//! session/auth/auth.go).
//!
//! Secrets never reach logs or errors: [`Credentials`] redacts itself in
//! `Debug`, and only hosts and "found or not" are traced.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::credentials::{AuthScope, DockerConfig};
use crate::proto::moby::filesync::v1::auth_server::{Auth, AuthServer};
use crate::proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};

/// The methods [`AuthService`] registers, for the session header.
pub const METHODS: &[&str] = &[
    "Credentials",
    "FetchToken",
    "GetTokenAuthority",
    "VerifyTokenAuthority",
];

/// Serves `Auth` from a [`DockerConfig`] for the hosts of an [`AuthScope`].
/// The default config answers every host anonymously.
#[derive(Clone, Debug, Default)]
pub struct AuthService {
    config: Arc<DockerConfig>,
    scope: AuthScope,
}

impl AuthService {
    pub fn new(config: DockerConfig, scope: AuthScope) -> AuthService {
        AuthService {
            config: Arc::new(config),
            scope,
        }
    }

    /// The tonic service to register on the session.
    pub fn into_server(self) -> AuthServer<AuthService> {
        AuthServer::new(self)
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        if !self.scope.check(&host) {
            // Not even a credential helper is asked about it.
            return Ok(Response::new(CredentialsResponse::default()));
        }
        match self.config.credentials(&host).await {
            Ok(found) => {
                tracing::debug!(host, found = found.is_some(), "registry credentials");
                let (username, secret) = found
                    .map(|c| (c.username().to_string(), c.secret().to_string()))
                    .unwrap_or_default();
                Ok(Response::new(CredentialsResponse { username, secret }))
            }
            Err(e) => {
                // CredentialsError never holds a secret, so it can be shown.
                tracing::debug!(host, error = %e, "registry credentials");
                Err(Status::unavailable(e.to_string()))
            }
        }
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented(
            "the daemon fetches registry tokens itself",
        ))
    }

    /// `Unimplemented` makes the daemon use `Credentials` and fetch tokens
    /// itself: upstream session/auth/auth.go `GetTokenAuthority` reads it as
    /// "no authority", and util/resolver/authorizer.go then asks for
    /// credentials.
    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no client-side token authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no client-side token authority"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn service(json: &str) -> AuthService {
        AuthService::new(
            DockerConfig::parse(json.as_bytes()).unwrap(),
            AuthScope::any(),
        )
    }

    async fn ask(service: &AuthService, host: &str) -> Result<CredentialsResponse, Status> {
        let request = Request::new(CredentialsRequest { host: host.into() });
        service.credentials(request).await.map(Response::into_inner)
    }

    #[tokio::test]
    async fn answers_basic_token_and_anonymous() {
        let auth = base64::engine::general_purpose::STANDARD.encode("hub:pw");
        let service = service(&format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}},
                "tok.example": {{"identitytoken": "idt"}}}}}}"#
        ));
        let hub = ask(&service, "registry-1.docker.io").await.unwrap();
        assert_eq!((hub.username.as_str(), hub.secret.as_str()), ("hub", "pw"));
        let tok = ask(&service, "tok.example").await.unwrap();
        assert_eq!((tok.username.as_str(), tok.secret.as_str()), ("", "idt"));
        let anon = ask(&service, "unknown.example").await.unwrap();
        assert!(anon.username.is_empty() && anon.secret.is_empty());
    }

    #[tokio::test]
    async fn helper_failure_is_an_error_and_token_methods_unimplemented() {
        let empty = tempfile::tempdir().unwrap();
        let config = DockerConfig::parse(br#"{"credsStore": "missing"}"#)
            .unwrap()
            .with_helper_path(empty.path().as_os_str());
        let service = AuthService::new(config, AuthScope::any());
        let err = ask(&service, "h.example").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
        assert!(
            err.message().contains("docker-credential-missing"),
            "{err:?}"
        );

        let anon = AuthService::default();
        let req = Request::new(GetTokenAuthorityRequest::default());
        let status = anon.get_token_authority(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        let req = Request::new(FetchTokenRequest::default());
        let status = anon.fetch_token(req).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
    }
}
