//! Answering a 401: the Docker config's credentials (inline `auths` or a
//! credential helper, the same lookup the build's session Auth service
//! does), sent as Basic auth or traded for a token at the realm.
//!
//! The token request follows distribution `docs/spec/auth/token.md` and
//! `oauth.md` as the docker daemon makes it: a GET with `service` and one
//! `scope` parameter per scope, with Basic auth when there are a username
//! and password; an identity (refresh) token is posted as an OAuth2
//! `refresh_token` grant instead.

use bytes::Bytes;
use http::{Method, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::RegistryError;
use super::auth::{BearerChallenge, Challenge, Secret, scopes};
use super::client::Registry;
use super::http::Call;
use super::reference::{Scheme, is_loopback};
use crate::credentials::{Credentials, DockerConfig};

/// Token answers are small JSON documents.
const TOKEN_BODY_LIMIT: usize = 1 << 20;
/// The OAuth2 client id the registry's token service logs.
const CLIENT_ID: &str = "rbuild";

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

impl Registry {
    /// The Docker config's credentials for this registry, looked up once
    /// (a credential helper is a process to run) and only when asked for.
    pub(super) async fn credentials(&self) -> Result<Option<&Credentials>, RegistryError> {
        let host = self.repository().host();
        let found = self
            .credentials
            .get_or_try_init(|| async {
                let config = match &self.options().docker_config {
                    Some(config) => config.clone(),
                    None => DockerConfig::load().map_err(RegistryError::Credentials)?,
                };
                // CredentialsError never holds a secret, so it can be shown.
                let found = config
                    .credentials(host)
                    .await
                    .map_err(RegistryError::Credentials)?;
                tracing::debug!(host, found = found.is_some(), "registry credentials");
                Ok::<_, RegistryError>(found)
            })
            .await?;
        Ok(found.as_ref())
    }

    /// Whether credentials were found for this registry (false before the
    /// registry asked for any).
    pub(super) fn sent_credentials(&self) -> bool {
        self.credentials.get().is_some_and(Option::is_some)
    }

    /// The `Authorization` to retry with, or `None` when there is nothing
    /// to send (Basic auth without credentials).
    pub(super) async fn answer(
        &self,
        challenge: &Challenge,
    ) -> Result<Option<Secret>, RegistryError> {
        match challenge {
            Challenge::Basic => Ok(self.credentials().await?.map(Secret::basic)),
            Challenge::Bearer(bearer) => self.fetch_token(bearer).await.map(Some),
        }
    }

    async fn fetch_token(&self, challenge: &BearerChallenge) -> Result<Secret, RegistryError> {
        let host = self.repository().host().to_string();
        let realm: Uri = challenge
            .realm
            .parse()
            .map_err(|e| self.token_error(format!("realm {:?}: {e}", challenge.realm)))?;
        let (plain, realm_host) = match (realm.scheme_str(), realm.authority()) {
            (Some("https"), Some(a)) => (false, a.to_string()),
            (Some("http"), Some(a)) => (true, a.to_string()),
            _ => return Err(self.token_error(format!("realm {:?}", challenge.realm))),
        };
        let scopes = scopes(self.repository().path(), self.wanted(), &challenge.scopes);
        tracing::debug!(realm = %challenge.realm, ?scopes, "token request");
        let credentials = self.credentials().await?;
        // A TLS registry must not have its credentials sent in the clear;
        // on loopback they never leave the machine.
        let exposed =
            plain && self.repository().scheme() == Scheme::Https && !is_loopback(&realm_host);
        if credentials.is_some() && exposed {
            return Err(RegistryError::InsecureRealm {
                host,
                realm: challenge.realm.clone(),
            });
        }
        let what = format!("asking {realm_host} for a token");
        let service = challenge.service.as_deref();
        let call = match credentials {
            Some(c) if c.username().is_empty() => {
                refresh_grant(&realm, c.secret(), service, &scopes, &what)?
            }
            _ => token_get(&realm, credentials, service, &scopes, &what)?,
        };
        let reply = self.exchange(&call).await?;
        let no_oauth = matches!(
            reply.status,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        );
        if call.method == Method::POST && no_oauth {
            return Err(self.token_error(
                "the token service does not take identity tokens (OAuth2 POST); \
                 log in with a username and password instead"
                    .into(),
            ));
        }
        if !reply.status.is_success() {
            return Err(self.status_error(&what, &call.method, &reply));
        }
        let json: serde_json::Value = serde_json::from_slice(&reply.body)
            .map_err(|e| self.token_error(format!("not JSON: {e}")))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| json[k].as_str().filter(|t| !t.is_empty()))
            .map(Secret::bearer)
            .ok_or_else(|| self.token_error("no token in the answer".into()))
    }

    fn token_error(&self, detail: String) -> RegistryError {
        RegistryError::BadResponse {
            host: self.repository().host().to_string(),
            what: "asking the registry's token service for a token".into(),
            detail,
        }
    }
}

