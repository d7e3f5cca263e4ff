//! `Content.Write`: one bidi stream per blob. Follows containerd's
//! contentserver `(*service).Write` (plugins/services/content/contentserver)
//! for the daemon-side client in core/content/proxy/content_writer.go:
//!
//! 1. The first message names the `ref` (required); only one stream may hold
//!    a ref at a time (Unavailable otherwise, which `content.OpenWriter`
//!    retries).
//! 2. Every message is answered once, echoing its action, with the current
//!    offset and the digest of the bytes so far.
//! 3. A message naming an `expected` digest that is already stored fails the
//!    stream with AlreadyExists (the daemon treats that as done).
//! 4. `WRITE` appends at `offset` (which must be the current offset, or 0 to
//!    restart); `COMMIT` also checks `total`/`expected`, stores the blob and
//!    ends the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use prost_types::Timestamp;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::store::{ContentError, Digest, Ingest, LocalStore, join_error};
use super::to_status;
use crate::proto::containerd::services::content::v1::{
    Status as IngestStatus, WriteAction, WriteContentRequest, WriteContentResponse,
};

/// Writes in progress, by (store id, ref): for `Status`, `Abort`, and the
/// one-stream-per-ref lock. Shared by all clones of the service.
#[derive(Clone, Debug, Default)]
pub(super) struct Ingests(Arc<Mutex<HashMap<(String, String), Progress>>>);

#[derive(Clone, Debug)]
struct Progress {
    offset: u64,
    total: u64,
    expected: Option<Digest>,
    started: SystemTime,
    updated: SystemTime,
    aborted: bool,
}

impl Ingests {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Progress>> {
        // The map stays consistent across a panic: every update is one insert.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `reference` in `store` until the returned guard drops.
    fn claim(&self, store: &str, reference: &str) -> Result<Claim, ContentError> {
        let key = (store.to_string(), reference.to_string());
        let mut map = self.lock();
        if map.contains_key(&key) {
            return Err(ContentError::Locked(reference.to_string()));
        }
        let now = SystemTime::now();
        map.insert(
            key.clone(),
            Progress {
                offset: 0,
                total: 0,
                expected: None,
                started: now,
                updated: now,
                aborted: false,
            },
        );
        Ok(Claim {
            ingests: self.clone(),
            key,
        })
    }

    pub(super) fn status(&self, store: &str, reference: &str) -> Option<IngestStatus> {
        let map = self.lock();
        let p = map.get(&(store.to_string(), reference.to_string()))?;
        Some(IngestStatus {
            started_at: Some(Timestamp::from(p.started)),
            updated_at: Some(Timestamp::from(p.updated)),
            r#ref: reference.to_string(),
            offset: clamp(p.offset),
            total: clamp(p.total),
            expected: p
                .expected
                .as_ref()
                .map(Digest::to_string)
                .unwrap_or_default(),
        })
    }

    /// Marks a running write aborted; its stream fails at its next message
    /// and the temporary file goes with it.
    pub(super) fn abort(&self, store: &str, reference: &str) -> Result<(), ContentError> {
        match self
            .lock()
            .get_mut(&(store.to_string(), reference.to_string()))
        {
            Some(p) => {
                p.aborted = true;
                Ok(())
            }
            None => Err(ContentError::UnknownRef(reference.to_string())),
        }
    }
}

/// Holds a ref for one Write stream; releases it on drop.
struct Claim {
    ingests: Ingests,
    key: (String, String),
}

impl Claim {
    fn aborted(&self) -> bool {
        self.ingests.lock().get(&self.key).is_none_or(|p| p.aborted)
    }

