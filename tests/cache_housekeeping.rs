//! Registry cache housekeeping on the real stack: three builds export their
//! caches into one repository beside a pushed image; `cache ls` and `cache
//! du` are checked against the manifests read independently over HTTP, and
//! `cache prune --keep 1` plans without deleting, then deletes exactly the
//! two oldest caches and nothing a kept tag needs.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use serde_json::Value;
use support::registry::request;
use support::{Stack, assert_success, context, rbuild, stack, stderr, stdout, unique};

const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// What one tag references, read without rbuild: digest -> size.
struct TagRefs {
    root: String,
    sizes: BTreeMap<String, u64>,
    /// Digests among `sizes` that are manifests (an index's children).
    manifests: BTreeSet<String>,
}

fn walk_tag(registry: &str, repo: &str, tag: &str) -> TagRefs {
    let resp = request(registry, "GET", &format!("/v2/{repo}/manifests/{tag}"));
    assert_eq!(resp.status, 200, "manifest {repo}:{tag}");
    let root = resp
        .header("Docker-Content-Digest")
        .expect("digest header")
        .to_string();
    let mut sizes = BTreeMap::from([(root.clone(), resp.body.len() as u64)]);
    let mut manifests = BTreeSet::new();
    descend(registry, repo, &resp.json(), &mut sizes, &mut manifests);
    TagRefs {
        root,
        sizes,
        manifests,
    }
}

