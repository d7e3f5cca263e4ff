//! Finding the engine's image for a config digest: the `--load` fast path
//! ("the engine already holds the image BuildKit is about to send").
//!
//! With the classic store an image's id *is* its config digest, so inspect
//! answers directly. With the containerd store the id is the target digest
//! (manifest or index), and Engine 26.1 exposes the config digest in neither
//! inspect nor list (moby's `daemon/containerd/image.go` resolves only names
//! and target digests). The one place it shows is an export: `GET
//! /images/get` of a candidate streams a tarball whose blobs are sorted by
//! name (containerd's `images/archive` exporter), so reading it until the
//! candidate's manifest, or the wanted config blob, appears settles the
//! question, usually long before the layers end.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use http::Method;
use http_body_util::{BodyExt, Empty};
use serde::Deserialize;

use super::export_scan::ExportScan;
use super::http::{parse_json, query_escape, read_limited, request, status_error};
use super::tarstream::TarStream;
use super::{Engine, EngineError};

/// Exports in flight at once.
const SCAN_CONCURRENCY: usize = 4;

/// Manifests, indexes and configs are small JSON; layers are never kept.
const KEEP_BLOB: u64 = 4 << 20;

enum Scan {
    Match,
    NoMatch,
    OverBudget,
}

impl Engine {
    /// Does the engine hold an image whose config digest is `config_digest`
    /// (`sha256:<64 hex>`)? Returns the engine's image id, to tag. With the
    /// containerd store a miss exports every image (newest first, up to the
    /// scan budget, see [`Engine::with_scan_budget`]), so it costs seconds on
    /// an engine with hundreds of images.
    ///
    /// # Errors
    ///
    /// [`EngineError::InvalidReference`] when `config_digest` is not `sha256:` and 64 hex
    /// digits; otherwise [`EngineError::Unreachable`] when the engine's socket cannot be
    /// opened, [`EngineError::Connection`] when the exchange breaks,
    /// [`EngineError::Status`] when the engine answers with an error status,
    /// [`EngineError::BadResponse`] when its answer cannot be read.
    pub async fn find_by_config_digest(
        &self,
        config_digest: &str,
    ) -> Result<Option<String>, EngineError> {
        let wanted = sha256_hex(config_digest)?;
        if let Some(id) = self.image_id(config_digest).await? {
            return Ok(Some(id));
        }
        if !self.uses_containerd_store().await? {
            // The classic store's inspect by id is authoritative.
            return Ok(None);
        }
        let mut images = self.listed_images().await?;
        images.sort_by_key(|image| std::cmp::Reverse(image.created));
        let mut seen = HashSet::new();
        let candidates: Vec<String> = images
            .into_iter()
            .map(|image| image.id)
            .filter(|id| seen.insert(id.clone()))
            .take(self.scan_images)
            .collect();
        let budget = AtomicU64::new(self.scan_bytes);
        // Each export costs the engine tens of milliseconds before its first
        // byte; a few at a time hide most of that.
        let mut scans = futures::stream::iter(candidates)
            .map(|id| {
                let budget = &budget;
                async move {
                    let scan = self.export_holds_config(&id, wanted, budget).await;
                    (id, scan)
                }
            })
            .buffer_unordered(SCAN_CONCURRENCY);
        while let Some((id, scan)) = scans.next().await {
            match scan {
                Ok(Scan::Match) => return Ok(Some(id)),
                Ok(Scan::NoMatch) => {}
                Ok(Scan::OverBudget) => {
                    tracing::debug!(config_digest, "config lookup gave up: scan budget spent");
                    return Ok(None);
                }
                Err(e @ EngineError::Unreachable { .. }) => return Err(e),
                // One image that cannot be exported (content missing, a
                // platform never pulled) says nothing about the others.
                Err(e) => tracing::debug!(image = %id, error = %e, "skipping candidate"),
            }
        }
        Ok(None)
    }

    /// `GET /info` reports the containerd snapshotter as a driver status.
    /// When unsure, say yes: that only costs a scan.
    pub(crate) async fn uses_containerd_store(&self) -> Result<bool, EngineError> {
        let what = "reading engine info";
        let (status, body) = self.call(Method::GET, "/info", what).await?;
        if !status.is_success() {
            return Err(status_error(what, status, &body));
        }
        #[derive(Deserialize)]
        struct Info {
            #[serde(rename = "DriverStatus", default)]
            driver_status: Option<Vec<Vec<String>>>,
        }
        let Ok(info) = parse_json::<Info>(what, &body) else {
            return Ok(true);
        };
        Ok(info.driver_status.unwrap_or_default().iter().any(|pair| {
            matches!(pair.as_slice(), [key, value]
                if key == "driver-type" && value.starts_with("io.containerd.snapshotter"))
        }))
    }

