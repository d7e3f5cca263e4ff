//! The Docker Engine client against the stack's real engine (containerd
//! image store): load a tarball streamed through a channel, inspect, tag,
//! find by config digest, remove.
//!
//! Each run builds its own one-layer image with unique content, so it never
//! touches images other tests use, and removes only what it created. The
//! build cache is shared with other tests and is never pruned here.

mod support;

use bytes::Bytes;
use rbuild::docker_api::{Engine, EngineError};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// A docker-format tarball laid out as BuildKit's docker exporter writes it:
/// OCI layout blobs plus `index.json` and `manifest.json`.
struct TestImage {
    tar: Vec<u8>,
    manifest_digest: String,
    config_digest: String,
}

fn sha256(data: &[u8]) -> String {
    let hex: String = Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Now as RFC 3339, as BuildKit stamps `created`: the engine lists images
/// by it, and the lookup tries the newest first.
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    // Howard Hinnant's days-to-civil algorithm.
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// A ustar archive of regular files, entries in the given order.
fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, contents) in files {
        let mut block = vec![0u8; 512];
        block[..name.len()].copy_from_slice(name.as_bytes());
        block[100..107].copy_from_slice(b"0000644");
        block[108..115].copy_from_slice(b"0000000");
        block[116..123].copy_from_slice(b"0000000");
        block[124..135].copy_from_slice(format!("{:011o}", contents.len()).as_bytes());
        block[136..147].copy_from_slice(b"00000000000");
        block[156] = b'0';
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend(block);
        out.extend_from_slice(contents);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

impl TestImage {
    fn new(name: &str) -> TestImage {
        let (repo, tag) = name.rsplit_once(':').expect("name has a tag");
        let layer = tar(&[(
            "rbuild-engine-marker".to_string(),
            format!("{name}\n").into_bytes(),
        )]);
        let layer_digest = sha256(&layer);
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let config = serde_json::json!({
            "architecture": arch,
            "os": "linux",
            "config": { "Cmd": ["/rbuild-engine-marker"] },
            "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
            "created": rfc3339_now(),
            "history": [{ "created_by": "rbuild tests/engine.rs" }],
        })
        .to_string()
        .into_bytes();
        let config_digest = sha256(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer.len(),
            }],
        })
        .to_string()
        .into_bytes();
        let manifest_digest = sha256(&manifest);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest.len(),
                "annotations": {
                    "io.containerd.image.name": format!("docker.io/{repo}:{tag}"),
                    "org.opencontainers.image.ref.name": tag,
                },
            }],
        });
        let docker_manifest = serde_json::json!([{
            "Config": blob_path(&config_digest),
            "RepoTags": [name],
            "Layers": [blob_path(&layer_digest)],
        }]);
        let mut files = vec![
            (blob_path(&config_digest), config),
            (blob_path(&layer_digest), layer),
            (blob_path(&manifest_digest), manifest),
        ];
        files.sort();
        files.push(("index.json".into(), index.to_string().into_bytes()));
        files.push((
            "manifest.json".into(),
            docker_manifest.to_string().into_bytes(),
        ));
        files.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        TestImage {
            tar: tar(&files),
            manifest_digest,
            config_digest,
        }
    }
}

/// Feeds `data` to `Engine::load` through a small channel in small chunks,
/// as an exporter stream would.
async fn load(engine: &Engine, data: &[u8]) -> Result<Vec<String>, EngineError> {
    let (tx, rx) = mpsc::channel(2);
    let data = data.to_vec();
    let producer = tokio::spawn(async move {
        for chunk in data.chunks(1000) {
            if tx.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                break;
            }
        }
    });
    let result = engine.load(rx).await;
    producer.await.expect("producer task");
    result
}

/// Removes the names (and ids) this test created, also when it fails.
struct Cleanup {
    engine: Engine,
    references: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let references = std::mem::take(&mut self.references);
        // Drop cannot await; a thread with its own runtime can.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            for reference in references {
                let _ = runtime.block_on(engine.remove_image(&reference, true));
            }
        })
        .join();
    }
}

fn engine() -> Engine {
    Engine::new(support::stack().engine_socket)
}

