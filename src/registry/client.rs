//! The distribution API calls housekeeping needs (distribution
//! `docs/spec/api.md`, OCI distribution-spec): tags with `Link`
//! pagination, manifests by tag or digest, HEAD for a tag's digest, DELETE
//! by digest, and small blobs (configs).

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::RegistryError;
use super::auth::BearerToken;
use super::manifest::{MANIFEST_ACCEPT, Manifest};
use super::reference::{Digest, ManifestRef, Repository, valid_tag};

/// Distribution refuses manifests over 4 MiB on push; allow some slack.
const MANIFEST_LIMIT: usize = 8 << 20;
/// A tags page; thousands of tags fit in well under this.
const TAGS_PAGE_LIMIT: usize = 16 << 20;
/// Stop following `Link` after this many pages: a loop, not a repo.
const MAX_PAGES: usize = 10_000;
/// Stop listing after this many tags, for the same reason.
const MAX_TAGS: usize = 1_000_000;

/// Time limits for the calls of a [`Registry`].
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// For opening each TCP connection (one per request).
    pub connect_timeout: Duration,
    /// For each request, from sending it to the end of its body.
    pub request_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// A client for one repository.
#[derive(Debug)]
pub struct Registry {
    repository: Repository,
    options: RegistryOptions,
    /// The last anonymous token; replaced when a call is challenged again
    /// (a DELETE needs a wider scope than a GET).
    token: Mutex<Option<BearerToken>>,
}

/// A manifest as fetched: its digest, its size and what it references.
#[derive(Debug)]
pub struct Fetched {
    pub digest: Digest,
    pub size: u64,
    pub manifest: Manifest,
}