    async fn export_holds_config(
        &self,
        image_id: &str,
        wanted: &str,
        budget: &AtomicU64,
    ) -> Result<Scan, EngineError> {
        let what = format!("exporting image {image_id}");
        let target = sha256_hex(image_id)?;
        // The path form (`/images/{name}/get`) rejects bare hex ids.
        let path = format!("/images/get?names={}", query_escape(image_id));
        let request = request(Method::GET, &path, Empty::<Bytes>::new(), &what)?;
        let what = what.as_str();
        self.exchange(what, request, |response| async move {
            let status = response.status();
            if !status.is_success() {
                let body = read_limited(response.into_body(), 64 << 10, what).await?;
                return Err(status_error(what, status, &body));
            }
            let mut body = response.into_body();
            let mut tar = TarStream::new(KEEP_BLOB);
            let mut scan = ExportScan::new(target, wanted);
            let mut entries = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| self.broken(what, e))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let spend = data.len() as u64;
                let spent = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(spend)
                });
                if spent.is_err() {
                    return Ok(Scan::OverBudget);
                }
                tar.push(&data, &mut entries)
                    .map_err(|e| EngineError::BadResponse {
                        what: what.to_string(),
                        detail: e.to_string(),
                    })?;
                for entry in entries.drain(..) {
                    match scan.entry(entry) {
                        Some(true) => return Ok(Scan::Match),
                        Some(false) => return Ok(Scan::NoMatch),
                        None => {}
                    }
                }
                if tar.is_done() {
                    break;
                }
            }
            Ok(Scan::NoMatch)
        })
        .await
    }
}

/// The hex of a `sha256:` digest, checked so it can name a blob.
pub(super) fn sha256_hex(digest: &str) -> Result<&str, EngineError> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| EngineError::InvalidReference {
            reference: digest.to_string(),
            reason: "expected a digest sha256:<64 hex digits>",
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker_api::export_scan::tests::{hex, manifest};
    use crate::docker_api::tarstream::tests::archive;
    use crate::testing::fake_engine::FakeEngine;

    #[test]
    fn digests_are_checked_before_use() {
        assert!(sha256_hex(&format!("sha256:{}", hex('a'))).is_ok());
        for bad in [
            "",
            "sha256:abc",
            "md5:00",
            &format!("sha256:{}", "z".repeat(64)),
        ] {
            assert!(sha256_hex(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn the_containerd_store_is_scanned_by_export() {
        let (m, c) = (hex('1'), hex('2'));
        let export = archive(&[
            (&format!("blobs/sha256/{m}"), manifest(&c).as_bytes()),
            (&format!("blobs/sha256/{c}"), b"{}"),
        ]);
        let fake = FakeEngine::start(vec![
            FakeEngine::reply(404, r#"{"message":"No such image"}"#),
            FakeEngine::reply(
                200,
                r#"{"DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}"#,
            ),
            FakeEngine::reply(
                200,
                // The same image twice (two names): exported once.
                &format!(
                    r#"[{{"Id":"sha256:{m}","Created":1}},{{"Id":"sha256:{m}","Created":1}}]"#
                ),
            ),
            FakeEngine::reply_bytes(200, &export),
        ]);
        let found = fake
            .engine
            .find_by_config_digest(&format!("sha256:{c}"))
            .await
            .unwrap();
        assert_eq!(found, Some(format!("sha256:{m}")));
        let requests = fake.requests().await;
        assert_eq!(requests.len(), 4, "{requests:?}");
        assert!(
            requests[3].starts_with(&format!("GET /images/get?names=sha256%3A{m} ")),
            "{requests:?}"
        );
    }

    #[tokio::test]
    async fn the_classic_store_answers_by_inspect_alone() {
        let fake = FakeEngine::start(vec![
            FakeEngine::reply(404, r#"{"message":"No such image"}"#),
            FakeEngine::reply(
                200,
                r#"{"Driver":"overlay2","DriverStatus":[["Backing Filesystem","extfs"]]}"#,
            ),
        ]);
        let found = fake
            .engine
            .find_by_config_digest(&format!("sha256:{}", hex('5')))
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(fake.requests().await.len(), 2);
    }
}
