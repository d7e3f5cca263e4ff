//! Every tag of a repository with everything it keeps alive: the manifest
//! itself, nested manifests, configs and layers, each counted once per
//! digest. Sizes come from descriptors (the registry checked them on push);
//! a root manifest's size is its body length.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::RegistryError;
use super::client::{Fetched, Registry};
use super::manifest::{Manifest, cache_config_created, image_config_created, is_manifest_type};
use super::reference::ManifestRef;
use super::time::Timestamp;
use crate::digest::Digest;

/// Tags read at once: enough to hide latency, few enough to be polite.
const CONCURRENCY: usize = 8;
/// Configs are JSON; a cache config with many records stays far below.
const CONFIG_LIMIT: usize = 32 << 20;
/// An index of manifests is depth 1; OCI allows an index in an index, once
/// more is plenty, and a bound keeps a hostile registry from looping us.
const MAX_DEPTH: usize = 3;

/// What a tag points at, which decides whether prune may touch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TagKind {
    /// A BuildKit registry cache (index or `image-manifest=true` form).
    Cache,
    /// A runnable image (manifest or index of manifests).
    Image,
    /// Anything else (an artifact); never pruned.
    Other,
}

impl TagKind {
    /// The lowercase name used in tables and JSON: `cache`, `image`, `other`.
    pub fn as_str(&self) -> &'static str {
        match self {
            TagKind::Cache => "cache",
            TagKind::Image => "image",
            TagKind::Other => "other",
        }
    }
}

/// One tag as [`Registry::inventory`] read it.
#[derive(Clone, Debug)]
pub struct TagEntry {
    /// The tag's name, without the repository.
    pub tag: String,
    /// The root manifest or index the tag points at.
    pub digest: Digest,
    /// Cache, image or other, from the root and what it references.
    pub kind: TagKind,
    /// Newest creation time found (see [`Registry::inventory`]).
    pub created: Option<Timestamp>,
    /// Every digest this tag keeps alive, its own included.
    pub refs: BTreeSet<Digest>,
}

/// One piece of content a tag keeps alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object {
    /// Bytes: a descriptor's stated size, or a fetched manifest's body length.
    pub size: u64,
    /// A manifest or index, as opposed to a layer or config blob.
    pub manifest: bool,
}

/// A repository's tags and the content they reference, as read at one time.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    /// Every tag that could be read, in the order the registry listed them
    /// (tags deleted while reading are left out).
    pub tags: Vec<TagEntry>,
    /// Every digest any tag references, once each.
    pub objects: BTreeMap<Digest, Object>,
}

/// One `ls` row.
#[derive(Clone, Debug, Serialize)]
pub struct TagUsage {
    /// The tag's name.
    pub tag: String,
    /// Cache, image or other.
    pub kind: TagKind,
    /// The root manifest or index the tag points at.
    pub digest: Digest,
    /// Bytes of every digest the tag references.
    pub size: u64,
    /// The part of `size` other tags reference too.
    pub shared: u64,
    /// Newest creation time found; `None` when the content states none.
    pub created: Option<Timestamp>,
    /// Whole seconds from `created` to the `now` passed to
    /// [`Inventory::tag_usage`]; `None` without `created`.
    pub age_secs: Option<u64>,
}

/// `du` totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// All tags of the repository.
    pub tags: usize,
    /// Tags of kind [`TagKind::Cache`].
    pub cache_tags: usize,
    /// Tags of kind [`TagKind::Image`].
    pub image_tags: usize,
    /// Tags of kind [`TagKind::Other`].
    pub other_tags: usize,
    /// Distinct manifests and indexes, nested ones included.
    pub manifests: usize,
    /// Distinct layer and config blobs.
    pub blobs: usize,
    /// Every distinct digest once.
    pub total_bytes: u64,
    /// Referenced by more than one tag.
    pub shared_bytes: u64,
    /// Referenced by exactly one tag: freed if that tag went.
    pub unique_bytes: u64,
}

/// Newest first; tags without a time last, then by name, so prune and ls
/// agree on one order.
pub(super) fn newest_first(a: &TagEntry, b: &TagEntry) -> Ordering {
    match (a.created, b.created) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.tag.cmp(&b.tag))
}

impl Inventory {
    /// How many tags reference each digest.
    fn ref_counts(&self) -> BTreeMap<&Digest, usize> {
        let mut counts = BTreeMap::new();
        for entry in &self.tags {
            for d in &entry.refs {
                *counts.entry(d).or_insert(0) += 1;
            }
        }
        counts
    }

    /// The summed size of distinct digests.
    pub fn bytes<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> u64 {
        let distinct: BTreeSet<&Digest> = digests.into_iter().collect();
        distinct
            .into_iter()
            .filter_map(|d| self.objects.get(d))
            .map(|o| o.size)
            .sum()
    }

