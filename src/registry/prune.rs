//! Which cache manifests a prune deletes, what that frees, and the deletes.
//!
//! Only BuildKit cache manifests are candidates; images and other artifacts
//! are always kept. Caches are ordered newest first by their age (see
//! [`Registry::inventory`]); caches without a time sort as the oldest, so
//! `--keep N` removes them first, while `--older-than` keeps them, since
//! their age cannot be shown to exceed the limit.
//!
//! The distribution API deletes a manifest by digest, which removes every
//! tag pointing at it; so a candidate whose digest a kept tag shares, or
//! which a kept manifest references, is kept too. Reclaimable bytes are
//! those only deleted manifests reference; the registry's garbage
//! collection frees them on disk.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::RegistryError;
use super::client::Registry;
use super::inventory::{Inventory, TagEntry, TagKind, newest_first};
use super::time::Timestamp;
use crate::digest::Digest;

/// Which cache manifests a prune deletes; the plan's JSON calls it `policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneRule {
    /// Keep the N newest cache manifests.
    KeepNewest(usize),
    /// Delete cache manifests older than this.
    #[serde(serialize_with = "as_secs")]
    OlderThan(Duration),
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Why a plan keeps a tag. In JSON it is `reason`, with `kept_tag` naming
/// the kept tag for [`KeepReason::SharesDigest`] and
/// [`KeepReason::ReferencedBy`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "kept_tag", rename_all = "snake_case")]
pub enum KeepReason {
    /// Not a cache manifest.
    NotCache,
    /// Among the N newest.
    Newest,
    /// Younger than the limit.
    Newer,
    /// No creation time, and `--older-than` cannot judge it.
    NoAge,
    /// A kept tag points at the same digest.
    SharesDigest(String),
    /// A kept tag's manifest references this digest.
    ReferencedBy(String),
}

/// A tag the plan leaves in place.
#[derive(Clone, Debug, Serialize)]
pub struct Kept {
    /// The tag's name.
    pub tag: String,
    /// Cache, image or other; only caches are ever deleted.
    pub kind: TagKind,
    /// The manifest or index the tag points at.
    pub digest: Digest,
    /// The tag's age as the inventory found it; `None` when unknown.
    pub created: Option<Timestamp>,
    /// Bytes this tag references.
    pub size: u64,
    /// Why it is kept.
    #[serde(flatten)]
    pub reason: KeepReason,
}

/// One manifest to delete, with every tag that goes with it.
#[derive(Clone, Debug, Serialize)]
pub struct Deletion {
    /// The manifest to delete; deleting it removes all of `tags`.
    pub digest: Digest,
    /// Every tag that points at `digest`, sorted.
    pub tags: Vec<String>,
    /// The manifest's age as the inventory found it; `None` when unknown.
    pub created: Option<Timestamp>,
    /// Bytes this manifest references, shared or not.
    pub size: u64,
}

/// What a prune would do, computed by [`plan`] without touching the
/// registry; [`Registry::prune`] carries it out.
#[derive(Clone, Debug, Serialize)]
pub struct PrunePlan {
    /// The rule the plan was made under.
    pub policy: PruneRule,
    /// The manifests to delete, newest first.
    pub delete: Vec<Deletion>,
    /// Every tag that stays, with its reason, sorted by tag.
    pub keep: Vec<Kept>,
    /// Digests only deleted manifests reference.
    pub reclaim_objects: usize,
    /// The size of those digests: what the registry's garbage collection
    /// can free after the deletes.
    pub reclaim_bytes: u64,
}

/// The plan for `inventory` under `policy` at time `now`; nothing deleted.
pub fn plan(inventory: &Inventory, policy: PruneRule, now: Timestamp) -> PrunePlan {
    let mut caches: Vec<&TagEntry> = inventory
        .tags
        .iter()
        .filter(|t| t.kind == TagKind::Cache)
        .collect();
    caches.sort_by(|a, b| newest_first(a, b));
    let mut kept: Vec<(&TagEntry, KeepReason)> = inventory
        .tags
        .iter()
        .filter(|t| t.kind != TagKind::Cache)
        .map(|t| (t, KeepReason::NotCache))
        .collect();
    let mut candidates = Vec::new();
    for (i, entry) in caches.into_iter().enumerate() {
        match select(policy, i, entry, now) {
            Some(reason) => kept.push((entry, reason)),
            None => candidates.push(entry),
        }
    }
    protect_kept_references(&mut kept, &mut candidates);
    finish(inventory, policy, kept, candidates)
}

/// Why the `i`th newest cache is kept, or `None` to delete it.
fn select(policy: PruneRule, i: usize, entry: &TagEntry, now: Timestamp) -> Option<KeepReason> {
    match policy {
        PruneRule::KeepNewest(n) => (i < n).then_some(KeepReason::Newest),
        PruneRule::OlderThan(limit) => match entry.created {
            None => Some(KeepReason::NoAge),
            Some(t) if t >= now.minus(limit) => Some(KeepReason::Newer),
            Some(_) => None,
        },
    }
}

