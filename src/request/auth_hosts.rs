//! The registry hosts a build names, which alone get credentials from the session
//! ([`AuthScope`]): the Dockerfile's images (`FROM` after `ARG` expansion, `COPY --from`,
//! `RUN --mount=from`, the `# syntax` frontend), `docker-image://` named contexts, registry
//! caches, push targets, the SBOM scanner, and the hosts the caller adds with
//! [`Build::auth_host`] (`*`: every host, as buildx does).
//!
//! A Dockerfile the daemon reads from a remote context is not seen here: the hosts its
//! images come from must be added by the caller.

use crate::buildspec::{Build, NamedContext, attest};
use crate::cache::{CacheBackend, CacheEntry};
use crate::credentials::AuthScope;
use crate::dockerfile::images::{images, registry_host};
use crate::output::Export;

/// The scope for `build`, whose Dockerfile reads `dockerfile` (when it is local), with
/// its resolved `exports` and cache entries.
pub(crate) fn scope<'a>(
    build: &Build,
    dockerfile: Option<&str>,
    exports: &[Export],
    caches: impl IntoIterator<Item = &'a CacheEntry>,
) -> AuthScope {
    let mut scope = AuthScope::none();
    for host in &build.auth_hosts {
        scope.allow(host);
    }
    if let Some(text) = dockerfile {
        let named = |r: &str| {
            let r = r.to_ascii_lowercase();
            let short = r.strip_suffix(":latest").unwrap_or(&r).to_string();
            build
                .contexts
                .keys()
                .chain(build.context_builds.keys())
                .any(|k| k.eq_ignore_ascii_case(&r) || k.eq_ignore_ascii_case(&short))
        };
        for image in images(text, &build.build_args) {
            // A named context replaces the image: the frontend never pulls it.
            if !named(&image) {
                scope.allow(&registry_host(&image));
            }
        }
    }
    for context in build.contexts.values() {
        if let NamedContext::Image(reference) = context {
            scope.allow(&registry_host(reference));
        }
    }
    for export in exports {
        if export.attrs.get("push").is_some_and(|p| p == "true")
            && let Some(names) = export.attrs.get("name")
        {
            for name in names.split(',').filter(|n| !n.trim().is_empty()) {
                scope.allow(&registry_host(name));
            }
        }
    }
    for entry in caches {
        if entry.kind == CacheBackend::Registry
            && let Some(reference) = entry.reference()
        {
            scope.allow(&registry_host(reference));
        }
    }
    if let Some(scanner) = attest::sbom_scanner(build) {
        scope.allow(&registry_host(&scanner));
    }
    scope
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildspec::Attestation;
    use std::collections::BTreeMap;

    fn push(names: &str) -> Export {
        Export {
            kind: "image".into(),
            attrs: BTreeMap::from([
                ("name".to_string(), names.to_string()),
                ("push".to_string(), "true".to_string()),
            ]),
            dest: crate::output::Destination::Daemon,
        }
    }

    fn hosts(scope: &AuthScope) -> Vec<&str> {
        scope
            .hosts()
            .expect("a limited scope")
            .iter()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn every_place_a_build_names_a_registry() {
        let build = Build::new(".")
            .build_arg("BASE", "base.example/os:1")
            .named_context_image("tools", "ctx.example/tools:2")
            .named_context("alpine", ".")
            .attest(Attestation::sbom_generator("scan.example/syft:1"))
            .auth_host("mirror.example:5000");
        let dockerfile = "ARG BASE\nFROM $BASE\nFROM alpine\nCOPY --from=tools / /\n";
        let cache = CacheEntry::registry("cache.example/app-cache");
        let local = CacheEntry::local_dir("/tmp/cache");
        let exports = [push("push.example/app:1,push2.example/app:1")];
        let loaded = Export {
            attrs: BTreeMap::from([("name".to_string(), "load.example/x".to_string())]),
            ..push("")
        };
        let scope = scope(
            &build,
            Some(dockerfile),
            &[exports[0].clone(), loaded],
            [&cache, &local],
        );
        assert_eq!(
            hosts(&scope),
            [
                "base.example",
                "cache.example",
                "ctx.example",
                "mirror.example:5000",
                "push.example",
                "push2.example",
                "scan.example",
            ]
        );
        // `alpine` is a named context: Docker Hub is not named. An SBOM without a
        // generator runs BuildKit's default scanner from Docker Hub.
        let default_scanner = Build::new(".").attest(Attestation::sbom());
        let scope = super::scope(&default_scanner, None, &[], []);
        assert_eq!(hosts(&scope), ["docker.io"]);
        let every = Build::new(".").auth_host("*");
        assert!(super::scope(&every, None, &[], []).is_any());
    }
}