fn descend(
    registry: &str,
    repo: &str,
    manifest: &Value,
    sizes: &mut BTreeMap<String, u64>,
    manifests: &mut BTreeSet<String>,
) {
    let descriptors = manifest["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(manifest["layers"].as_array().into_iter().flatten())
        .chain(manifest.get("config"));
    for d in descriptors {
        let digest = d["digest"].as_str().expect("descriptor digest").to_string();
        sizes.insert(digest.clone(), d["size"].as_u64().expect("descriptor size"));
        if MANIFEST_TYPES.contains(&d["mediaType"].as_str().unwrap_or_default()) {
            let child = request(registry, "GET", &format!("/v2/{repo}/manifests/{digest}"));
            assert_eq!(child.status, 200, "nested manifest {digest}");
            manifests.insert(digest.clone());
            descend(registry, repo, &child.json(), sizes, manifests);
        }
    }
}

fn tags(registry: &str, repo: &str) -> Vec<String> {
    let resp = request(registry, "GET", &format!("/v2/{repo}/tags/list"));
    assert_eq!(resp.status, 200, "tags of {repo}");
    let mut tags: Vec<String> = resp.json()["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    tags.sort();
    tags
}

/// Sum of distinct digests' sizes.
fn bytes<'a>(sizes: &BTreeMap<String, u64>, digests: impl IntoIterator<Item = &'a String>) -> u64 {
    let distinct: BTreeSet<&String> = digests.into_iter().collect();
    distinct.into_iter().map(|d| sizes[d]).sum()
}

fn cache(args: &[&str]) -> Output {
    let out = rbuild()
        .arg("cache")
        .args(args)
        .output()
        .expect("rbuild runs");
    assert_success(&out);
    out
}

fn cache_json(args: &[&str]) -> Value {
    let out = cache(&[args, &["--format", "json"]].concat());
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn build(stack: &Stack, dir: &std::path::Path, extra: &[&str]) {
    let out = rbuild()
        .args([
            "build",
            "--addr",
            &stack.buildkit_host,
            "--progress",
            "quiet",
        ])
        .args(["--build-arg", &format!("BASE={}", stack.base)])
        .args(extra)
        .arg(dir)
        .output()
        .expect("rbuild runs");
    assert!(out.status.success(), "build failed: {}", stderr(&out));
}

#[test]
fn cache_ls_du_and_prune_keep_what_kept_tags_need() {
    let stack = stack();
    let id = unique("cachehk");
    let repo = format!("rbuild-test/{id}");
    let full = format!("{}/{repo}", stack.registry);
    // Three builds share the base and a first step; each adds its own layer,
    // so each cache is newer than the one before.
    let contexts: Vec<_> = (1..=3)
        .map(|i| {
            context(&[(
                "Dockerfile",
                &format!(
                    "ARG BASE\nFROM ${{BASE}}\nRUN echo common-{id} > /common\n\
                     RUN echo build{i}-{id} > /own && head -c 4096 /dev/urandom > /noise\n"
                ),
            )])
        })
        .collect();
    for (i, ctx) in contexts.iter().enumerate() {
        let to = format!("type=registry,ref={full}:build{},mode=max", i + 1);
        build(&stack, ctx.path(), &["--cache-to", &to]);
    }
    // The image is build1's: it shares every layer with the oldest cache.
    build(
        &stack,
        contexts[0].path(),
        &["-t", &format!("{full}:img"), "--push"],
    );
    let all = ["build1", "build2", "build3", "img"];
    assert_eq!(tags(&stack.registry, &repo), all);

    // ls: kinds, sizes, and caches newest first.
    let rows = cache_json(&["ls", &full]);
    let rows = rows.as_array().expect("ls rows");
    let kind_of = |tag: &str| {
        rows.iter()
            .find(|r| r["tag"] == tag)
            .map(|r| r["kind"].clone())
    };
    for tag in ["build1", "build2", "build3"] {
        assert_eq!(kind_of(tag), Some("cache".into()), "{tag}");
    }
    assert_eq!(kind_of("img"), Some("image".into()));
    assert!(
        rows.iter()
            .all(|r| r["size"].as_u64() > Some(0) && r["created"].is_string())
    );
    let cache_order: Vec<&str> = rows
        .iter()
        .filter(|r| r["kind"] == "cache")
        .filter_map(|r| r["tag"].as_str())
        .collect();
    assert_eq!(cache_order, ["build3", "build2", "build1"]);
    let text = stdout(&cache(&["ls", &full]));
    assert!(
        text.starts_with("TAG") && text.contains(" cache ") && text.contains(" image "),
        "{text}"
    );

    // du: the totals over every digest, computed here from the manifests.
    let walked: BTreeMap<&str, TagRefs> = all
        .iter()
        .map(|t| (*t, walk_tag(&stack.registry, &repo, t)))
        .collect();
    let sizes: BTreeMap<String, u64> = walked.values().flat_map(|w| w.sizes.clone()).collect();
    let mut refcount: BTreeMap<&String, usize> = BTreeMap::new();
    for w in walked.values() {
        for d in w.sizes.keys() {
            *refcount.entry(d).or_default() += 1;
        }
    }
    let shared = bytes(
        &sizes,
        refcount.iter().filter(|(_, n)| **n > 1).map(|(d, _)| *d),
    );
    let du = cache_json(&["du", &full]);
    assert_eq!(du["tags"], 4);
    assert_eq!(
        (du["cache_tags"].clone(), du["image_tags"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(du["total_bytes"], bytes(&sizes, sizes.keys()));
    assert_eq!(du["shared_bytes"], shared);
    assert_eq!(du["unique_bytes"], bytes(&sizes, sizes.keys()) - shared);
    assert_eq!(
        du["manifests"].as_u64().unwrap() + du["blobs"].as_u64().unwrap(),
        sizes.len() as u64
    );
    assert!(shared > 0, "the caches and the image share the base layers");

    // What --keep 1 may free: digests of build1/build2 no kept tag references.
    let kept_refs: BTreeSet<&String> = ["build3", "img"]
        .iter()
        .flat_map(|t| walked[t].sizes.keys())
        .collect();
    let freed: BTreeSet<&String> = ["build1", "build2"]
        .iter()
        .flat_map(|t| walked[t].sizes.keys())
        .filter(|d| !kept_refs.contains(d))
        .collect();
    let expect_reclaim = bytes(&sizes, freed.iter().copied());
    assert!(expect_reclaim > 0);

    // Dry run: the plan, and nothing deleted.
    let dry = cache_json(&["prune", &full, "--keep", "1"]);
    assert_eq!(dry["dry_run"], true);
    let planned: Vec<&str> = dry["plan"]["delete"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| {
            d["tags"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
        })
        .collect();
    assert_eq!(planned, ["build2", "build1"]);
    assert_eq!(dry["plan"]["reclaim_bytes"], expect_reclaim);
    assert!(dry["after"].is_null());
    let text = stdout(&cache(&["prune", &full, "--keep", "1"]));
    assert!(
        text.contains("Would delete 2 manifests (2 tags) and reclaim"),
        "{text}"
    );
    assert!(text.contains("garbage collection"), "{text}");
    assert_eq!(
        tags(&stack.registry, &repo),
        all,
        "a dry run deletes nothing"
    );

    // --yes: exactly the two oldest caches go.
    let done = cache_json(&["prune", &full, "--keep", "1", "--yes"]);
    let after = &done["after"];
    let deleted: BTreeSet<&str> = after["outcome"]["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expect_deleted: BTreeSet<&str> = ["build1", "build2"]
        .iter()
        .map(|t| walked[t].root.as_str())
        .collect();
    assert_eq!(deleted, expect_deleted);
    assert_eq!(after["outcome"]["failed"], serde_json::json!([]));
    assert_eq!(
        after["reclaim_bytes"], 0,
        "nothing more to reclaim under the same policy"
    );
    let before_total = done["before"]["total_bytes"].as_u64().unwrap();
    let after_total = after["usage"]["total_bytes"].as_u64().unwrap();
    assert_eq!(before_total - after_total, expect_reclaim);
    eprintln!(
        "cache prune --keep 1: reclaimable before {expect_reclaim} bytes, after {}; \
         referenced before {before_total}, after {after_total}",
        after["reclaim_bytes"]
    );

    assert_eq!(tags(&stack.registry, &repo), ["build3", "img"]);
    for tag in ["build1", "build2"] {
        let root = &walked[tag].root;
        let gone = request(
            &stack.registry,
            "GET",
            &format!("/v2/{repo}/manifests/{root}"),
        );
        assert_eq!(gone.status, 404, "{tag} ({root}) deleted");
    }
    for tag in ["build3", "img"] {
        let again = walk_tag(&stack.registry, &repo, tag);
        assert_eq!(again.root, walked[tag].root, "{tag} unchanged");
        for digest in again.sizes.keys().filter(|d| **d != again.root) {
            // An index's children (the image and its attestation manifest,
            // buildx's default provenance) are manifests, not blobs.
            let kind = if again.manifests.contains(digest) {
                "manifests"
            } else {
                "blobs"
            };
            let head = request(
                &stack.registry,
                "HEAD",
                &format!("/v2/{repo}/{kind}/{digest}"),
            );
            assert_eq!(head.status, 200, "{tag} still has {digest}");
        }
    }
    let du = cache_json(&["du", &full]);
    assert_eq!(du["total_bytes"], after_total);
    let again = cache_json(&["prune", &full, "--keep", "1"]);
    assert_eq!(again["plan"]["delete"], serde_json::json!([]));
}