#[tokio::test]
async fn load_tag_find_and_remove_an_image() {
    let engine = engine();
    engine.ping().await.expect("the engine answers /_ping");

    let repo = format!("rbuild-test/{}", support::unique("engine"));
    let src = format!("{repo}:src");
    let t1 = format!("{repo}:t1");
    let t2 = format!("127.0.0.1:5000/{repo}:t2");
    let image = TestImage::new(&src);
    let mut cleanup = Cleanup {
        engine: engine.clone(),
        references: vec![src.clone(), t1.clone(), t2.clone()],
    };
    assert_eq!(engine.image_id(&src).await.unwrap(), None);

    let loaded = load(&engine, &image.tar).await.expect("load succeeds");
    assert!(loaded.iter().any(|n| n.contains(&repo)), "{loaded:?}");
    let id = engine
        .image_id(&src)
        .await
        .unwrap()
        .expect("the loaded image inspects");
    cleanup.references.push(id.clone());
    eprintln!(
        "loaded {loaded:?}: Id {id}; manifest {}; config {}",
        image.manifest_digest, image.config_digest
    );
    // The containerd store names an image by its target (here the
    // manifest); the classic store by its config.
    assert!(
        id == image.manifest_digest || id == image.config_digest,
        "Id {id} is neither the manifest nor the config digest"
    );

    engine.tag(&id, &t1).await.expect("tag by id");
    engine
        .tag(&src, &t2)
        .await
        .expect("tag with a registry port");
    for name in [&t1, &t2] {
        assert_eq!(engine.image_id(name).await.unwrap().as_ref(), Some(&id));
    }
    let listed = engine.list_images().await.unwrap();
    let entry = listed.iter().find(|i| i.id == id).expect("listed");
    for name in [&src, &t1, &t2] {
        assert!(entry.repo_tags.contains(name), "{name} in {entry:?}");
    }

    let started = std::time::Instant::now();
    let found = engine
        .find_by_config_digest(&image.config_digest)
        .await
        .expect("lookup by config digest");
    eprintln!("found by config digest in {:?}", started.elapsed());
    assert_eq!(found.as_ref(), Some(&id));

    for name in [&src, &t1, &t2] {
        engine
            .remove_image(name, false)
            .await
            .expect("remove a name");
        assert_eq!(engine.image_id(name).await.unwrap(), None);
    }
    engine.remove_image(&id, true).await.expect("remove by id");
    assert_eq!(engine.image_id(&id).await.unwrap(), None);
    engine
        .remove_image(&src, false)
        .await
        .expect("removing an absent image is fine");
    // A miss exports every image in the engine: the slow case.
    let started = std::time::Instant::now();
    let found = engine
        .find_by_config_digest(&image.config_digest)
        .await
        .unwrap();
    assert_eq!(found, None, "gone images are not found");
    let images = engine.list_images().await.unwrap().len();
    eprintln!("a miss among {images} images took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_truncated_tarball_fails_the_load_with_the_engine_reason() {
    let engine = engine();
    let repo = format!("rbuild-test/{}", support::unique("engine-cut"));
    let src = format!("{repo}:src");
    let image = TestImage::new(&src);
    let _cleanup = Cleanup {
        engine: engine.clone(),
        references: vec![src.clone()],
    };
    let err = load(&engine, &image.tar[..image.tar.len() / 3])
        .await
        .expect_err("a short tarball must not load");
    assert!(matches!(err, EngineError::Reported { .. }), "{err:?}");
    eprintln!("{err}");
    assert_eq!(engine.image_id(&src).await.unwrap(), None);
}

#[tokio::test]
async fn engine_errors_carry_its_message() {
    let engine = engine();
    let err = engine.image_id("Not A Valid Name").await.unwrap_err();
    match &err {
        EngineError::Status {
            status, message, ..
        } => {
            assert_eq!(*status, 400, "{err}");
            assert!(message.contains("invalid reference format"), "{err}");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    let err = engine
        .find_by_config_digest("sha256:short")
        .await
        .unwrap_err();
    assert!(
        matches!(err, EngineError::InvalidReference { .. }),
        "{err:?}"
    );
}
