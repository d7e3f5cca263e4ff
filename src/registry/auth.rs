//! What a registry's 401 asks for (distribution `docs/spec/auth/token.md`
//! and RFC 7235): `WWW-Authenticate: Basic realm=…` wants the Docker
//! config's username and password on every request; `Bearer realm=…,
//! service=…,scope=…` wants a token from the realm (see `token`).
//!
//! Scopes: the registry names what the refused request needed; we ask for
//! that merged with what the whole operation will need on this repository
//! (`pull` to read, `pull,push,delete` to prune), so one token covers every
//! call of a prune instead of one token per kind of request.

use std::fmt;

use base64::Engine as _;
use http::{HeaderMap, StatusCode, header};

use crate::credentials::Credentials;

/// The actions `rbuild cache ls|du` needs.
pub(super) const READ: &[&str] = &["pull"];
/// The actions publishing a manifest needs.
pub(super) const PUSH: &[&str] = &["pull", "push"];
/// The actions a prune needs: reading the tags again and deleting. Push as
/// well, since registries differ in which action they check for a delete.
pub(super) const DELETE: &[&str] = &["pull", "push", "delete"];

/// A 401's `WWW-Authenticate`, for the schemes a registry uses.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Challenge {
    Basic,
    Bearer(BearerChallenge),
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    /// Space-separated in the header; one entry per scope here.
    pub scopes: Vec<String>,
}

/// One `Authorization` header value; never printed.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Secret(String);

impl Secret {
    pub fn bearer(token: &str) -> Secret {
        Secret(format!("Bearer {token}"))
    }

    /// `Basic base64(user:password)`, what `docker login` checks with.
    pub fn basic(credentials: &Credentials) -> Secret {
        let pair = format!("{}:{}", credentials.username(), credentials.secret());
        Secret(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// The header value, marked sensitive so hyper never logs it.
    pub fn header(&self) -> Option<http::HeaderValue> {
        let mut value = http::HeaderValue::from_str(&self.0).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The challenge of a 401, `None` for schemes other than Basic and Bearer.
/// A header may list several challenges; a registry sends one.
pub(super) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest)?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer(BearerChallenge {
        realm: get("realm")?,
        service: get("service"),
        scopes: get("scope")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    }))
}

/// The challenge of a 401 answer, if it has one this client can answer.
pub(super) fn challenge_of(status: StatusCode, headers: &HeaderMap) -> Option<Challenge> {
    if status != StatusCode::UNAUTHORIZED {
        return None;
    }
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_challenge)
}

/// `key=value` or `key="quoted"` pairs separated by commas.
fn parse_params(mut rest: &str) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return Some(params);
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

/// The scopes to ask for: `repository:<path>:<actions>` with `wanted` and
/// whatever the challenge named for this repository (an older registry
/// asks `*` for a delete), then the challenge's other scopes unchanged.
pub(super) fn scopes(path: &str, wanted: &[&str], challenged: &[String]) -> Vec<String> {
    let ours = format!("repository:{path}");
    let mut actions: Vec<String> = wanted.iter().map(|a| a.to_string()).collect();
    let mut others = Vec::new();
    for scope in challenged {
        match scope.rsplit_once(':') {
            Some((resource, named)) if resource == ours => {
                for action in named.split(',').filter(|a| !a.is_empty()) {
                    if !actions.iter().any(|a| a == action) {
                        actions.push(action.to_string());
                    }
                }
            }
            _ if !others.contains(scope) => others.push(scope.clone()),
            _ => {}
        }
    }
    let mut all = vec![format!("{ours}:{}", actions.join(","))];
    all.extend(others);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(header: &str) -> BearerChallenge {
        match parse_challenge(header) {
            Some(Challenge::Bearer(c)) => c,
            other => panic!("{header}: {other:?}"),
        }
    }

    #[test]
    fn challenges() {
        let c = bearer(
            r#"Bearer realm="http://auth.lan:5001/token?a=1",service="registry.lan",scope="repository:x/y:pull,delete""#,
        );
        assert_eq!(c.realm, "http://auth.lan:5001/token?a=1");
        assert_eq!(c.service.as_deref(), Some("registry.lan"));
        assert_eq!(c.scopes, ["repository:x/y:pull,delete"]);
        let c = bearer(r#"bearer realm=http://a/t, error="invalid_token", x="q\"""#);
        assert_eq!((c.realm.as_str(), c.service), ("http://a/t", None));
        assert!(c.scopes.is_empty());
        let c = bearer(r#"Bearer realm="r",scope="repository:a:pull registry:catalog:*""#);
        assert_eq!(c.scopes, ["repository:a:pull", "registry:catalog:*"]);
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("basic"), Some(Challenge::Basic));
        assert_eq!(parse_challenge(r#"Negotiate abc"#), None);
        assert_eq!(parse_challenge(r#"Bearer service="s""#), None, "realm");
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
    }

    #[test]
    fn scopes_merge_what_the_operation_and_the_registry_need() {
        assert_eq!(
            scopes("team/app", READ, &["repository:team/app:pull".into()]),
            ["repository:team/app:pull"]
        );
        assert_eq!(
            scopes("team/app", DELETE, &["repository:team/app:delete".into()]),
            ["repository:team/app:pull,push,delete"]
        );
        assert_eq!(
            scopes(
                "app",
                READ,
                &["repository:app:*".into(), "repository:other:pull".into()]
            ),
            ["repository:app:pull,*", "repository:other:pull"]
        );
        assert_eq!(scopes("app", READ, &[]), ["repository:app:pull"]);
    }

    #[test]
    fn secrets_do_not_print() {
        let creds = Credentials::basic("alice".into(), "s3cr3t".into());
        let basic = Secret::basic(&creds);
        assert_eq!(basic.0, "Basic YWxpY2U6czNjcjN0");
        assert!(basic.header().unwrap().is_sensitive());
        for s in [basic, Secret::bearer("t0k3n")] {
            let shown = format!("{s:?}");
            assert!(
                !shown.contains("czNj") && !shown.contains("t0k3n"),
                "{shown}"
            );
        }
    }
}
