//! `--load` into a Docker Engine: the docker exporter's tarball is streamed
//! into the engine's image-load API while the build runs.
//!
//! Fast path (buildx issues #626, #107: "sending tarball" can take as long as
//! the build): BuildKit names the image's config digest before it sends the
//! tarball. When the engine already holds that image, the names are tagged
//! onto it and the daemon is told to skip the transfer.

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::docker_api::{Engine, EngineError};
use crate::session::filesend::StreamSink;

/// Chunks in flight between the exporter and the engine.
const LOAD_QUEUE: usize = 16;

/// The running image-load request and the names it loaded.
type LoadTask = JoinHandle<Result<Vec<String>, EngineError>>;

/// Where the session's file-send service puts a `docker` export for `--load`:
/// tags an image the engine already holds, else streams the tarball into
/// `POST /images/load`.
pub(crate) struct LoadSink {
    engine: Engine,
    /// The image names the export carries (`name` attribute).
    names: Vec<String>,
    load: Mutex<Option<LoadTask>>,
}

impl LoadSink {
    /// A sink that loads into `engine`; `names` are the export's image names,
    /// tagged on the fast path.
    pub fn new(engine: Engine, names: Vec<String>) -> LoadSink {
        LoadSink {
            engine,
            names,
            load: Mutex::new(None),
        }
    }

    /// Tags every name onto an image the engine already holds.
    async fn reuse(&self, config_digest: &str) -> Result<bool, EngineError> {
        let Some(id) = self.engine.find_by_config_digest(config_digest).await? else {
            return Ok(false);
        };
        for name in &self.names {
            self.engine.tag(&id, name).await?;
        }
        tracing::debug!(%config_digest, names = ?self.names, "--load: image already in the engine, tagged");
        Ok(true)
    }
}

#[tonic::async_trait]
impl StreamSink for LoadSink {
    async fn open(
        &self,
        md: &BTreeMap<String, String>,
    ) -> Result<Option<mpsc::Sender<Bytes>>, String> {
        if let Some(config) = md.get("containerimage.config.digest") {
            match self.reuse(config).await {
                Ok(true) => return Ok(None),
                Ok(false) => {}
                // The fast path is an optimisation: fall back to loading.
                Err(e) => tracing::debug!(error = %e, "--load fast path unavailable"),
            }
        }
        let (tx, rx) = mpsc::channel(LOAD_QUEUE);
        let engine = self.engine.clone();
        let task = tokio::spawn(async move { engine.load(rx).await });
        let mut slot = self
            .load
            .lock()
            .map_err(|_| "load state poisoned".to_string())?;
        *slot = Some(task);
        Ok(Some(tx))
    }

    async fn close(&self, ok: bool) -> Result<(), String> {
        let task = self
            .load
            .lock()
            .map_err(|_| "load state poisoned".to_string())?
            .take();
        let Some(task) = task else {
            return Ok(());
        };
        if !ok {
            // Dropping the request makes the engine discard the partial image.
            task.abort();
            return Err("the image transfer to the engine was interrupted".to_string());
        }
        match task.await {
            Ok(Ok(loaded)) => {
                tracing::debug!(?loaded, "--load: image loaded into the engine");
                Ok(())
            }
            Ok(Err(e)) => Err(format!(
                "loading the image into the Docker Engine failed: {e}"
            )),
            Err(e) => Err(format!(
                "loading the image into the Docker Engine stopped: {e}"
            )),
        }
    }
}
