//! A bake `target:` context handed over as buildx does it: the dependency's
//! frontend result goes to the dependent's frontend as an input inside the
//! daemon, on both engine generations and on a standalone buildkitd (the
//! engine's BuildKit behind a plain socket) — no temporary tag left in an
//! engine, nothing pushed to a registry.

mod support;

use std::path::Path;

use support::buildx::{modern_engine, old_engine};
use support::proxy::GrpcProxy;
use support::{context, rbuild, registry, stack, stderr, unique};

/// `base` sets an environment variable and a working directory that only
/// its image config carries; `app` builds on it and exports what it saw.
fn project(base_image: &str, base_tag: &str) -> tempfile::TempDir {
    context(&[
        (
            "base/Dockerfile",
            &format!(
                "FROM {base_image}\nENV GREETING=hello-from-base\nWORKDIR /srv\n\
                 RUN echo from-base > /base.txt\n"
            ),
        ),
        (
            "app/Dockerfile",
            "FROM base AS seen\n\
             RUN cat /base.txt > seen.txt && echo \"$GREETING\" >> seen.txt && pwd >> seen.txt\n\
             FROM scratch\nCOPY --from=seen /srv/seen.txt /\n",
        ),
        (
            "docker-bake.hcl",
            &format!(
                "target \"base\" {{\n  context = \"base\"\n  tags = [\"{base_tag}\"]\n  \
                 output = [\"type=cacheonly\"]\n}}\n\
                 target \"app\" {{\n  context = \"app\"\n  contexts = {{ base = \"target:base\" }}\n  \
                 output = [\"type=local,dest=out\"]\n}}\n"
            ),
        ),
    ])
}

/// Every tag the engine at `socket` holds.
fn engine_tags(socket: &Path) -> Vec<String> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--unix-socket"])
        .arg(socket)
        .arg("http://localhost/images/json")
        .output()
        .unwrap();
    assert!(out.status.success(), "listing the engine's images failed");
    let images: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    images
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_target_context_is_handed_over_on_both_engines_and_a_buildkitd() {
    let stack = stack();
    let old = old_engine();
    let old_socket = Path::new(old.strip_prefix("docker://").unwrap()).to_path_buf();
    let modern = modern_engine();
    let modern_socket = Path::new(modern.strip_prefix("docker://").unwrap()).to_path_buf();
    // The old engine's BuildKit seen as a standalone buildkitd, which has no
    // image store: there the old way pushed the dependency.
    let proxy = GrpcProxy::start(&old_socket);
    let buildkitd = format!("unix://{}", proxy.socket.display());
    let runs = [
        ("old engine", old.clone(), old_socket.clone()),
        ("modern engine", modern, modern_socket.clone()),
        ("buildkitd", buildkitd, old_socket),
    ];
    let handles: Vec<_> = runs
        .into_iter()
        .map(|(what, addr, socket)| {
            let base_image = stack.base.clone();
            let base_tag = format!("{}/rbuild/{}:1", stack.registry, unique("target-ctx"));
            std::thread::spawn(move || {
                let dir = project(&base_image, &base_tag);
                let out = rbuild()
                    .current_dir(dir.path())
                    .args(["bake", "--addr", &addr, "--progress", "plain", "app"])
                    .output()
                    .unwrap();
                (what, dir, base_tag, socket, out)
            })
        })
        .collect();
    for handle in handles {
        let (what, dir, base_tag, socket, out) = handle.join().unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("[base] #") && err.contains("[app] #"),
            "{what}: {err}"
        );
        // The dependency's filesystem and its image config (ENV, WORKDIR).
        let seen = std::fs::read_to_string(dir.path().join("out/seen.txt")).unwrap();
        assert_eq!(seen, "from-base\nhello-from-base\n/srv\n", "{what}");
        // Nothing tagged for it, nothing pushed.
        let tags = engine_tags(&socket);
        assert!(
            !tags
                .iter()
                .any(|t| t.starts_with("rbuild-deps/") || t == &base_tag),
            "{what}: {tags:?}"
        );
        let (repo, tag) = base_tag
            .strip_prefix(&format!("{}/", stack.registry))
            .and_then(|r| r.rsplit_once(':'))
            .unwrap();
        let pushed = registry::request(
            &stack.registry,
            "GET",
            &format!("/v2/{repo}/manifests/{tag}"),
        );
        assert_eq!(pushed.status, 404, "{what}: {base_tag} was pushed");
    }
}