#[derive(Deserialize)]
struct TagsPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// A client for `repository`; nothing is sent until the first call.
    pub fn new(repository: Repository, options: RegistryOptions) -> Registry {
        Registry {
            repository,
            options,
            token: Mutex::new(None),
        }
    }

    /// The repository every call of this client is about.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub(super) fn options(&self) -> &RegistryOptions {
        &self.options
    }

    pub(super) fn token(&self) -> Option<BearerToken> {
        // A poisoned lock only means another call panicked mid-assignment of
        // an Option; the value is still a whole token or none.
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set_token(&self, token: BearerToken) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
    }

    fn bad(&self, what: &str, detail: impl Into<String>) -> RegistryError {
        RegistryError::BadResponse {
            host: self.repository.host().to_string(),
            what: what.to_string(),
            detail: detail.into(),
        }
    }

    /// Every tag, following `Link: <…>; rel="next"` pages.
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        let what = format!("listing the tags of {}", self.repository);
        let mut path = format!("/v2/{}/tags/list", self.repository.path());
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self
                .send(
                    Method::GET,
                    &path,
                    Some("application/json"),
                    TAGS_PAGE_LIMIT,
                    &what,
                )
                .await?;
            if !reply.status.is_success() {
                return Err(self.status_error(&what, &Method::GET, &reply));
            }
            let page: TagsPage =
                serde_json::from_slice(&reply.body).map_err(|e| self.bad(&what, e.to_string()))?;
            for tag in page.tags.unwrap_or_default() {
                if !valid_tag(&tag) {
                    return Err(self.bad(&what, format!("invalid tag {tag:?}")));
                }
                tags.push(tag);
            }
            if tags.len() > MAX_TAGS {
                return Err(self.bad(&what, format!("more than {MAX_TAGS} tags")));
            }
            match reply.header("link").map(|l| self.next_page(l)) {
                Some(Ok(next)) => path = next,
                Some(Err(detail)) => return Err(self.bad(&what, detail)),
                None => {
                    tags.sort();
                    tags.dedup();
                    return Ok(tags);
                }
            }
        }
        Err(self.bad(&what, format!("more than {MAX_PAGES} pages")))
    }

    /// The `rel="next"` target of a `Link` header, which must stay on this
    /// registry's tag list (a relative URL, or an absolute one on this host).
    fn next_page(&self, link: &str) -> Result<String, String> {
        let target = link
            .split(',')
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| part.split_once('<')?.1.split_once('>'))
            .map(|(url, _)| url.trim())
            .ok_or_else(|| format!("Link header without a next page: {link:?}"))?;
        let path = match target.strip_prefix("http://") {
            Some(rest) => match rest.split_once('/') {
                Some((host, path)) if host == self.repository.host() => format!("/{path}"),
                _ => return Err(format!("next page on another host: {target:?}")),
            },
            None => target.to_string(),
        };
        let prefix = format!("/v2/{}/tags/list", self.repository.path());
        let safe = path.bytes().all(|b| b.is_ascii_graphic());
        if path.starts_with(&prefix) && safe {
            Ok(path)
        } else {
            Err(format!("next page outside the tag list: {target:?}"))
        }
    }

    /// A manifest or index; its digest is computed from the bytes, and a
    /// `Docker-Content-Digest` that disagrees is an error, since that digest
    /// is what a prune would delete.
    pub(super) async fn manifest(
        &self,
        reference: ManifestRef<'_>,
    ) -> Result<Fetched, RegistryError> {
        let what = format!("reading the manifest {}:{reference}", self.repository);
        let path = format!("/v2/{}/manifests/{reference}", self.repository.path());
        let reply = self
            .send(
                Method::GET,
                &path,
                Some(MANIFEST_ACCEPT),
                MANIFEST_LIMIT,
                &what,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.status_error(&what, &Method::GET, &reply));
        }
        let digest = Digest::sha256_of(&reply.body);
        let claimed = reply.header("docker-content-digest");
        let expected = match &reference {
            ManifestRef::Digest(d) => Some(d.as_str()),
            ManifestRef::Tag(_) => claimed.filter(|c| c.starts_with("sha256:")),
        };
        if let Some(expected) = expected.filter(|e| *e != digest.as_str()) {
            return Err(self.bad(&what, format!("content is {digest}, not {expected}")));
        }
        let manifest = Manifest::parse(&reply.body).map_err(|e| self.bad(&what, e))?;
        Ok(Fetched {
            digest,
            size: reply.body.len() as u64,
            manifest,
        })
    }

    /// The digest a tag points at now, from `Docker-Content-Digest` on HEAD.
    pub async fn tag_digest(&self, tag: &str) -> Result<Digest, RegistryError> {
        let what = format!("resolving {}:{tag}", self.repository);
        if !valid_tag(tag) {
            return Err(self.bad(&what, format!("invalid tag {tag:?}")));
        }
        let path = format!("/v2/{}/manifests/{tag}", self.repository.path());
        let reply = self
            .send(Method::HEAD, &path, Some(MANIFEST_ACCEPT), 0, &what)
            .await?;
        if !reply.status.is_success() {
            return Err(self.status_error(&what, &Method::HEAD, &reply));
        }
        let header = reply
            .header("docker-content-digest")
            .ok_or_else(|| self.bad(&what, "no Docker-Content-Digest header"))?;
        Digest::try_from(header.to_string()).map_err(|e| self.bad(&what, e))
    }

    /// Deletes a manifest (and so every tag pointing at it); 202 Accepted.
    pub async fn delete_manifest(&self, digest: &Digest) -> Result<(), RegistryError> {
        let what = format!("deleting {}@{digest}", self.repository);
        let path = format!("/v2/{}/manifests/{digest}", self.repository.path());
        let reply = self
            .send(Method::DELETE, &path, None, 1 << 10, &what)
            .await?;
        match reply.status {
            StatusCode::ACCEPTED | StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
            _ => Err(self.status_error(&what, &Method::DELETE, &reply)),
        }
    }

    /// A blob of at most `limit` bytes (configs, not layers), checked
    /// against its sha256 digest.
    pub async fn blob(&self, digest: &Digest, limit: usize) -> Result<Bytes, RegistryError> {
        let what = format!("reading the blob {}@{digest}", self.repository);
        let path = format!("/v2/{}/blobs/{digest}", self.repository.path());
        let reply = self.send(Method::GET, &path, None, limit, &what).await?;
        if !reply.status.is_success() {
            return Err(self.status_error(&what, &Method::GET, &reply));
        }
        if digest.as_str().starts_with("sha256:") && Digest::sha256_of(&reply.body) != *digest {
            return Err(self.bad(&what, "content does not match its digest"));
        }
        Ok(reply.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::new(
            "127.0.0.1:5000/a/b".parse().unwrap(),
            RegistryOptions::default(),
        )
    }

    #[test]
    fn link_headers() {
        let r = registry();
        assert_eq!(
            r.next_page(r#"</v2/a/b/tags/list?last=x&n=2>; rel="next""#),
            Ok("/v2/a/b/tags/list?last=x&n=2".into())
        );
        assert_eq!(
            r.next_page(r#"<http://127.0.0.1:5000/v2/a/b/tags/list?last=x>; rel="next""#),
            Ok("/v2/a/b/tags/list?last=x".into())
        );
        for bad in [
            r#"<http://evil:5000/v2/a/b/tags/list?last=x>; rel="next""#,
            r#"</v2/other/tags/list?last=x>; rel="next""#,
            r#"</v2/a/b/tags/list?last=x y>; rel="next""#,
            r#"</v2/a/b/tags/list?last=x>; rel="prev""#,
        ] {
            assert!(r.next_page(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod wire_tests {
    use crate::registry::RegistryError;
    use crate::registry::fake::FakeRegistry;
    use crate::registry::reference::ManifestRef;

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
}
