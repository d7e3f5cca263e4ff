//! What arrived for each exporter, held until the build's verdict: [`Outputs::commit`] moves
//! finished temp files and trees into place; dropping [`Outputs`] deletes them, so a failed
//! or cancelled build leaves previous outputs untouched.
//!
//! Calls report through a [`StreamGuard`]: a call that ends without reporting (its future was
//! dropped, e.g. the daemon reset the stream) counts as failed.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tempfile::TempPath;

use super::{ExportTarget, FileSendError, LocalFailure, merge};

/// State shared by the service's calls and the [`Outputs`] handle.
pub(super) struct Shared {
    state: Mutex<State>,
}

struct State {
    /// Set by commit or drop: later arrivals are discarded.
    closed: bool,
    slots: HashMap<u32, Slot>,
    /// `exporter-md-*` of each exporter's call: what the daemon says that
    /// exporter produced (BuildKit's merged response mixes exporters, #4532).
    metadata: BTreeMap<u32, BTreeMap<String, String>>,
}

struct Slot {
    target: ExportTarget,
    active: usize,
    completed: usize,
    failure: Option<String>,
    /// The first failure that happened on this machine (a full disk, a
    /// refused entry), which explains the daemon's side of it.
    local: Option<LocalFailure>,
    /// `File`: the finished temp file.
    file: Option<TempPath>,
    /// `Dir`: the staging tree all of the exporter's streams write into.
    dir: Option<Arc<StagingDir>>,
}