/// `GET realm?service=…&scope=…&scope=…`, the realm's own query kept.
fn token_get(
    realm: &Uri,
    credentials: Option<&Credentials>,
    service: Option<&str>,
    scopes: &[String],
    what: &str,
) -> Result<Call, RegistryError> {
    let mut query: Vec<String> = realm.query().map(str::to_string).into_iter().collect();
    if let Some(service) = service {
        query.push(format!("service={}", encode(service)));
    }
    query.extend(scopes.iter().map(|s| format!("scope={}", encode(s))));
    let url = with_query(realm, &query.join("&"), what)?;
    let mut call = Call::new(Method::GET, url, TOKEN_BODY_LIMIT, what);
    call.accept = Some("application/json");
    call.authorization = credentials.map(Secret::basic);
    Ok(call)
}

/// `POST realm` with an OAuth2 refresh-token grant (distribution
/// `docs/spec/auth/oauth.md`).
fn refresh_grant(
    realm: &Uri,
    refresh_token: &str,
    service: Option<&str>,
    scopes: &[String],
    what: &str,
) -> Result<Call, RegistryError> {
    let mut form = vec![
        "grant_type=refresh_token".to_string(),
        format!("refresh_token={}", encode(refresh_token)),
        format!("client_id={CLIENT_ID}"),
        format!("scope={}", encode(&scopes.join(" "))),
    ];
    if let Some(service) = service {
        form.push(format!("service={}", encode(service)));
    }
    let mut call = Call::new(Method::POST, realm.clone(), TOKEN_BODY_LIMIT, what);
    call.accept = Some("application/json");
    call.body = Some((
        "application/x-www-form-urlencoded",
        Bytes::from(form.join("&")),
    ));
    Ok(call)
}

fn with_query(realm: &Uri, query: &str, what: &str) -> Result<Uri, RegistryError> {
    let mut parts = realm.clone().into_parts();
    let path = realm.path();
    let target = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    parts.path_and_query = Some(target.parse().map_err(|e| RegistryError::BadResponse {
        host: realm.host().unwrap_or_default().to_string(),
        what: what.to_string(),
        detail: format!("realm {realm}: {e}"),
    })?);
    Uri::from_parts(parts).map_err(|e| RegistryError::BadResponse {
        host: realm.host().unwrap_or_default().to_string(),
        what: what.to_string(),
        detail: format!("realm {realm}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_requests() {
        let realm: Uri = "https://auth.lan:5001/token?a=1".parse().unwrap();
        let scopes = vec!["repository:x/y:pull,delete".to_string()];
        let creds = Credentials::basic("u".into(), "p".into());
        let call = token_get(&realm, Some(&creds), Some("registry.lan"), &scopes, "t").unwrap();
        assert_eq!(
            call.url.to_string(),
            "https://auth.lan:5001/token?a=1&service=registry.lan&scope=repository%3Ax%2Fy%3Apull%2Cdelete"
        );
        assert_eq!(call.authorization, Some(Secret::basic(&creds)));
        let bare: Uri = "http://127.0.0.1:9/t".parse().unwrap();
        let call = token_get(&bare, None, None, &[], "t").unwrap();
        assert_eq!(call.url.to_string(), "http://127.0.0.1:9/t");
        assert!(call.authorization.is_none());

        let call = refresh_grant(&realm, "r+t", Some("s"), &scopes, "t").unwrap();
        assert_eq!(call.method, Method::POST);
        let (kind, body) = call.body.unwrap();
        assert_eq!(kind, "application/x-www-form-urlencoded");
        assert_eq!(
            body,
            "grant_type=refresh_token&refresh_token=r%2Bt&client_id=rbuild\
             &scope=repository%3Ax%2Fy%3Apull%2Cdelete&service=s"
        );
    }
}
