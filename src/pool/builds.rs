//! `Pool::build_with` and `Pool::build_all`: each build placed on a node by
//! its routing key, then run there with `Client::build_with`/`build_all`.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::{Placement, Pool, PoolError, route};
use crate::buildspec::Build;
use crate::client::{BuildOptions, Client, Slot};
use crate::outcome::{BuildError, BuildResult};

/// One build's outcome in a pool: where it ran, and how it went.
#[derive(Debug)]
pub struct Placed {
    /// The node that took it; `None` when no node could.
    pub placement: Option<Placement>,
    /// The build's result; [`BuildError::NoNode`] when no node took it.
    pub result: Result<BuildResult, BuildError>,
    /// For a multi-platform build split over several nodes, each node's
    /// part (its [`Placement::platforms`]), the first also in `placement`;
    /// empty when one node built it all.
    pub shares: Vec<Placement>,
    /// The event build numbers its progress came under ([`Event::build`]):
    /// its own, or one per platform of a split build; empty when nothing
    /// ran.
    ///
    /// [`Event::build`]: crate::progress::Event::build
    pub progress: Vec<usize>,
}

impl Placed {
    /// Every node that built part of it: the shares, or the one placement.
    pub fn placements(&self) -> Vec<&Placement> {
        if self.shares.is_empty() {
            self.placement.iter().collect()
        } else {
            self.shares.iter().collect()
        }
    }
}

impl Pool {
    /// Runs one build on the node its routing key picks. Progress says
    /// which node builds and which were skipped (a pool of one says
    /// nothing: it is that daemon alone).
    ///
    /// A build for several platforms on a pool whose nodes build different
    /// ones is split: each platform is built on a node that builds it
    /// natively, and the index joining them is published under its tags
    /// (see [`Placed::shares`]).
    pub async fn build_with(&self, build: &Build, options: BuildOptions) -> Placed {
        let key = route::route_key(build);
        let unplaced = |e| Placed {
            placement: None,
            result: Err(BuildError::NoNode(Box::new(e))),
            shares: Vec::new(),
            progress: Vec::new(),
        };
        if !self.is_single() && build.platforms.len() > 1 {
            match self.platform_shares(&key, build).await {
                Ok(Some(shares)) => return self.build_across(build, &options, shares).await,
                Ok(None) => {}
                Err(e) => return unplaced(e),
            }
        }
        let (client, placement) = match self.place(&key).await {
            Ok(placed) => placed,
            Err(e) => return unplaced(e),
        };
        let options = options.with_slots(
            vec![Slot {
                index: 0,
                placement: (!self.is_single()).then(|| placement.clone()),
            }],
            None,
        );
        let result = client.build_with(build, options).await;
        Placed {
            placement: Some(placement),
            result,
            shares: Vec::new(),
            progress: vec![0],
        }
    }