impl Shared {
    pub(super) fn new(targets: HashMap<u32, ExportTarget>) -> Self {
        let slots = targets
            .into_iter()
            .map(|(id, target)| {
                let slot = Slot {
                    target,
                    active: 0,
                    completed: 0,
                    failure: None,
                    local: None,
                    file: None,
                    dir: None,
                };
                (id, slot)
            })
            .collect();
        Self {
            state: Mutex::new(State {
                closed: false,
                slots,
                metadata: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements; a panic elsewhere must not wedge it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps the metadata the daemon sent with exporter `id`'s call.
    pub(super) fn record_metadata(&self, id: u32, md: &BTreeMap<String, String>) {
        if !md.is_empty() {
            self.lock().metadata.insert(id, md.clone());
        }
    }

    /// Registers a call for exporter `id`. Only a `Dir` may have several streams (upstream's
    /// `platform-split`); a second file stream would overwrite or interleave the first.
    pub(super) fn begin(
        self: &Arc<Self>,
        id: u32,
    ) -> Result<(ExportTarget, StreamGuard), FileSendError> {
        let mut state = self.lock();
        if state.closed {
            return Err(FileSendError::Closed);
        }
        let slot = state
            .slots
            .get_mut(&id)
            .ok_or(FileSendError::UnknownExporter(id))?;
        let single = !matches!(slot.target, ExportTarget::Dir(_));
        if single && (slot.active > 0 || slot.completed > 0) {
            return Err(FileSendError::Repeated(id));
        }
        slot.active += 1;
        let guard = StreamGuard {
            shared: Arc::clone(self),
            id,
            done: false,
        };
        Ok((slot.target.clone(), guard))
    }

    /// The staging tree of `Dir` exporter `id`, created beside `dest` by the first stream.
    pub(super) async fn staging_dir(
        &self,
        id: u32,
        dest: &Path,
    ) -> Result<Arc<StagingDir>, FileSendError> {
        if let Some(dir) = self.lock().slots.get(&id).and_then(|s| s.dir.clone()) {
            return Ok(dir);
        }
        let owned = dest.to_path_buf();
        let created = tokio::task::spawn_blocking(move || StagingDir::create(&owned))
            .await
            .map_err(|e| FileSendError::Internal(e.to_string()))??;
        let mut state = self.lock();
        if state.closed {
            return Err(FileSendError::Closed);
        }
        let slot = state
            .slots
            .get_mut(&id)
            .ok_or(FileSendError::UnknownExporter(id))?;
        // A concurrent stream may have won the race; ours is then dropped (and removed).
        Ok(Arc::clone(
            slot.dir.get_or_insert_with(|| Arc::new(created)),
        ))
    }

    fn end(&self, id: u32, result: Result<Option<TempPath>, (String, Option<LocalFailure>)>) {
        let mut state = self.lock();
        let closed = state.closed;
        let Some(slot) = state.slots.get_mut(&id) else {
            return;
        };
        slot.active = slot.active.saturating_sub(1);
        match result {
            Ok(file) => {
                slot.completed += 1;
                // After close, dropping the temp file here deletes it.
                if !closed {
                    slot.file = file;
                }
            }
            Err((reason, local)) => {
                slot.failure.get_or_insert(reason);
                // Only a file or tree has a previous version to keep; a
                // closed stdout or a failed image load is no disk's fault.
                let staged = matches!(slot.target, ExportTarget::File(_) | ExportTarget::Dir(_));
                if staged && slot.local.is_none() {
                    slot.local = local;
                }
            }
        }
    }
}

/// Reports how one call ended.
pub(super) struct StreamGuard {
    shared: Arc<Shared>,
    id: u32,
    done: bool,
}

impl StreamGuard {
    pub(super) fn finish(mut self) {
        self.done = true;
        self.shared.end(self.id, Ok(None));
    }

    pub(super) fn finish_file(mut self, file: TempPath) {
        self.done = true;
        self.shared.end(self.id, Ok(Some(file)));
    }

    pub(super) fn fail(mut self, err: &FileSendError) {
        self.done = true;
        self.shared
            .end(self.id, Err((err.to_string(), err.local())));
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.done {
            self.shared.end(
                self.id,
                Err(("the export stream was interrupted".to_owned(), None)),
            );
        }
    }
}

/// The solve's handle on its exports. Dropping it without [`Outputs::commit`] removes all
/// temp files and dirs (a failed or cancelled build leaves previous outputs untouched).
pub struct Outputs {
    shared: Arc<Shared>,
}

impl Outputs {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// What each exporter's call said it produced (`containerimage.digest`, ...), by
    /// exporter id; only exporters that send files carry it.
    pub fn exporter_metadata(&self) -> BTreeMap<u32, BTreeMap<String, String>> {
        self.shared.lock().metadata.clone()
    }

    /// The first export that failed on this machine, by exporter index:
    /// when a build fails, this says why better than the daemon's echo of
    /// it (or the `EOF` it saw when the stream stopped).
    pub fn local_failure(&self) -> Option<LocalFailure> {
        let state = self.shared.lock();
        let mut failed: Vec<_> = state
            .slots
            .iter()
            .filter_map(|(id, slot)| slot.local.clone().map(|l| (*id, l)))
            .collect();
        failed.sort_by_key(|(id, _)| *id);
        failed.into_iter().next().map(|(_, l)| l)
    }

    /// After Solve succeeded: renames every finished temp file/dir into place; returns what
    /// was written (file and directory targets, by exporter index). Fails before moving
    /// anything if an expected export never arrived, failed, or is still running; a rename
    /// that fails midway leaves the targets before it committed.
    pub async fn commit(self) -> Result<Vec<PathBuf>, FileSendError> {
        let slots = self.take();
        let mut ready = Vec::new();
        for (_, slot) in slots {
            let target = slot.target.describe();
            if let Some(reason) = slot.failure {
                return Err(FileSendError::Failed { target, reason });
            }
            if slot.active > 0 {
                return Err(FileSendError::Unfinished(target));
            }
            if slot.completed == 0 {
                return Err(FileSendError::Missing(target));
            }
            ready.push((slot.target, slot.file, slot.dir));
        }
        tokio::task::spawn_blocking(move || {
            let mut written = Vec::new();
            for (target, file, dir) in ready {
                match (target, file, dir) {
                    (ExportTarget::File(dest), Some(file), _) => {
                        file.persist(&dest).map_err(|e| FileSendError::Commit {
                            path: dest.clone(),
                            source: e.error,
                        })?;
                        written.push(dest);
                    }
                    (ExportTarget::Dir(dest), _, Some(dir)) => {
                        merge::commit_dir(&dir.path, &dir.dest)?;
                        written.push(dest);
                    }
                    _ => {}
                }
            }
            Ok(written)
        })
        .await
        .map_err(|e| FileSendError::Internal(e.to_string()))?
    }

    /// Closes the state and takes its slots, sorted by exporter index.
    fn take(&self) -> Vec<(u32, Slot)> {
        let mut state = self.shared.lock();
        state.closed = true;
        let mut slots: Vec<_> = state.slots.drain().collect();
        slots.sort_by_key(|(id, _)| *id);
        slots
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        // Deletes temp files now; a staging tree goes once its last stream lets go. This is
        // blocking work in Drop, accepted because it only runs when a build did not succeed.
        drop(self.take());
    }
}

/// A staging tree beside a `Dir` target, removed on drop unless it was moved into place.
pub(super) struct StagingDir {
    pub(super) path: PathBuf,
    /// Where the tree goes: the destination with symlinks resolved if it exists, so the
    /// staging tree is on the same file system and the final renames are atomic.
    pub(super) dest: PathBuf,
}

impl StagingDir {
    fn create(dest: &Path) -> Result<Self, FileSendError> {
        let dest = std::path::absolute(dest).map_err(FileSendError::io(dest))?;
        let (dest, base) = match std::fs::metadata(&dest) {
            Ok(md) if md.is_dir() => {
                let real = dest.canonicalize().map_err(FileSendError::io(&dest))?;
                let base = real.parent().map(Path::to_path_buf);
                (real, base)
            }
            Ok(_) => return Err(FileSendError::DestNotDir(dest)),
            // Missing directories are created at commit; until then the tree waits in the
            // nearest existing ancestor, so a failed build creates nothing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let base = dest.ancestors().skip(1).find(|a| a.is_dir());
                let base = base.map(Path::to_path_buf);
                (dest, base)
            }
            Err(e) => {
                return Err(FileSendError::Io {
                    path: dest,
                    source: e,
                });
            }
        };
        let Some(base) = base else {
            return Err(FileSendError::DestNotDir(dest));
        };
        let dir = tempfile::Builder::new()
            .prefix(".rbuild-export-")
            // Like `mkdir`: the umask applies, and the tree becomes `dest` if that is new.
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir_in(&base)
            .map_err(FileSendError::io(&base))?;
        Ok(Self {
            path: dir.keep(),
            dest,
        })
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Err(e) = merge::remove_tree(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove staging dir");
        }
    }
}
