//! The anonymous half of the distribution token flow
//! (distribution `docs/spec/auth/token.md`): a 401 carries
//! `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; a GET on the realm
//! with that service and scope returns a token for `Authorization: Bearer`.

use std::fmt;

use ::http::{Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::RegistryError;
use super::client::Registry;
use super::http::Call;

/// Token answers are small JSON documents.
const TOKEN_BODY_LIMIT: usize = 1 << 20;

const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// A bearer token; never printed.
#[derive(Clone)]
pub(super) struct BearerToken(pub String);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// `Bearer realm="…",service="…",scope="…"`; `None` for other schemes.
pub(super) fn parse_bearer(header: &str) -> Option<Challenge> {
    let (scheme, mut rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            break;
        }
        let (key, after) = rest.split_once('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].to_string(), &after[end..])
            }
        };
        params.push((key.trim().to_ascii_lowercase(), value));
        rest = after;
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    Some(Challenge {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// A quoted-string body up to its closing quote, `\x` escapes resolved.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// The realm request's path and query: the realm's own query kept, service
/// and scope appended.
fn token_path(realm: &Uri, challenge: &Challenge) -> String {
    let mut path = realm.path().to_string();
    let mut query: Vec<String> = realm.query().map(str::to_string).into_iter().collect();
    for (key, value) in [("service", &challenge.service), ("scope", &challenge.scope)] {
        if let Some(v) = value {
            query.push(format!("{key}={}", utf8_percent_encode(v, QUERY)));
        }
    }
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

impl Registry {
    pub(super) async fn fetch_token(
        &self,
        challenge: &Challenge,
    ) -> Result<BearerToken, RegistryError> {
        let host = self.repository().host().to_string();
        let bad = |detail: String| RegistryError::BadResponse {
            host: host.clone(),
            what: "asking the token service for an anonymous token".into(),
            detail,
        };
        let realm: Uri = challenge
            .realm
            .parse()
            .map_err(|e| bad(format!("realm {:?}: {e}", challenge.realm)))?;
        let authority = match (realm.scheme_str(), realm.authority()) {
            (Some("http"), Some(a)) => a.as_str().to_string(),
            _ => {
                return Err(RegistryError::Unsupported(format!(
                    "the registry at {host} hands out tokens from {}, which is not plain HTTP; \
                     HTTPS is not supported yet by `rbuild cache`",
                    challenge.realm
                )));
            }
        };
        let path = token_path(&realm, challenge);
        let what = format!("asking {authority} for an anonymous token");
        let reply = self
            .exchange(&Call {
                authority: &authority,
                method: Method::GET,
                path: &path,
                accept: Some("application/json"),
                bearer: None,
                limit: TOKEN_BODY_LIMIT,
                what: &what,
            })
            .await?;
        if !reply.status.is_success() {
            return Err(self.status_error(&what, &Method::GET, &reply));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&reply.body).map_err(|e| bad(e.to_string()))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| json[k].as_str().filter(|t| !t.is_empty()))
            .map(|t| BearerToken(t.to_string()))
            .ok_or_else(|| bad("no token in the answer".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        let c = parse_bearer(
            r#"Bearer realm="http://auth.lan:5001/token?a=1",service="registry.lan",scope="repository:x/y:pull,delete""#,
        )
        .unwrap();
        assert_eq!(c.realm, "http://auth.lan:5001/token?a=1");
        assert_eq!(c.service.as_deref(), Some("registry.lan"));
        assert_eq!(c.scope.as_deref(), Some("repository:x/y:pull,delete"));
        let realm: Uri = c.realm.parse().unwrap();
        assert_eq!(
            token_path(&realm, &c),
            "/token?a=1&service=registry.lan&scope=repository%3Ax%2Fy%3Apull%2Cdelete"
        );
        let c = parse_bearer(r#"bearer realm=http://a/t, error="invalid_token", x="q\"""#).unwrap();
        assert_eq!((c.realm.as_str(), c.service), ("http://a/t", None));
        assert_eq!(parse_bearer(r#"Basic realm="Registry Realm""#), None);
        assert_eq!(
            parse_bearer(r#"Bearer service="s""#),
            None,
            "realm is required"
        );
        assert_eq!(parse_bearer(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn tokens_do_not_print() {
        let t = BearerToken("secret".into());
        assert!(!format!("{t:?}").contains("secret"));
    }
}
