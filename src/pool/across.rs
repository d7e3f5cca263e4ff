//! A multi-platform build split over a pool's nodes: each platform is
//! built on a node that builds it natively ([`platforms::split`]), all at
//! once, each pushed as its own image; then the index that joins them is
//! assembled from the registry and published under the build's tags.
//!
//! Each platform's image is pushed under its tag with the platform as a
//! suffix (`app:1-linux-arm64`), not by digest: a Docker Engine's exporter
//! cannot push by digest (buildx refuses `push-by-digest` on the docker
//! driver too), and a fixed tag per platform is overwritten by the next
//! build instead of piling up in the registry. Each platform also keeps
//! its registry cache under a suffixed tag, so concurrent exports from
//! different nodes do not overwrite each other's cache manifest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;
use tokio::sync::Barrier;

use super::platforms::{self, Share};
use super::publish::{Targets, merged};
use super::{Placed, Placement, Pool, PoolError, RouteKey};
use crate::buildspec::Build;
use crate::client::{BuildOptions, Client, Slot};
use crate::outcome::{BuildError, BuildResult};
use crate::output::Output;

/// One platform's build: its node, and where it pushes.
pub(super) struct Part {
    pub(super) platform: String,
    pub(super) node: usize,
    pub(super) build: Build,
}

impl Pool {
    /// How `build`'s platforms spread over the healthy nodes, in its key's
    /// order; `None` when one node builds them all (the ordinary path).
    pub(crate) async fn platform_shares(
        &self,
        key: &RouteKey,
        build: &Build,
    ) -> Result<Option<Vec<(Share, Placement)>>, PoolError> {
        let mut healthy: Vec<(usize, Vec<String>)> = Vec::new();
        let mut skipped = Vec::new();
        let order = super::route::order(&key.value, self.nodes.iter().map(|n| n.name.as_str()));
        // Every node is asked, so a dead one costs one connect timeout, not one each.
        let checked = join_all(order.iter().map(|&i| self.ready(i))).await;
        for (&i, ready) in order.iter().zip(checked) {
            let node = &self.nodes[i];
            match ready {
                Ok(ready) => {
                    let has = if node.platforms.is_empty() {
                        let workers = ready.info.iter().flat_map(|info| &info.workers);
                        workers.flat_map(|w| w.platforms.clone()).collect()
                    } else {
                        node.platforms.clone()
                    };
                    healthy.push((i, has));
                }
                Err(reason) => skipped.push(super::passed_over(node, reason)),
            }
        }
        if healthy.is_empty() {
            return Err(PoolError::NoNode {
                key: key.to_string(),
                skipped,
            });
        }
        let mut shares = platforms::split(&build.platforms, &healthy);
        if shares.len() < 2 {
            return Ok(None);
        }
        // Shown in the order the build asked for its platforms.
        let asked = |s: &Share| {
            build
                .platforms
                .iter()
                .position(|p| s.platforms.first() == Some(p))
        };
        shares.sort_by_key(asked);
        let placed = shares
            .into_iter()
            .enumerate()
            .map(|(n, share)| {
                let node = &self.nodes[share.node];
                let placement = Placement {
                    node: node.name.clone(),
                    address: node.address.to_string(),
                    key: key.clone(),
                    // Said once, with the first node's news.
                    skipped: if n == 0 { skipped.clone() } else { Vec::new() },
                    platforms: share.platforms.clone(),
                };
                (share, placement)
            })
            .collect();
        Ok(Some(placed))
    }

    /// Runs `build` split as `shares` says, then publishes its index.
    pub(crate) async fn build_across(
        &self,
        build: &Build,
        options: &BuildOptions,
        shares: Vec<(Share, Placement)>,
    ) -> Placed {
        match self.prepare_split(build, shares).await {
            Ok(split) => {
                let announced = split.announced_alone();
                self.run_split(build, options, split, 0, announced).await
            }
            Err(placed) => placed,
        }
    }

