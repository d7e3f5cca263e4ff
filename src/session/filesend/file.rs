//! `tar`, `oci`, `docker`: one file as `BytesMessage` chunks (at most 3 MiB each). The daemon
//! CloseSends after the last one and waits for our end of the stream, so we write it all,
//! then return OK without sending anything (buildkit `writeTargetFile`, and
//! `streamWriterCloser.Close` on the daemon's side).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bytes::Bytes;
use prost::Message;
use tempfile::NamedTempFile;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tonic::Streaming;

use super::outputs::StreamGuard;
use super::{FileSendError, Outbound, StreamSink, no_messages};
use crate::proto::moby::filesync::v1::BytesMessage;

/// Writes the file to a temp file beside `dest`; [`super::Outputs::commit`] renames it.
pub(super) async fn receive_file(
    dest: &Path,
    inbound: Streaming<Bytes>,
    guard: StreamGuard,
) -> Result<Outbound, FileSendError> {
    let staged = async {
        let owned = dest.to_path_buf();
        let temp = tokio::task::spawn_blocking(move || stage_file(&owned))
            .await
            .map_err(|e| FileSendError::Internal(e.to_string()))??;
        let (file, path) = temp.into_parts();
        let mut file = tokio::fs::File::from_std(file);
        copy(inbound, &mut file, dest).await?;
        // Durable before the rename at commit makes it visible.
        file.sync_all().await.map_err(FileSendError::io(&*path))?;
        Ok(path)
    };
    match staged.await {
        Ok(path) => {
            guard.finish_file(path);
            Ok(no_messages())
        }
        Err(err) => {
            guard.fail(&err);
            Err(err)
        }
    }
}

/// Creates the temp file in the destination's directory, so the rename is atomic.
fn stage_file(dest: &Path) -> Result<NamedTempFile, FileSendError> {
    let dest = std::path::absolute(dest).map_err(FileSendError::io(dest))?;
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Err(FileSendError::DestIsDir(dest));
    };
    if !parent.is_dir() {
        return Err(FileSendError::MissingParent {
            path: dest.clone(),
            parent: parent.to_path_buf(),
        });
    }
    if dest.is_dir() {
        return Err(FileSendError::DestIsDir(dest));
    }
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".rbuild-tmp")
        // Like a plain create: 0666 less the umask, not tempfile's 0600.
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(parent)
        .map_err(FileSendError::io(parent))
}

/// `dest=-`: written as it arrives; a failed build leaves a truncated stream behind.
pub(super) async fn receive_stdout(
    inbound: Streaming<Bytes>,
    guard: StreamGuard,
) -> Result<Outbound, FileSendError> {
    let mut stdout = tokio::io::stdout();
    match copy(inbound, &mut stdout, Path::new("stdout")).await {
        Ok(()) => {
            guard.finish();
            Ok(no_messages())
        }
        Err(err) => {
            guard.fail(&err);
            Err(err)
        }
    }
}

/// Writes every chunk to `out` and flushes it.
async fn copy<W: AsyncWrite + Unpin>(
    mut inbound: Streaming<Bytes>,
    out: &mut W,
    name: &Path,
) -> Result<(), FileSendError> {
    while let Some(data) = next_chunk(&mut inbound).await? {
        out.write_all(&data)
            .await
            .map_err(FileSendError::io(name))?;
    }
    out.flush().await.map_err(FileSendError::io(name))
}

async fn next_chunk(inbound: &mut Streaming<Bytes>) -> Result<Option<Bytes>, FileSendError> {
    let Some(raw) = inbound
        .message()
        .await
        .map_err(|status| FileSendError::Transport(status.message().to_owned()))?
    else {
        return Ok(None);
    };
    let message = BytesMessage::decode(raw)
        .map_err(|e| FileSendError::Transport(format!("bad BytesMessage: {e}")))?;
    Ok(Some(message.data))
}

/// Hands the chunks to `sink`, which may skip the export up front.
pub(super) async fn receive_stream(
    sink: &dyn StreamSink,
    md: &BTreeMap<String, String>,
    mut inbound: Streaming<Bytes>,
    guard: StreamGuard,
) -> Result<Outbound, FileSendError> {
    let tx = match sink.open(md).await {
        Ok(Some(tx)) => tx,
        Ok(None) => {
            // oci/docker exporters take AlreadyExists as success and send nothing.
            guard.finish();
            return Err(FileSendError::AlreadyExists);
        }
        Err(reason) => {
            let err = FileSendError::Consumer(reason);
            guard.fail(&err);
            return Err(err);
        }
    };
    let forwarded = async {
        while let Some(data) = next_chunk(&mut inbound).await? {
            if data.is_empty() {
                continue;
            }
            // Bounded: a slow consumer slows the daemon down instead of filling memory.
            if tx.send(data).await.is_err() {
                return Err(FileSendError::Consumer("it stopped reading".into()));
            }
        }
        Ok(())
    }
    .await;
    // The consumer sees the end of the data, then gives its verdict.
    drop(tx);
    let verdict = sink
        .close(forwarded.is_ok())
        .await
        .map_err(FileSendError::Consumer);
    // The consumer's own explanation beats "it stopped reading".
    let result = match (forwarded, verdict) {
        (Err(FileSendError::Consumer(_)), Err(verdict)) => Err(verdict),
        (Err(err), _) | (Ok(()), Err(err)) => Err(err),
        (Ok(()), Ok(())) => Ok(no_messages()),
    };
    match &result {
        Ok(_) => guard.finish(),
        Err(err) => guard.fail(err),
    }
    result
}