/// Moves candidates a kept tag needs into the kept set, until none does:
/// keeping one can protect another (an index referencing a manifest).
fn protect_kept_references<'a>(
    kept: &mut Vec<(&'a TagEntry, KeepReason)>,
    candidates: &mut Vec<&'a TagEntry>,
) {
    loop {
        let mut needed_by: BTreeMap<&Digest, &str> = BTreeMap::new();
        for (entry, _) in kept.iter() {
            for d in &entry.refs {
                needed_by.entry(d).or_insert(&entry.tag);
            }
        }
        let roots: BTreeMap<&Digest, &str> = kept
            .iter()
            .map(|(e, _)| (&e.digest, e.tag.as_str()))
            .collect();
        let (protected, rest): (Vec<&TagEntry>, Vec<&TagEntry>) = candidates
            .iter()
            .partition(|c| needed_by.contains_key(&c.digest));
        if protected.is_empty() {
            return;
        }
        for entry in protected {
            let reason = match roots.get(&entry.digest) {
                Some(tag) => KeepReason::SharesDigest(tag.to_string()),
                None => KeepReason::ReferencedBy(needed_by[&entry.digest].to_string()),
            };
            kept.push((entry, reason));
        }
        *candidates = rest;
    }
}

fn finish(
    inventory: &Inventory,
    policy: PruneRule,
    kept: Vec<(&TagEntry, KeepReason)>,
    candidates: Vec<&TagEntry>,
) -> PrunePlan {
    let kept_refs: BTreeSet<&Digest> = kept.iter().flat_map(|(e, _)| &e.refs).collect();
    let mut by_digest: BTreeMap<&Digest, Vec<&TagEntry>> = BTreeMap::new();
    for entry in &candidates {
        by_digest.entry(&entry.digest).or_default().push(entry);
    }
    let mut delete: Vec<Deletion> = by_digest
        .into_values()
        .map(|entries| Deletion {
            digest: entries[0].digest.clone(),
            tags: entries.iter().map(|e| e.tag.clone()).collect(),
            created: entries[0].created,
            size: inventory.bytes(&entries[0].refs),
        })
        .collect();
    delete.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.tags.cmp(&b.tags)));
    let freed: BTreeSet<&Digest> = candidates
        .iter()
        .flat_map(|e| &e.refs)
        .filter(|d| !kept_refs.contains(d))
        .collect();
    let mut keep: Vec<Kept> = kept
        .into_iter()
        .map(|(e, reason)| Kept {
            tag: e.tag.clone(),
            kind: e.kind,
            digest: e.digest.clone(),
            created: e.created,
            size: inventory.bytes(&e.refs),
            reason,
        })
        .collect();
    keep.sort_by(|a, b| a.tag.cmp(&b.tag));
    PrunePlan {
        policy,
        delete,
        keep,
        reclaim_objects: freed.len(),
        reclaim_bytes: inventory.bytes(freed),
    }
}

/// What `--yes` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneOutcome {
    /// Manifests the registry deleted, in plan order.
    pub deleted: Vec<Digest>,
    /// Deletes the registry refused.
    pub failed: Vec<Failure>,
}

/// One delete the registry refused; the prune went on with the others.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// The manifest that is still there.
    pub digest: Digest,
    /// The error, as text for the report.
    pub error: String,
}

impl Registry {
    /// Deletes the plan's manifests, after checking that every tag still
    /// points where the inventory saw it (a push in between could make a
    /// planned digest one a new or moved tag needs). The registry has no
    /// conditional delete, so a push during the deletes can still race.
    ///
    /// # Errors
    ///
    /// [`RegistryError::Changed`] when a tag appeared or moved since `inventory` was read
    /// (nothing is deleted); [`RegistryError::DeleteDisabled`] or [`RegistryError::Denied`]
    /// when the first delete is refused; the errors of re-reading the tags. A later failed
    /// delete is no error: it is listed in [`PruneOutcome::failed`].
    pub async fn prune(
        &self,
        inventory: &Inventory,
        plan: &PrunePlan,
    ) -> Result<PruneOutcome, RegistryError> {
        // One token for the re-read and the deletes (see `auth`).
        self.want(super::auth::DELETE);
        self.check_unchanged(inventory).await?;
        let mut outcome = PruneOutcome::default();
        for deletion in &plan.delete {
            match self.delete_manifest(&deletion.digest).await {
                Ok(()) => outcome.deleted.push(deletion.digest.clone()),
                // Nothing else will succeed either.
                Err(e @ (RegistryError::DeleteDisabled { .. } | RegistryError::Denied { .. }))
                    if outcome.deleted.is_empty() =>
                {
                    return Err(e);
                }
                Err(e) => outcome.failed.push(Failure {
                    digest: deletion.digest.clone(),
                    error: e.to_string(),
                }),
            }
        }
        Ok(outcome)
    }