    /// One row per tag, newest first.
    pub fn tag_usage(&self, now: Timestamp) -> Vec<TagUsage> {
        let counts = self.ref_counts();
        let mut entries: Vec<&TagEntry> = self.tags.iter().collect();
        entries.sort_by(|a, b| newest_first(a, b));
        entries
            .into_iter()
            .map(|e| TagUsage {
                tag: e.tag.clone(),
                kind: e.kind,
                digest: e.digest.clone(),
                size: self.bytes(&e.refs),
                shared: self.bytes(
                    e.refs
                        .iter()
                        .filter(|d| counts.get(d).copied().unwrap_or(0) > 1),
                ),
                created: e.created,
                age_secs: e.created.map(|c| c.age(now).as_secs()),
            })
            .collect()
    }

    /// The repository's totals, each digest counted once however many tags
    /// reference it.
    pub fn usage(&self) -> Usage {
        let counts = self.ref_counts();
        let count_kind = |k: TagKind| self.tags.iter().filter(|t| t.kind == k).count();
        let mut usage = Usage {
            tags: self.tags.len(),
            cache_tags: count_kind(TagKind::Cache),
            image_tags: count_kind(TagKind::Image),
            other_tags: count_kind(TagKind::Other),
            ..Usage::default()
        };
        for (digest, n) in counts {
            let Some(object) = self.objects.get(digest) else {
                continue;
            };
            if object.manifest {
                usage.manifests += 1;
            } else {
                usage.blobs += 1;
            }
            usage.total_bytes += object.size;
            if n > 1 {
                usage.shared_bytes += object.size;
            } else {
                usage.unique_bytes += object.size;
            }
        }
        usage
    }
}

/// Reads a creation time out of a config blob.
type ReadCreated = fn(&[u8]) -> Option<Timestamp>;

/// What one tag's walk found.
struct Scan {
    entry: TagEntry,
    objects: Vec<(Digest, Object)>,
}

impl Registry {
    /// Reads every tag: its manifest tree, sizes, kind and age. The age of a
    /// cache is its newest layer's `buildkit/createdat` (else the newest
    /// `createdAt` in its cache config); of an image, its config's
    /// `created` (the newest over an index's images). The registry records
    /// no push time, so a re-export of unchanged layers keeps the old age.
    ///
    /// # Errors
    ///
    /// The first error of reading a tag or its manifests and configs:
    /// [`RegistryError::Unreachable`], [`RegistryError::Timeout`],
    /// [`RegistryError::Connection`] or [`RegistryError::Tls`] when the registry cannot be
    /// reached; [`RegistryError::Denied`] when it refuses the request (no or wrong
    /// credentials); [`RegistryError::Status`] for another error status;
    /// [`RegistryError::BadResponse`] when its answer breaks the protocol.
    pub async fn inventory(&self) -> Result<Inventory, RegistryError> {
        let tags = self.tags().await?;
        let scans: Vec<Option<Scan>> = futures::stream::iter(tags)
            .map(|tag| self.scan_tag(tag))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut inventory = Inventory::default();
        for scan in scans.into_iter().flatten() {
            inventory.objects.extend(scan.objects);
            inventory.tags.push(scan.entry);
        }
        Ok(inventory)
    }

