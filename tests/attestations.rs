//! Attestations as buildx makes them: a minimal provenance by default on
//! every pushed image, off with `--provenance=false` or
//! `BUILDX_NO_DEFAULT_ATTESTATIONS=1`, and an SBOM from a scanner image
//! (built here from the stack's busybox, since no public scanner image is
//! reachable).

mod support;

use support::registry::{blob, request};
use support::{Stack, assert_success, build_cmd, context, stack, stderr, unique};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The raw manifest or index at `image` (`REGISTRY/REPO:TAG`).
fn top_level(stack: &Stack, image: &str) -> serde_json::Value {
    let rest = image.strip_prefix(&format!("{}/", stack.registry)).unwrap();
    let (repo, tag) = rest.rsplit_once(':').unwrap();
    let resp = request(
        &stack.registry,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
    );
    assert_eq!(resp.status, 200, "{image}: HTTP {}", resp.status);
    resp.json()
}

/// The index entry of the linux/amd64 image.
fn amd64_entry(index: &serde_json::Value) -> &serde_json::Value {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .unwrap_or_else(|| panic!("no amd64 image in {index}"))
}

/// The in-toto statements of the attestation manifest in `index`, by
/// predicate type.
fn statements(
    stack: &Stack,
    image: &str,
    index: &serde_json::Value,
) -> Vec<(String, serde_json::Value)> {
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .unwrap_or_else(|| panic!("no attestation-manifest entry: {index}"));
    let image_entry = amd64_entry(index);
    assert_eq!(
        entry["annotations"]["vnd.docker.reference.digest"], image_entry["digest"],
        "the attestation names the image it is about"
    );
    let rest = image.strip_prefix(&format!("{}/", stack.registry)).unwrap();
    let repo = rest.rsplit_once(':').unwrap().0;
    let digest = entry["digest"].as_str().unwrap();
    let manifest = request(
        &stack.registry,
        "GET",
        &format!("/v2/{repo}/manifests/{digest}"),
    )
    .json();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let kind = layer["annotations"]["in-toto.io/predicate-type"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let body = blob(&stack.registry, image, layer["digest"].as_str().unwrap());
            (
                kind,
                serde_json::from_slice(&body).expect("in-toto statement JSON"),
            )
        })
        .collect()
}

fn dockerfile(stack: &Stack) -> Vec<(&'static str, String)> {
    vec![(
        "Dockerfile",
        format!("FROM {}\nRUN echo built > /marker-rbuild\n", stack.base),
    )]
}