    /// Runs several builds, each on the node its routing key picks, every
    /// node's share concurrently in one `Client::build_all` (so builds on
    /// one node share its connection and context uploads). Builds joined by
    /// [`Build::named_context_from`] run on one node: the first one's key
    /// places them all. Results come back in the given order.
    ///
    /// A multi-platform build that no other build of the call is joined to
    /// is split over the nodes as [`Pool::build_with`] splits one; its
    /// parts' progress comes under numbers past the list ([`Placed::progress`]).
    pub async fn build_all(&self, builds: &[Build], options: BuildOptions) -> Vec<Placed> {
        let options = &options;
        let groups = dependency_groups(builds);
        let mut on_node: BTreeMap<String, (Client, Vec<(usize, Placement)>)> = BTreeMap::new();
        let mut unplaced: BTreeMap<usize, PoolError> = BTreeMap::new();
        let mut out: BTreeMap<usize, Placed> = BTreeMap::new();
        let mut splits = Vec::new();
        for group in &groups {
            let key = route::route_key(&builds[group[0]]);
            if let [i] = group[..]
                && !self.is_single()
                && builds[i].platforms.len() > 1
            {
                match self.platform_shares(&key, &builds[i]).await {
                    Ok(Some(shares)) => {
                        match self.prepare_split(&builds[i], shares).await {
                            Ok(split) => splits.push((i, split)),
                            Err(placed) => {
                                out.insert(i, placed);
                            }
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        unplaced.insert(i, e);
                        continue;
                    }
                }
            }
            match self.place(&key).await {
                Ok((client, placement)) => {
                    let entry = on_node
                        .entry(placement.node.clone())
                        .or_insert_with(|| (client, Vec::new()));
                    entry
                        .1
                        .extend(group.iter().map(|&i| (i, placement.clone())));
                }
                Err(e) => {
                    for &i in &group[1..] {
                        unplaced.insert(i, copy_error(&e));
                    }
                    unplaced.insert(group[0], e);
                }
            }
        }
        let single = self.is_single();
        // One party per Client::build_all call: each node's share, and each
        // node of each split build.
        let parties = on_node.len() + splits.iter().map(|(_, s)| s.parties()).sum::<usize>();
        let announced =
            (parties > 1).then(|| std::sync::Arc::new(tokio::sync::Barrier::new(parties)));
        let mut slot_base = builds.len();
        let split_runs: Vec<_> = splits
            .into_iter()
            .map(|(i, split)| {
                let base = slot_base;
                slot_base += split.slots();
                let announced = announced.clone();
                async move {
                    let placed = self
                        .run_split(&builds[i], options, split, base, announced)
                        .await;
                    (i, placed)
                }
            })
            .collect();
        let runs = on_node.into_values().map(|(client, mut members)| {
            members.sort_by_key(|(i, _)| *i);
            let positions: BTreeMap<usize, usize> = members
                .iter()
                .enumerate()
                .map(|(pos, (i, _))| (*i, pos))
                .collect();
            let share: Vec<Build> = members
                .iter()
                .map(|(i, _)| renumbered(&builds[*i], &positions))
                .collect();
            let slots = members
                .iter()
                .map(|(i, p)| Slot {
                    index: *i,
                    placement: (!single).then(|| p.clone()),
                })
                .collect();
            let options = options.with_slots(slots, announced.clone());
            async move {
                let results = client.build_all(&share, options).await;
                let originals: Vec<usize> = members.iter().map(|(i, _)| *i).collect();
                members
                    .into_iter()
                    .zip(results)
                    .map(|((i, p), r)| (i, p, r.map_err(|e| original_index(e, &originals))))
                    .collect::<Vec<_>>()
            }
        });
        let (on_nodes, split) = futures::join!(join_all(runs), join_all(split_runs));
        for (i, placement, result) in on_nodes.into_iter().flatten() {
            let placement = Some(placement);
            out.insert(
                i,
                Placed {
                    placement,
                    result,
                    shares: Vec::new(),
                    progress: vec![i],
                },
            );
        }
        out.extend(split);
        for (i, e) in unplaced {
            let result = Err(BuildError::NoNode(Box::new(e)));
            out.insert(
                i,
                Placed {
                    placement: None,
                    result,
                    shares: Vec::new(),
                    progress: Vec::new(),
                },
            );
        }
        out.into_values().collect()
    }
}

/// Builds joined by named contexts on other builds, each group in index
/// order and the groups by their first index.
fn dependency_groups(builds: &[Build]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..builds.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, b) in builds.iter().enumerate() {
        for &j in b.context_builds.values() {
            if j < builds.len() {
                let (a, c) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(c)] = a.min(c);
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..builds.len() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}

/// `build` with its named-context dependencies pointing at positions in a
/// node's share instead of the caller's list. Every valid dependency is in
/// the share (groups keep them together); an index past the caller's list
/// is past the share too, and stays as it is for the node's `build_all` to
/// report.
fn renumbered(build: &Build, positions: &BTreeMap<usize, usize>) -> Build {
    let mut b = build.clone();
    for index in b.context_builds.values_mut() {
        *index = positions.get(index).copied().unwrap_or(*index);
    }
    b
}

/// A node's dependency error names the position in its share; the caller
/// knows the build by its own index.
fn original_index(e: BuildError, originals: &[usize]) -> BuildError {
    match e {
        BuildError::Dependency {
            name,
            index,
            reason,
        } => BuildError::Dependency {
            name,
            index: originals.get(index).copied().unwrap_or(index),
            reason,
        },
        e => e,
    }
}

/// The same placement failure for each member of a group.
fn copy_error(e: &PoolError) -> PoolError {
    match e {
        PoolError::NoNode { key, skipped } => PoolError::NoNode {
            key: key.clone(),
            skipped: skipped.clone(),
        },
        other => PoolError::Repeated(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_joined_by_named_contexts_form_one_group() {
        let b = |n: &str| Build::new(".").named(n);
        let builds = vec![
            b("base"),
            b("other"),
            b("app").named_context_from("base", 0),
            b("tests").named_context_from("app", 2),
        ];
        assert_eq!(dependency_groups(&builds), vec![vec![0, 2, 3], vec![1]]);
        let positions: BTreeMap<usize, usize> = [(0, 0), (2, 1), (3, 2)].into();
        let r = renumbered(&builds[3], &positions);
        assert_eq!(r.context_builds.get("app"), Some(&1));
    }
}
