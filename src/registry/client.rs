//! The distribution API calls housekeeping needs (distribution
//! `docs/spec/api.md`, OCI distribution-spec): tags with `Link`
//! pagination, manifests by tag or digest, HEAD for a tag's digest, DELETE
//! by digest, and small blobs (configs).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::RegistryError;
use super::auth::{READ, Secret};
use super::manifest::{MANIFEST_ACCEPT, Manifest};
use super::reference::{ManifestRef, Repository, valid_tag};
use super::transport::Transport;
use crate::credentials::{Credentials, DockerConfig};
use crate::digest::Digest;

/// Distribution refuses manifests over 4 MiB on push; allow some slack.
const MANIFEST_LIMIT: usize = 8 << 20;
/// A tags page; thousands of tags fit in well under this.
const TAGS_PAGE_LIMIT: usize = 16 << 20;
/// Stop following `Link` after this many pages: a loop, not a repo.
const MAX_PAGES: usize = 10_000;
/// Stop listing after this many tags, for the same reason.
const MAX_TAGS: usize = 1_000_000;

/// How a [`Registry`] connects and authenticates.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// For opening each TCP connection and its TLS handshake.
    pub connect_timeout: Duration,
    /// For each request, from sending it to the end of its body.
    pub request_timeout: Duration,
    /// A PEM CA bundle trusted for HTTPS besides the system's roots
    /// (which `SSL_CERT_FILE` and `SSL_CERT_DIR` replace).
    pub ca_file: Option<PathBuf>,
    /// Where credentials come from when the registry asks for them;
    /// `None` reads the Docker config (`$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`) then. `Some(DockerConfig::default())` is
    /// anonymous access.
    pub docker_config: Option<DockerConfig>,
    /// Tags per page when listing (the API's `n`); `None` lets the
    /// registry choose. Pages are followed through `Link` either way.
    pub page_size: Option<u32>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            ca_file: None,
            docker_config: None,
            page_size: None,
        }
    }
}