    async fn check_unchanged(&self, inventory: &Inventory) -> Result<(), RegistryError> {
        let seen: BTreeMap<&str, &Digest> = inventory
            .tags
            .iter()
            .map(|t| (t.tag.as_str(), &t.digest))
            .collect();
        let now = self.tags().await?;
        if let Some(new) = now.iter().find(|t| !seen.contains_key(t.as_str())) {
            return Err(RegistryError::Changed {
                detail: format!("new tag {new}"),
            });
        }
        let digests: Vec<(String, Digest)> = futures::stream::iter(now)
            .map(|tag| async move { self.tag_digest(&tag).await.map(|d| (tag, d)) })
            .buffered(8)
            .try_collect()
            .await?;
        for (tag, digest) in digests {
            if seen.get(tag.as_str()) != Some(&&digest) {
                return Err(RegistryError::Changed {
                    detail: format!("tag {tag} now points at {}", digest.short()),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::inventory::tests::{entry, inventory};

    fn at(secs: u32) -> Timestamp {
        Timestamp::parse_rfc3339(&format!("2026-01-01T00:00:{secs:02}Z")).unwrap()
    }

    fn deleted(plan: &PrunePlan) -> Vec<&str> {
        plan.delete
            .iter()
            .flat_map(|d| d.tags.iter().map(String::as_str))
            .collect()
    }

    fn reason<'a>(plan: &'a PrunePlan, tag: &str) -> &'a KeepReason {
        &plan.keep.iter().find(|k| k.tag == tag).unwrap().reason
    }

    #[test]
    fn keep_newest_deletes_old_caches_never_images() {
        let inv = inventory(vec![
            entry("c1", "m1", TagKind::Cache, Some(1), &["base", "b1"]),
            entry("c2", "m2", TagKind::Cache, Some(2), &["base", "b2"]),
            entry("c3", "m3", TagKind::Cache, Some(3), &["base", "b3"]),
            entry("img", "m4", TagKind::Image, Some(0), &["base", "b1"]),
            entry("none", "m5", TagKind::Cache, None, &["b4"]),
        ]);
        let p = plan(&inv, PruneRule::KeepNewest(1), at(59));
        assert_eq!(deleted(&p), ["c2", "c1", "none"]);
        assert_eq!(reason(&p, "c3"), &KeepReason::Newest);
        assert_eq!(reason(&p, "img"), &KeepReason::NotCache);
        // m1 m2 m5, b2, b4; not base or b1 (the image needs them).
        assert_eq!(p.reclaim_objects, 5);
        assert_eq!(p.reclaim_bytes, 30 + 1000 + 100_000);
        let all = plan(&inv, PruneRule::KeepNewest(10), at(59));
        assert!(all.delete.is_empty());
        assert_eq!(all.reclaim_bytes, 0);
    }

    #[test]
    fn older_than_keeps_caches_without_a_time() {
        let inv = inventory(vec![
            entry("old", "m1", TagKind::Cache, Some(1), &["b1"]),
            entry("new", "m2", TagKind::Cache, Some(50), &["b2"]),
            entry("none", "m3", TagKind::Cache, None, &["b3"]),
        ]);
        let p = plan(&inv, PruneRule::OlderThan(Duration::from_secs(30)), at(59));
        assert_eq!(deleted(&p), ["old"]);
        assert_eq!(reason(&p, "new"), &KeepReason::Newer);
        assert_eq!(reason(&p, "none"), &KeepReason::NoAge);
        assert_eq!(p.reclaim_bytes, 10 + 100);
    }

    #[test]
    fn a_digest_a_kept_tag_needs_is_never_deleted() {
        let inv = inventory(vec![
            // "alias" and "c3" are one manifest: deleting alias would delete c3.
            entry("alias", "m3", TagKind::Cache, Some(1), &["b3"]),
            entry("c3", "m3", TagKind::Cache, Some(3), &["b3"]),
            // "child" is a manifest inside the kept index "idx".
            entry("child", "m1", TagKind::Cache, Some(0), &["b1"]),
            entry("idx", "m9", TagKind::Image, Some(0), &["m1", "b1"]),
            // Two stale tags on one digest: one delete, both listed.
            entry("old-a", "m2", TagKind::Cache, Some(2), &["b2"]),
            entry("old-b", "m2", TagKind::Cache, Some(2), &["b2"]),
        ]);
        let p = plan(&inv, PruneRule::KeepNewest(1), at(59));
        assert_eq!(p.delete.len(), 1);
        assert_eq!(deleted(&p), ["old-a", "old-b"]);
        assert_eq!(reason(&p, "alias"), &KeepReason::SharesDigest("c3".into()));
        assert_eq!(reason(&p, "child"), &KeepReason::ReferencedBy("idx".into()));
        let json = serde_json::to_value(&p.keep).unwrap();
        let alias = json
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["tag"] == "alias")
            .unwrap();
        assert_eq!(
            (&alias["reason"], &alias["kept_tag"]),
            (&"shares_digest".into(), &"c3".into())
        );
        assert_eq!(p.reclaim_bytes, 10 + 1000);
    }
}