    /// Everything a split build needs before it runs, or its failure: an
    /// output only one node could make, a node gone since it was checked.
    pub(crate) async fn prepare_split(
        &self,
        build: &Build,
        shares: Vec<(Share, Placement)>,
    ) -> Result<Split, Placed> {
        let placements: Vec<Placement> = shares.iter().map(|(_, p)| p.clone()).collect();
        let failed = |e: BuildError| Placed {
            placement: placements.first().cloned(),
            result: Err(e),
            shares: placements.clone(),
            progress: Vec::new(),
        };
        let targets = Targets::of(build).map_err(|e| failed(e.into()))?;
        let parts: Vec<Part> = shares
            .iter()
            .flat_map(|(share, _)| {
                share.platforms.iter().map(|p| Part {
                    platform: p.clone(),
                    node: share.node,
                    build: platform_build(build, p),
                })
            })
            .collect();
        let mut clients: BTreeMap<usize, Client> = BTreeMap::new();
        for (share, _) in &shares {
            match self.ready(share.node).await {
                Ok(ready) => {
                    clients.insert(share.node, ready.client.clone());
                }
                Err(reason) => {
                    let node = &self.nodes[share.node];
                    let skipped = vec![super::passed_over(node, reason)];
                    let key = shares[0].1.key.to_string();
                    let e = PoolError::NoNode { key, skipped };
                    return Err(failed(BuildError::NoNode(Box::new(e))));
                }
            }
        }
        Ok(Split {
            placements,
            shares,
            parts,
            clients,
            targets,
        })
    }

    /// Runs a prepared split build, its parts' progress under
    /// `slot_base..`, each of its nodes one of `announced`'s parties.
    pub(crate) async fn run_split(
        &self,
        build: &Build,
        options: &BuildOptions,
        split: Split,
        slot_base: usize,
        announced: Option<Arc<Barrier>>,
    ) -> Placed {
        let started = Instant::now();
        let Split {
            placements,
            shares,
            parts,
            clients,
            targets,
        } = split;
        let results = run_parts(&parts, &shares, &clients, options, slot_base, announced).await;
        let mut built = Vec::with_capacity(parts.len());
        let mut failure = None;
        for (part, result) in parts.iter().zip(results) {
            match result {
                Ok(r) => built.push((part, r)),
                // The first real failure; the rest were canceled for it.
                Err(BuildError::Canceled) => {
                    failure.get_or_insert(BuildError::Canceled);
                }
                Err(e) => {
                    if matches!(failure, None | Some(BuildError::Canceled)) {
                        failure = Some(naming_the_part(e, part, &self.nodes[part.node].name));
                    }
                }
            }
        }
        let result = match failure {
            Some(e) => Err(e),
            None => match targets.publish(build, &built).await {
                Ok(index) => Ok(merged(build, &built, index, &targets, started)),
                Err(e) => Err(e),
            },
        };
        Placed {
            placement: placements.first().cloned(),
            result,
            shares: placements,
            progress: (slot_base..slot_base + parts.len()).collect(),
        }
    }
}

/// A split build, prepared: see [`Pool::prepare_split`].
pub(crate) struct Split {
    placements: Vec<Placement>,
    shares: Vec<(Share, Placement)>,
    parts: Vec<Part>,
    clients: BTreeMap<usize, Client>,
    targets: Targets,
}

impl Split {
    /// How many `Client::build_all` calls it makes: one per node.
    pub(crate) fn parties(&self) -> usize {
        self.shares.len()
    }

    /// How many progress slots its parts take: one per platform.
    pub(crate) fn slots(&self) -> usize {
        self.parts.len()
    }

    /// Its own barrier, when it runs alone.
    fn announced_alone(&self) -> Option<Arc<Barrier>> {
        (self.parties() > 1).then(|| Arc::new(Barrier::new(self.parties())))
    }
}

/// A part's step or daemon failure says which platform and node it was:
/// the other parts' progress is interleaved with it.
fn naming_the_part(e: BuildError, part: &Part, node: &str) -> BuildError {
    let prefix = format!("{} on node {node}: ", part.platform);
    match e {
        BuildError::Step(mut failure) => {
            failure.message.insert_str(0, &prefix);
            BuildError::Step(failure)
        }
        BuildError::Daemon { message } => BuildError::Daemon {
            message: format!("{prefix}{message}"),
        },
        other => other,
    }
}

