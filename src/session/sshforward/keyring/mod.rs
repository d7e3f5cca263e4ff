//! An in-process SSH agent over private key files, for `--ssh ID=KEYFILE`.
//!
//! A CI runner usually has a deploy key in a file and no agent. The daemon
//! speaks the agent protocol (draft-miller-ssh-agent) through the forwarded
//! stream, so rbuild answers it itself: the identity list and signatures,
//! nothing else. Like buildkit's key-file provider the agent is read-only:
//! adding, removing or locking keys fails. Keys never leave this process;
//! only public key blobs and signatures cross the session.

use std::path::{Path, PathBuf};

use signature::Signer;
use ssh_key::private::KeypairData;
use ssh_key::{HashAlg, PrivateKey};

use self::rsa::RsaSigner;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::{CHUNK, SshError};
use crate::proto::moby::sshforward::v1::BytesMessage;

mod rsa;

/// Agent message numbers used here.
const FAILURE: u8 = 5;
const REQUEST_IDENTITIES: u8 = 11;
const IDENTITIES_ANSWER: u8 = 12;
const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;

/// `SSH_AGENT_RSA_SHA2_256` / `_512` sign-request flags.
const RSA_SHA2_256: u32 = 2;
const RSA_SHA2_512: u32 = 4;

/// OpenSSH's own limit on one agent message; a longer length prefix means
/// a broken or hostile peer, and the connection is dropped.
pub const MAX_MESSAGE: usize = 256 * 1024;

struct Key {
    private: PrivateKey,
    /// Set for RSA keys, which ring signs; ssh-key signs the others.
    rsa: Option<RsaSigner>,
    /// The public key in wire format, as listed and as sign requests name it.
    blob: Vec<u8>,
    comment: String,
}

/// The keys of one `--ssh ID=KEYFILE[,KEYFILE]`, parsed before the build.
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.keys.iter().map(|k| k.comment.as_str()).collect();
        f.debug_struct("Keyring").field("keys", &names).finish()
    }
}

