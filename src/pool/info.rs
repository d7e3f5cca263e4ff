//! `Pool::status`: every node's health, version, workers and running
//! builds, for `rbuild info`.

use std::collections::BTreeSet;

use futures::future::join_all;

use super::Pool;
use crate::client::{Client, DaemonInfo};
use crate::proto::moby::buildkit::v1::BuildHistoryRequest;

/// One node as `rbuild info` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// The platforms it is configured for (empty: what its workers report).
    pub platforms: Vec<String>,
    /// Whether it would take a build now.
    pub health: Health,
    /// Version and workers, when it answered.
    #[serde(flatten)]
    pub info: Option<DaemonInfo>,
    /// Builds running on it now; `None` when it cannot say (no history API).
    pub running_builds: Option<usize>,
}

/// A node's health, as placement judges it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Health {
    /// It connected and its health check passed.
    Healthy,
    /// It did not connect in time or failed its health check; why.
    Unhealthy(String),
}

impl Pool {
    /// Every node, checked concurrently (each at most once per pool, as
    /// placement checks it).
    pub async fn status(&self) -> Vec<NodeStatus> {
        let checks = (0..self.nodes.len()).map(|i| async move {
            let node = &self.nodes[i];
            let (health, client, info) = if self.is_single() {
                match self.lone_ready().await {
                    Ok((client, info)) => (Health::Healthy, Some(client), Some(info)),
                    Err(reason) => (Health::Unhealthy(reason), None, None),
                }
            } else {
                match self.ready(i).await {
                    Ok(r) => (Health::Healthy, Some(r.client.clone()), r.info.clone()),
                    Err(reason) => (Health::Unhealthy(reason.clone()), None, None),
                }
            };
            let running_builds = match &client {
                Some(c) => running_builds(c).await,
                None => None,
            };
            NodeStatus {
                name: node.name.clone(),
                address: node.address.to_string(),
                platforms: node.platforms.clone(),
                health,
                info,
                running_builds,
            }
        });
        join_all(checks).await
    }

    /// The lone node's connection and info, errors as one line.
    async fn lone_ready(&self) -> Result<(Client, DaemonInfo), String> {
        let node = &self.nodes[0];
        let client = self
            .lone
            .get_or_try_init(|| Client::connect(node.address.clone(), &node.connect))
            .await
            .map_err(|e| e.to_string())?
            .clone();
        let info = client.info().await.map_err(|e| e.to_string())?;
        Ok((client, info))
    }
}

/// How many builds the daemon's history lists as active, under the query
/// timeout.
async fn running_builds(client: &Client) -> Option<usize> {
    let mut control = client.daemon().control();
    let listen = async {
        let mut events = control
            .listen_build_history(BuildHistoryRequest {
                active_only: true,
                r#ref: String::new(),
                early_exit: true,
            })
            .await
            .ok()?
            .into_inner();
        let mut refs = BTreeSet::new();
        while let Some(event) = events.message().await.ok()? {
            if let Some(record) = event.record {
                refs.insert(record.r#ref);
            }
        }
        Some(refs.len())
    };
    tokio::time::timeout(client.daemon().query_timeout(), listen)
        .await
        .ok()
        .flatten()
}