/// A client for one repository; its connections are pooled and its
/// credentials or token reused across calls.
pub struct Registry {
    repository: Repository,
    options: RegistryOptions,
    transport: Transport,
    /// The `Authorization` sent with every call, and how often it changed.
    authorization: Mutex<(Option<Secret>, u64)>,
    /// Held while answering a challenge, so concurrent 401s fetch one token.
    pub(super) refresh: tokio::sync::Mutex<()>,
    /// The Docker config's answer for this host, once asked.
    pub(super) credentials: tokio::sync::OnceCell<Option<Credentials>>,
    /// The actions tokens are asked for on this repository.
    wanted: Mutex<&'static [&'static str]>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("repository", &self.repository)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
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
    /// A client for `repository`; nothing is sent or read until the first call.
    pub fn new(repository: Repository, options: RegistryOptions) -> Registry {
        let transport = Transport::new(options.connect_timeout, options.ca_file.clone());
        Registry {
            repository,
            options,
            transport,
            authorization: Mutex::new((None, 0)),
            refresh: tokio::sync::Mutex::new(()),
            credentials: tokio::sync::OnceCell::new(),
            wanted: Mutex::new(READ),
        }
    }

    /// The repository every call of this client is about.
    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    pub(super) fn options(&self) -> &RegistryOptions {
        &self.options
    }

    pub(super) fn transport(&self) -> &Transport {
        &self.transport
    }

    // A poisoned lock only means another call panicked mid-assignment of a
    // small value; the value is still whole.
    pub(super) fn authorization(&self) -> (Option<Secret>, u64) {
        self.authorization
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn set_authorization(&self, secret: Secret) {
        let mut current = self.authorization.lock().unwrap_or_else(|p| p.into_inner());
        *current = (Some(secret), current.1 + 1);
    }

    pub(super) fn wanted(&self) -> &'static [&'static str] {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks later tokens for `actions`; the next refused call fetches one.
    pub(super) fn want(&self, actions: &'static [&'static str]) {
        *self.wanted.lock().unwrap_or_else(|p| p.into_inner()) = actions;
    }

    pub(super) fn bad(&self, what: &str, detail: impl Into<String>) -> RegistryError {
        RegistryError::BadResponse {
            host: self.repository.host().to_string(),
            what: what.to_string(),
            detail: detail.into(),
        }
    }

    /// Every tag, following `Link: <…>; rel="next"` pages.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Unreachable`], [`RegistryError::Timeout`],
    /// [`RegistryError::Connection`] or [`RegistryError::Tls`] when the registry cannot be
    /// reached; [`RegistryError::Denied`] when it refuses the request (no or wrong
    /// credentials); [`RegistryError::Status`] for another error status;
    /// [`RegistryError::BadResponse`] when its answer breaks the protocol (also for an
    /// invalid tag in the list).
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        let what = format!("listing the tags of {}", self.repository);
        let mut path = format!("/v2/{}/tags/list", self.repository.path());
        if let Some(n) = self.options.page_size {
            path.push_str(&format!("?n={n}"));
        }
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
    /// registry's tag list (a relative URL, or an absolute one on this origin).
    fn next_page(&self, link: &str) -> Result<String, String> {
        let target = link
            .split(',')
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| part.split_once('<')?.1.split_once('>'))
            .map(|(url, _)| url.trim())
            .ok_or_else(|| format!("Link header without a next page: {link:?}"))?;
        let path = if target.starts_with('/') {
            target.to_string()
        } else {
            let origin = self.repository.origin();
            match target.strip_prefix(origin.as_str()) {
                Some(path) if path.starts_with('/') => path.to_string(),
                _ => return Err(format!("next page on another host: {target:?}")),
            }
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
        let reply = self.get_manifest(&reference, &what).await?;
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

    /// A manifest's answer, successful; its body is at most 8 MiB.
    pub(super) async fn get_manifest(
        &self,
        reference: &ManifestRef<'_>,
        what: &str,
    ) -> Result<super::http::Reply, RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository.path());
        let reply = self
            .send(
                Method::GET,
                &path,
                Some(MANIFEST_ACCEPT),
                MANIFEST_LIMIT,
                what,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(self.status_error(what, &Method::GET, &reply));
        }
        Ok(reply)
    }

    /// The digest a tag points at now, from `Docker-Content-Digest` on HEAD.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadResponse`] when `tag` is invalid or the answer has no valid
    /// `Docker-Content-Digest`; [`RegistryError::NotFound`] when there is no such tag;
    /// otherwise [`RegistryError::Unreachable`], [`RegistryError::Timeout`],
    /// [`RegistryError::Connection`] or [`RegistryError::Tls`] when the registry cannot be
    /// reached; [`RegistryError::Denied`] when it refuses the request (no or wrong
    /// credentials); [`RegistryError::Status`] for another error status;
    /// [`RegistryError::BadResponse`] when its answer breaks the protocol.
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
    ///
    /// # Errors
    ///
    /// [`RegistryError::DeleteDisabled`] when the registry does not allow deletes;
    /// [`RegistryError::NotFound`] when there is no such manifest; otherwise
    /// [`RegistryError::Unreachable`], [`RegistryError::Timeout`],
    /// [`RegistryError::Connection`] or [`RegistryError::Tls`] when the registry cannot be
    /// reached; [`RegistryError::Denied`] when it refuses the request (no or wrong
    /// credentials); [`RegistryError::Status`] for another error status;
    /// [`RegistryError::BadResponse`] when its answer breaks the protocol.
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
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotFound`] when there is no such blob;
    /// [`RegistryError::BadResponse`] when it is over `limit` or its content does not match
    /// `digest`; otherwise [`RegistryError::Unreachable`], [`RegistryError::Timeout`],
    /// [`RegistryError::Connection`] or [`RegistryError::Tls`] when the registry cannot be
    /// reached; [`RegistryError::Denied`] when it refuses the request (no or wrong
    /// credentials); [`RegistryError::Status`] for another error status;
    /// [`RegistryError::BadResponse`] when its answer breaks the protocol.
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
        let tls = Registry::new(
            "https://reg.lan/a/b".parse().unwrap(),
            RegistryOptions::default(),
        );
        assert_eq!(
            tls.next_page(r#"<https://reg.lan/v2/a/b/tags/list?n=2&last=b>; rel="next""#),
            Ok("/v2/a/b/tags/list?n=2&last=b".into())
        );
        assert!(
            tls.next_page(r#"<http://reg.lan/v2/a/b/tags/list?last=b>; rel="next""#)
                .is_err()
        );
        for bad in [
            r#"<http://evil:5000/v2/a/b/tags/list?last=x>; rel="next""#,
            r#"<http://127.0.0.1:5000.evil/v2/a/b/tags/list?last=x>; rel="next""#,
            r#"</v2/other/tags/list?last=x>; rel="next""#,
            r#"</v2/a/b/tags/list?last=x y>; rel="next""#,
            r#"</v2/a/b/tags/list?last=x>; rel="prev""#,
        ] {
            assert!(r.next_page(bad).is_err(), "{bad}");
        }
    }
}