    async fn scan_tag(&self, tag: String) -> Result<Option<Scan>, RegistryError> {
        let root = match self.manifest(ManifestRef::Tag(&tag)).await {
            Ok(root) => root,
            // Deleted between listing and reading: not there any more.
            Err(RegistryError::NotFound { .. }) => {
                tracing::debug!(%tag, "tag vanished while listing");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let is_cache = root.manifest.is_cache();
        let digest = root.digest.clone();
        let (objects, created, image) = self.walk(&tag, root).await?;
        let kind = match (is_cache, image) {
            (true, _) => TagKind::Cache,
            (false, true) => TagKind::Image,
            (false, false) => TagKind::Other,
        };
        let refs = objects.iter().map(|(d, _)| d.clone()).collect();
        let entry = TagEntry {
            tag,
            digest,
            kind,
            created,
            refs,
        };
        Ok(Some(Scan { entry, objects }))
    }

    /// Every object under `root` (itself included), the newest creation
    /// time found, and whether any manifest in it is a runnable image's.
    async fn walk(
        &self,
        tag: &str,
        root: Fetched,
    ) -> Result<(Vec<(Digest, Object)>, Option<Timestamp>, bool), RegistryError> {
        let mut objects = Vec::new();
        let mut created = None;
        let mut image = false;
        let mut pending = vec![(root, 0usize)];
        while let Some((fetched, depth)) = pending.pop() {
            let object = Object {
                size: fetched.size,
                manifest: true,
            };
            objects.push((fetched.digest.clone(), object));
            created = created.max(self.created(&fetched.manifest).await?);
            image |= fetched.manifest.image_config().is_some();
            for d in fetched.manifest.references() {
                if !is_manifest_type(&d.media_type) {
                    objects.push((
                        d.digest.clone(),
                        Object {
                            size: d.size,
                            manifest: false,
                        },
                    ));
                    continue;
                }
                if depth + 1 >= MAX_DEPTH {
                    return Err(self.nested_too_deep(tag));
                }
                let child = self.manifest(ManifestRef::Digest(&d.digest)).await?;
                pending.push((child, depth + 1));
            }
        }
        Ok((objects, created, image))
    }

    /// One manifest's own creation time: annotations first, then the cache
    /// config or image config blob it names.
    async fn created(&self, manifest: &Manifest) -> Result<Option<Timestamp>, RegistryError> {
        if let Some(t) = manifest.newest_annotated() {
            return Ok(Some(t));
        }
        let (config, read): (_, ReadCreated) =
            match (manifest.cache_config(), manifest.image_config()) {
                (Some(c), _) => (c, cache_config_created),
                (None, Some(c)) => (c, image_config_created),
                (None, None) => return Ok(None),
            };
        match self.blob(&config.digest, CONFIG_LIMIT).await {
            Ok(body) => Ok(read(&body)),
            Err(RegistryError::NotFound { .. }) => {
                tracing::warn!(digest = %config.digest, "config blob missing: no age");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn nested_too_deep(&self, tag: &str) -> RegistryError {
        RegistryError::BadResponse {
            host: self.repository().host().to_string(),
            what: format!("reading {}:{tag}", self.repository()),
            detail: format!("indexes nested more than {MAX_DEPTH} deep"),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn digest(s: &str) -> Digest {
        Digest::try_from(format!("sha256:{s}")).unwrap()
    }

    pub fn entry(
        tag: &str,
        root: &str,
        kind: TagKind,
        secs: Option<u32>,
        refs: &[&str],
    ) -> TagEntry {
        TagEntry {
            tag: tag.into(),
            digest: digest(root),
            kind,
            created: secs
                .and_then(|s| Timestamp::parse_rfc3339(&format!("2026-01-01T00:00:{s:02}Z"))),
            refs: std::iter::once(root)
                .chain(refs.iter().copied())
                .map(digest)
                .collect(),
        }
    }

    /// Objects `m*` are manifests of 10 bytes; others blobs of 100, 1000, …
    /// by name (`b1` = 100, `b2` = 1000, `b3` = 10000, `base` = 1_000_000).
    pub fn inventory(tags: Vec<TagEntry>) -> Inventory {
        let mut objects = BTreeMap::new();
        for d in tags.iter().flat_map(|t| t.refs.iter()) {
            let name = d.as_str().trim_start_matches("sha256:");
            let object = match name {
                "base" => Object {
                    size: 1_000_000,
                    manifest: false,
                },
                n if n.starts_with('m') => Object {
                    size: 10,
                    manifest: true,
                },
                n => {
                    let k: u32 = n.trim_start_matches('b').parse().unwrap_or(1);
                    Object {
                        size: 10u64.pow(k + 1),
                        manifest: false,
                    }
                }
            };
            objects.insert(d.clone(), object);
        }
        Inventory { tags, objects }
    }

    #[test]
    fn usage_counts_each_digest_once() {
        let inv = inventory(vec![
            entry("c1", "m1", TagKind::Cache, Some(1), &["base", "b1"]),
            entry("c2", "m2", TagKind::Cache, Some(2), &["base", "b2"]),
            entry("img", "m3", TagKind::Image, Some(3), &["base", "b1", "b3"]),
        ]);
        let u = inv.usage();
        assert_eq!(
            (u.tags, u.cache_tags, u.image_tags, u.other_tags),
            (3, 2, 1, 0)
        );
        assert_eq!((u.manifests, u.blobs), (3, 4));
        assert_eq!(u.total_bytes, 30 + 1_000_000 + 100 + 1000 + 10_000);
        assert_eq!(u.shared_bytes, 1_000_100);
        assert_eq!(u.unique_bytes, u.total_bytes - u.shared_bytes);
        let now = Timestamp::parse_rfc3339("2026-01-01T00:01:00Z").unwrap();
        let rows = inv.tag_usage(now);
        let names: Vec<&str> = rows.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(names, ["img", "c2", "c1"], "newest first");
        assert_eq!(
            (rows[2].size, rows[2].shared, rows[2].age_secs),
            (1_000_110, 1_000_100, Some(59))
        );
    }

    #[test]
    fn tags_without_a_time_sort_last() {
        let a = entry("a", "m1", TagKind::Cache, None, &[]);
        let b = entry("b", "m2", TagKind::Cache, Some(1), &[]);
        let c = entry("c", "m3", TagKind::Cache, None, &[]);
        let mut v = [&c, &a, &b];
        v.sort_by(|x, y| newest_first(x, y));
        assert_eq!(v.map(|e| e.tag.as_str()), ["b", "a", "c"]);
    }
}
