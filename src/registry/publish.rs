//! Reading a manifest's exact bytes and publishing one under a tag: what
//! assembling a multi-platform index from images that different nodes
//! pushed needs. The bytes matter: a descriptor's digest and size are of
//! the document as stored, so it is never re-serialised.

use bytes::Bytes;
use http::{Method, StatusCode};

use super::RegistryError;
use super::auth::PUSH;
use super::client::Registry;
use super::reference::{ManifestRef, valid_tag};
use crate::digest::Digest;

/// A manifest or index as the registry stores it.
#[derive(Clone, Debug)]
pub struct RawManifest {
    /// The sha256 of `body`, checked against what was asked for.
    pub digest: Digest,
    /// Its media type: the `Content-Type` the registry answered with, else
    /// the document's own `mediaType`.
    pub media_type: String,
    /// The document, byte for byte.
    pub body: Bytes,
}

impl Registry {
    /// The manifest or index `digest`, byte for byte.
    ///
    /// # Errors
    ///
    /// [`RegistryError::NotFound`] when there is no such manifest;
    /// [`RegistryError::BadResponse`] when its content does not match `digest` or names no
    /// manifest type; otherwise [`RegistryError::Unreachable`], [`RegistryError::Timeout`],
    /// [`RegistryError::Connection`] or [`RegistryError::Tls`] when the registry cannot be
    /// reached; [`RegistryError::Denied`] when it refuses the request (no or wrong
    /// credentials); [`RegistryError::Status`] for another error status;
    /// [`RegistryError::BadResponse`] when its answer breaks the protocol.
    pub async fn manifest_bytes(&self, digest: &Digest) -> Result<RawManifest, RegistryError> {
        let what = format!("reading the manifest {}@{digest}", self.repository());
        let reply = self
            .get_manifest(&ManifestRef::Digest(digest), &what)
            .await?;
        let actual = Digest::sha256_of(&reply.body);
        if digest.as_str().starts_with("sha256:") && actual != *digest {
            return Err(self.bad(&what, format!("content is {actual}, not {digest}")));
        }
        let media_type = reply
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
            .filter(|t| super::manifest::is_manifest_type(t))
            .or_else(|| declared_media_type(&reply.body))
            .ok_or_else(|| self.bad(&what, "neither the answer nor the document names its type"))?;
        Ok(RawManifest {
            digest: actual,
            media_type,
            body: reply.body,
        })
    }

    /// Stores `body` (of `media_type`) under `tag`; the digest the registry
    /// confirms, which must be that of the bytes sent.
    ///
    /// # Errors
    ///
    /// [`RegistryError::BadResponse`] when `tag` is invalid or the registry confirms
    /// another digest; otherwise [`RegistryError::Unreachable`],
    /// [`RegistryError::Timeout`], [`RegistryError::Connection`] or [`RegistryError::Tls`]
    /// when the registry cannot be reached; [`RegistryError::Denied`] when it refuses the
    /// request (no or wrong credentials); [`RegistryError::Status`] for another error
    /// status; [`RegistryError::BadResponse`] when its answer breaks the protocol.
    pub async fn put_manifest(
        &self,
        tag: &str,
        media_type: &'static str,
        body: Bytes,
    ) -> Result<Digest, RegistryError> {
        let what = format!("pushing the manifest {}:{tag}", self.repository());
        if !valid_tag(tag) {
            return Err(self.bad(&what, format!("invalid tag {tag:?}")));
        }
        self.want(PUSH);
        let digest = Digest::sha256_of(&body);
        let path = format!("/v2/{}/manifests/{tag}", self.repository().path());
        let reply = self
            .send_body(
                Method::PUT,
                &path,
                None,
                Some((media_type, body)),
                1 << 10,
                &what,
            )
            .await?;
        if !matches!(reply.status, StatusCode::CREATED | StatusCode::OK) {
            return Err(self.status_error(&what, &Method::PUT, &reply));
        }
        if let Some(claimed) = reply
            .header("docker-content-digest")
            .filter(|c| c.starts_with("sha256:") && *c != digest.as_str())
        {
            return Err(self.bad(&what, format!("stored as {claimed}, not {digest}")));
        }
        Ok(digest)
    }
}

fn declared_media_type(body: &[u8]) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    doc.get("mediaType")?.as_str().map(str::to_string)
}