impl Keyring {
    /// Reads every key file; any unreadable, encrypted or foreign-format key
    /// is an error naming the file, so the build does not start without it.
    pub fn load(id: &str, paths: &[PathBuf]) -> Result<Keyring, SshError> {
        let keys = paths
            .iter()
            .map(|path| load_key(id, path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keyring { keys })
    }

    /// Answers one agent request (its body, without the length prefix) with
    /// one response body.
    pub fn answer(&self, request: &[u8]) -> Vec<u8> {
        let mut reader = Reader(request);
        let reply = match reader.byte() {
            Some(REQUEST_IDENTITIES) => Some(self.identities()),
            Some(SIGN_REQUEST) => self.sign(&mut reader),
            other => {
                tracing::debug!(request = ?other, "ssh agent request refused");
                None
            }
        };
        reply.unwrap_or_else(|| vec![FAILURE])
    }

    fn identities(&self) -> Vec<u8> {
        let mut out = vec![IDENTITIES_ANSWER];
        put_u32(&mut out, self.keys.len());
        for key in &self.keys {
            put_string(&mut out, &key.blob);
            put_string(&mut out, key.comment.as_bytes());
        }
        out
    }

    fn sign(&self, reader: &mut Reader<'_>) -> Option<Vec<u8>> {
        let blob = reader.string()?;
        let data = reader.string()?;
        let flags = reader.u32()?;
        let key = self.keys.iter().find(|k| k.blob == blob)?;
        let signature = match &key.rsa {
            Some(rsa) => sign_rsa(rsa, data, flags),
            None => key.private.try_sign(data).ok(),
        };
        let Some(signature) = signature else {
            tracing::debug!(key = %key.comment, flags, "ssh agent could not sign");
            return None;
        };
        // The signature blob: algorithm name, then the raw signature.
        let mut encoded = Vec::new();
        put_string(&mut encoded, signature.algorithm().as_str().as_bytes());
        put_string(&mut encoded, signature.as_bytes());
        tracing::debug!(key = %key.comment, "ssh agent signed a request");
        let mut out = vec![SIGN_RESPONSE];
        put_string(&mut out, &encoded);
        Some(out)
    }
}

/// RSA signs with the hash the client asked for. Plain `ssh-rsa` (SHA-1,
/// flags 0) is refused: OpenSSH stopped accepting it in 8.8, and every
/// client that still offers RSA asks for SHA-2.
fn sign_rsa(key: &RsaSigner, data: &[u8], flags: u32) -> Option<ssh_key::Signature> {
    if flags & RSA_SHA2_512 != 0 {
        key.sign(data, HashAlg::Sha512)
    } else if flags & RSA_SHA2_256 != 0 {
        key.sign(data, HashAlg::Sha256)
    } else {
        None
    }
}

fn load_key(id: &str, path: &Path) -> Result<Key, SshError> {
    let key_error = |reason: String| SshError::Key {
        id: id.to_string(),
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?;
    if !text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        let reason = if text.contains("PRIVATE KEY-----") {
            "a PEM private key; only OpenSSH-format keys are read (convert it with \
             `ssh-keygen -p -f FILE`, which rewrites it in that format)"
        } else {
            "not an OpenSSH private key (give the private key, not the .pub file)"
        };
        return Err(key_error(reason.to_string()));
    }
    let private =
        PrivateKey::from_openssh(&text).map_err(|e| key_error(format!("cannot parse it: {e}")))?;
    if private.is_encrypted() {
        return Err(key_error(
            "the key is passphrase-protected; add it to an agent (ssh-add) and give \
             ID=$SSH_AUTH_SOCK (the agent) instead"
                .to_string(),
        ));
    }
    let rsa = match private.key_data() {
        KeypairData::Ed25519(_) | KeypairData::Ecdsa(_) => None,
        KeypairData::Rsa(keypair) => {
            Some(RsaSigner::new(keypair).map_err(|e| key_error(e.to_string()))?)
        }
        _ => {
            return Err(key_error(format!(
                "{} keys are not supported (use ed25519, ecdsa or rsa)",
                private.algorithm()
            )));
        }
    };
    let blob = private
        .public_key()
        .to_bytes()
        .map_err(|e| key_error(format!("cannot encode its public key: {e}")))?;
    let comment = match private.comment() {
        "" => path.display().to_string(),
        c => c.to_string(),
    };
    Ok(Key {
        private,
        rsa,
        blob,
        comment,
    })
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    // Agent fields are u32; nothing here comes near that.
    out.extend_from_slice(&(n as u32).to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, data: &[u8]) {
    put_u32(out, data.len());
    out.extend_from_slice(data);
}

/// Reads agent wire fields; `None` on truncation.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (data, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(data)
    }
}

/// Splits complete agent messages off the front of a byte buffer.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message body, `Ok(None)` when more bytes are needed,
    /// or `Err` when the peer announced an oversized message.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, usize> {
        let Some(head) = self.buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*head) as usize;
        if len > MAX_MESSAGE {
            return Err(len);
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(body))
    }
}

/// A body framed for the wire.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    put_string(&mut out, body);
    out
}

/// Answers agent requests from `keyring` until the daemon half-closes.
pub(super) async fn serve(
    keyring: Arc<Keyring>,
    mut inbound: Streaming<BytesMessage>,
    tx: mpsc::Sender<Result<BytesMessage, Status>>,
) {
    let mut framer = Framer::default();
    loop {
        let msg = tokio::select! {
            msg = inbound.message() => msg,
            () = tx.closed() => return,
        };
        match msg {
            Ok(Some(msg)) => framer.push(&msg.data),
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(error = %status, "ssh forward stream failed");
                return;
            }
        }
        loop {
            let request = match framer.next_message() {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(len) => {
                    tracing::debug!(len, "ssh agent request too long; closing");
                    return;
                }
            };
            let reply = frame(&keyring.answer(&request));
            for chunk in reply.chunks(CHUNK) {
                let data = Bytes::copy_from_slice(chunk);
                if tx.send(Ok(BytesMessage { data })).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