/// Runs every part on its node, each node's parts in one `build_all`; the
/// first failure cancels the others.
async fn run_parts(
    parts: &[Part],
    shares: &[(Share, Placement)],
    clients: &BTreeMap<usize, Client>,
    options: &BuildOptions,
    slot_base: usize,
    announced: Option<Arc<Barrier>>,
) -> Vec<Result<BuildResult, BuildError>> {
    let cancel = options.cancel.child_token();
    let runs = shares.iter().map(|(share, placement)| {
        let mine: Vec<usize> = (0..parts.len())
            .filter(|&i| parts[i].node == share.node)
            .collect();
        let builds: Vec<Build> = mine.iter().map(|&i| parts[i].build.clone()).collect();
        let slots = mine
            .iter()
            .map(|&i| Slot {
                index: slot_base + i,
                placement: Some(Placement {
                    platforms: vec![parts[i].platform.clone()],
                    ..placement.clone()
                }),
            })
            .collect();
        let mut node_options = options.with_slots(slots, announced.clone());
        node_options.cancel = cancel.clone();
        let client = clients.get(&share.node).cloned();
        let cancel = cancel.clone();
        async move {
            let Some(client) = client else {
                // Still one of the barrier's parties.
                node_options.all_announced().await;
                return Vec::new();
            };
            let results = client.build_all(&builds, node_options).await;
            if results.iter().any(|r| r.is_err()) {
                cancel.cancel();
            }
            mine.into_iter().zip(results).collect::<Vec<_>>()
        }
    });
    let mut by_part: BTreeMap<usize, Result<BuildResult, BuildError>> =
        join_all(runs).await.into_iter().flatten().collect();
    (0..parts.len())
        .map(|i| by_part.remove(&i).unwrap_or(Err(BuildError::Canceled)))
        .collect()
}

/// `build` for `platform` alone: its tags, image names and registry cache
/// refs suffixed with the platform.
fn platform_build(build: &Build, platform: &str) -> Build {
    let suffix = platforms::tag_suffix(platform);
    let mut part = build.clone();
    part.platforms = vec![platform.to_string()];
    part.name = Some(match &build.name {
        Some(name) => format!("{name} {platform}"),
        None => platform.to_string(),
    });
    part.tags = build.tags.iter().map(|t| suffixed(t, &suffix)).collect();
    for output in &mut part.outputs {
        if let Output::Image(image) = output {
            image.names = image.names.iter().map(|n| suffixed(n, &suffix)).collect();
        }
    }
    let (from, to) = build.cache_entries();
    part.shared_cache = None;
    part.cache_from = from
        .iter()
        .map(|e| e.with_tag_suffix(&suffix).unwrap_or_else(|| e.clone()))
        .collect();
    part.cache_to = to
        .iter()
        .map(|e| e.with_tag_suffix(&suffix).unwrap_or_else(|| e.clone()))
        .collect();
    part
}

/// `name` with `-SUFFIX` on its tag (`latest` when it has none).
fn suffixed(name: &str, suffix: &str) -> String {
    let name_start = name.rfind('/').map_or(0, |i| i + 1);
    if name[name_start..].contains(':') {
        format!("{name}-{suffix}")
    } else {
        format!("{name}:latest-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_platform_pushes_and_caches_under_its_own_tag() {
        let build = Build::new(".")
            .tag("127.0.0.1:5000/app:1")
            .tag("127.0.0.1:5000/app")
            .output(Output::registry())
            .cache("127.0.0.1:5000/app-cache");
        let part = platform_build(&build, "linux/arm64");
        assert_eq!(
            part.tags,
            [
                "127.0.0.1:5000/app:1-linux-arm64",
                "127.0.0.1:5000/app:latest-linux-arm64"
            ]
        );
        assert_eq!(part.platforms, ["linux/arm64"]);
        let refs = |e: &[crate::CacheEntry]| -> Vec<String> {
            e.iter()
                .filter_map(|e| e.reference().map(str::to_string))
                .collect()
        };
        assert_eq!(
            refs(&part.cache_from),
            ["127.0.0.1:5000/app-cache:latest-linux-arm64"]
        );
        assert_eq!(
            refs(&part.cache_to),
            ["127.0.0.1:5000/app-cache:latest-linux-arm64"]
        );
        let targets = Targets::of(&build).unwrap();
        let shown: Vec<String> = targets
            .names
            .iter()
            .map(|(r, t)| format!("{r}:{t}"))
            .collect();
        assert_eq!(shown, ["127.0.0.1:5000/app:1", "127.0.0.1:5000/app:latest"]);
    }
}