fn ctx(files: &[(&'static str, String)]) -> tempfile::TempDir {
    let pairs: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
    context(&pairs)
}

#[test]
fn pushed_images_carry_buildx_default_provenance_unless_turned_off() {
    let stack = stack();
    let files = dockerfile(&stack);
    let dir = ctx(&files);
    let image = format!("{}/{}:1", stack.registry, unique("rbuild-test/attest"));
    let meta = dir.path().join("meta.json");
    let out = build_cmd(&stack)
        .args(["-t", &image, "--push", "--metadata-file"])
        .arg(&meta)
        .arg(dir.path())
        .output()
        .unwrap();
    assert_success(&out);

    // The default: an OCI index whose attestation manifest holds a SLSA
    // provenance statement naming the base image as a material.
    let index = top_level(&stack, &image);
    assert_eq!(index["mediaType"], INDEX, "{index}");
    let found = statements(&stack, &image, &index);
    let (kind, statement) = found
        .iter()
        .find(|(k, _)| k.starts_with("https://slsa.dev/provenance/"))
        .unwrap_or_else(|| panic!("no provenance among {found:?}"));
    assert_eq!(&statement["predicateType"], kind.as_str());
    let materials = statement["predicate"]["materials"].to_string()
        + &statement["predicate"]["buildDefinition"]["resolvedDependencies"].to_string();
    assert!(materials.contains("rbuild/busybox"), "{materials}");

    // The metadata file: buildx's key, in its minimal form, and the image
    // manifest that stays the same across builds of the same image.
    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let prov = &md["buildx.build.provenance"];
    assert!(
        prov["materials"].to_string().contains("rbuild/busybox"),
        "{md}"
    );
    assert!(
        prov.get("metadata").is_none() && prov.get("buildConfig").is_none(),
        "{prov}"
    );
    let manifests = &md["rbuild.outputs"][0]["rbuild.image.manifests"];
    let amd64 = amd64_entry(&index);
    assert_eq!(manifests["linux/amd64"], amd64["digest"], "{md}");

    // --provenance=false and BUILDX_NO_DEFAULT_ATTESTATIONS=1: a plain
    // manifest, as before buildx 0.10, and no provenance in the metadata.
    for (how, env) in [
        (Some("--provenance=false"), None),
        (None, Some(("BUILDX_NO_DEFAULT_ATTESTATIONS", "1"))),
    ] {
        let plain = format!("{}/{}:1", stack.registry, unique("rbuild-test/plain"));
        let mut cmd = build_cmd(&stack);
        cmd.args(how)
            .args(["-t", &plain, "--push", "--metadata-file"]);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.arg(&meta).arg(dir.path()).output().unwrap();
        assert_success(&out);
        let top = top_level(&stack, &plain);
        assert!(top["manifests"].is_null(), "{how:?} {env:?}: {top}");
        assert!(top["config"]["digest"].is_string(), "{top}");
        let md: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        assert!(md.get("buildx.build.provenance").is_none(), "{md}");
    }
}

#[test]
fn max_provenance_and_an_sbom_from_a_scanner_image() {
    let stack = stack();
    // A scanner that keeps BuildKit's SBOM protocol: it lists what it finds
    // in BUILDKIT_SCAN_SOURCE and writes one SPDX in-toto statement under
    // BUILDKIT_SCAN_DESTINATION.
    let scan = "set -eu\n\
        found=$(cd \"$BUILDKIT_SCAN_SOURCE\" && ls -d marker-* | tr '\\n' ' ')\n\
        out=\"$BUILDKIT_SCAN_DESTINATION/$(basename \"$BUILDKIT_SCAN_SOURCE\").spdx.json\"\n\
        printf '{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"predicateType\":\"https://spdx.dev/Document\",\"subject\":[],\"predicate\":{\"spdxVersion\":\"SPDX-2.3\",\"SPDXID\":\"SPDXRef-DOCUMENT\",\"name\":\"rbuild-test-scan\",\"dataLicense\":\"CC0-1.0\",\"comment\":\"%s\"}}' \"$found\" > \"$out\"\n";
    let scanner_ctx = context(&[
        (
            "Dockerfile",
            &format!(
                "FROM {}\nCOPY scan.sh /scan.sh\nENTRYPOINT [\"/bin/sh\", \"/scan.sh\"]\n",
                stack.base
            ),
        ),
        ("scan.sh", scan),
    ]);
    let scanner = format!("{}/{}:1", stack.registry, unique("rbuild-test/scanner"));
    let out = build_cmd(&stack)
        .args(["--provenance=false", "-t", &scanner, "--push"])
        .arg(scanner_ctx.path())
        .output()
        .unwrap();
    assert_success(&out);

    let files = dockerfile(&stack);
    let dir = ctx(&files);
    let image = format!("{}/{}:1", stack.registry, unique("rbuild-test/sbom"));
    let meta = dir.path().join("meta.json");
    let out = build_cmd(&stack)
        .env("BUILDX_METADATA_PROVENANCE", "max")
        .args([
            "--provenance",
            "mode=max,builder-id=https://ci.example/run/7",
        ])
        .arg(format!("--sbom=generator={scanner}"))
        .args(["-t", &image, "--push", "--metadata-file"])
        .arg(&meta)
        .arg(dir.path())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stderr(&out).contains("generating sbom using"),
        "{}",
        stderr(&out)
    );

    let index = top_level(&stack, &image);
    let found = statements(&stack, &image, &index);
    let (_, sbom) = found
        .iter()
        .find(|(k, _)| k == "https://spdx.dev/Document")
        .unwrap_or_else(|| panic!("no SBOM among {found:?}"));
    assert_eq!(sbom["predicate"]["name"], "rbuild-test-scan");
    assert!(
        sbom["predicate"]["comment"]
            .as_str()
            .unwrap()
            .contains("marker-rbuild"),
        "the scanner saw the built filesystem: {sbom}"
    );
    let (_, prov) = found
        .iter()
        .find(|(k, _)| k.starts_with("https://slsa.dev/provenance/"))
        .unwrap();
    let builder = prov["predicate"]["builder"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
        + prov["predicate"]["runDetails"]["builder"]["id"]
            .as_str()
            .unwrap_or_default();
    assert_eq!(builder, "https://ci.example/run/7", "{prov}");

    // BUILDX_METADATA_PROVENANCE=max keeps the steps (buildConfig) and
    // times. (The daemon's record has no builder id: that is set on the
    // attached copy only, so buildx's metadata lacks it too.)
    let md: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let prov = &md["buildx.build.provenance"];
    assert!(prov["buildConfig"].is_object(), "{prov}");
    assert!(prov["metadata"]["buildStartedOn"].is_string(), "{prov}");
}

#[test]
fn attestation_mistakes_are_one_line_before_connecting() {
    for (args, says) in [
        (vec!["--provenance", "mode=full"], "mode=min or mode=max"),
        (vec!["--sbom", "generator="], "name the scanner image"),
        (vec!["--attest", "type=slsa"], "provenance or sbom"),
    ] {
        let dir = context(&[("Dockerfile", "FROM scratch\n")]);
        // An address nothing listens on: the error must come first.
        let out = support::rbuild()
            .args(["build", "--addr", "tcp://127.0.0.1:1"])
            .args(&args)
            .arg(dir.path())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(says) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
    let dir = context(&[("Dockerfile", "FROM scratch\n")]);
    let out = support::rbuild()
        .env("BUILDX_NO_DEFAULT_ATTESTATIONS", "maybe")
        .args(["build", "--addr", "tcp://127.0.0.1:1"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("BUILDX_NO_DEFAULT_ATTESTATIONS"),
        "{}",
        stderr(&out)
    );
}