    fn record(&self, w: &Writer, ingest: &Ingest) {
        if let Some(p) = self.ingests.lock().get_mut(&self.key) {
            p.offset = ingest.offset();
            p.total = w.total;
            p.expected.clone_from(&w.expected);
            p.started = ingest.started;
            p.updated = ingest.updated;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.ingests.lock().remove(&self.key);
    }
}

/// What the stream has declared so far: the latest non-zero `total` and
/// non-empty `expected` are the ones checked at commit.
struct Writer {
    store: LocalStore,
    total: u64,
    expected: Option<Digest>,
}

/// The outcome of one message.
enum Step {
    Open(Ingest, WriteContentResponse),
    Committed(WriteContentResponse),
}

/// Serves one Write stream on its own task.
pub(super) fn start(
    store: LocalStore,
    store_id: String,
    ingests: Ingests,
    inbound: Streaming<WriteContentRequest>,
) -> ReceiverStream<Result<WriteContentResponse, Status>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(status) = run(store, &store_id, ingests, inbound, &tx).await {
            // AlreadyExists ends a write the daemon no longer needs: not a failure.
            let (code, message) = (status.code(), status.message());
            tracing::debug!(store = store_id, ?code, message, "content write ended");
            let _ = tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx)
}

async fn run(
    store: LocalStore,
    store_id: &str,
    ingests: Ingests,
    mut inbound: Streaming<WriteContentRequest>,
    tx: &mpsc::Sender<Result<WriteContentResponse, Status>>,
) -> Result<(), Status> {
    let Some(mut req) = inbound.message().await? else {
        return Ok(());
    };
    if req.r#ref.is_empty() {
        return Err(Status::invalid_argument(
            "first message must have a reference",
        ));
    }
    let claim = ingests.claim(store_id, &req.r#ref).map_err(to_status)?;
    let mut ingest = store.begin().await.map_err(to_status)?;
    let mut w = Writer {
        store,
        total: 0,
        expected: None,
    };
    tracing::debug!(
        store = store_id,
        r#ref = req.r#ref,
        total = req.total,
        expected = req.expected,
        "content write"
    );
    loop {
        if claim.aborted() {
            return Err(to_status(ContentError::UnknownRef(req.r#ref)));
        }
        let resp = match w.handle(ingest, req).await.map_err(to_status)? {
            Step::Open(open, resp) => {
                claim.record(&w, &open);
                ingest = open;
                resp
            }
            Step::Committed(resp) => {
                let _ = tx.send(Ok(resp)).await;
                return Ok(());
            }
        };
        if tx.send(Ok(resp)).await.is_err() {
            return Ok(());
        }
        req = match inbound.message().await? {
            Some(r) => r,
            None => return Ok(()),
        };
    }
}

impl Writer {
    /// Applies one message to the write.
    async fn handle(
        &mut self,
        mut ingest: Ingest,
        req: WriteContentRequest,
    ) -> Result<Step, ContentError> {
        let action = WriteAction::try_from(req.action).map_err(|_| {
            ContentError::InvalidArgument(format!("unknown write action {}", req.action))
        })?;
        if !req.expected.is_empty() {
            let expected: Digest = req.expected.parse()?;
            if self.store.exists(&expected).await? {
                return Err(ContentError::AlreadyExists(expected));
            }
            self.expected = Some(expected);
        }
        if req.total > 0 {
            self.total = req.total.unsigned_abs();
        }
        let mut resp = WriteContentResponse {
            action: req.action,
            total: clamp(self.total),
            ..WriteContentResponse::default()
        };
        if action == WriteAction::Stat {
            resp.offset = clamp(ingest.offset());
            resp.digest = ingest.digest().to_string();
            stamp(&mut resp, &ingest);
            return Ok(Step::Open(ingest, resp));
        }
        let current = ingest.offset();
        if req.offset > 0 && req.offset.unsigned_abs() != current {
            return Err(ContentError::OffsetMismatch {
                requested: req.offset,
                current,
            });
        }
        let restart = req.offset <= 0 && current > 0;
        if restart || !req.data.is_empty() {
            ingest = tokio::task::spawn_blocking(move || {
                if restart {
                    ingest.reset()?;
                }
                ingest.write(&req.data)?;
                Ok::<_, std::io::Error>(ingest)
            })
            .await
            .map_err(join_error)??;
        }
        resp.offset = clamp(ingest.offset());
        if action == WriteAction::Write {
            resp.digest = ingest.digest().to_string();
            return Ok(Step::Open(ingest, resp));
        }
        stamp(&mut resp, &ingest);
        let (store, total, expected) = (self.store.clone(), self.total, self.expected.clone());
        let digest =
            tokio::task::spawn_blocking(move || ingest.commit(&store, total, expected.as_ref()))
                .await
                .map_err(join_error)??;
        resp.digest = digest.to_string();
        Ok(Step::Committed(resp))
    }
}

/// Stat and commit answers carry the write's times.
fn stamp(resp: &mut WriteContentResponse, ingest: &Ingest) {
    resp.started_at = Some(Timestamp::from(ingest.started));
    resp.updated_at = Some(Timestamp::from(ingest.updated));
}

/// Sizes are u64 on disk and int64 on the wire.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
