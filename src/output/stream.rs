//! An output streamed to the caller's channel instead of a file.

use std::collections::BTreeMap;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Channel;
use crate::session::filesend::StreamSink;

/// Hands each chunk of one exporter's stream to the caller's channel.
pub(crate) struct ChannelSink {
    tx: mpsc::Sender<Bytes>,
}

impl ChannelSink {
    pub(crate) fn new(channel: &Channel) -> ChannelSink {
        ChannelSink {
            tx: channel.0.clone(),
        }
    }
}

#[tonic::async_trait]
impl StreamSink for ChannelSink {
    async fn open(
        &self,
        _md: &BTreeMap<String, String>,
    ) -> Result<Option<mpsc::Sender<Bytes>>, String> {
        if self.tx.is_closed() {
            return Err("the stream's receiver was dropped".to_string());
        }
        Ok(Some(self.tx.clone()))
    }

    async fn close(&self, ok: bool) -> Result<(), String> {
        if ok {
            Ok(())
        } else {
            Err("the daemon's stream broke off".to_string())
        }
    }
}
