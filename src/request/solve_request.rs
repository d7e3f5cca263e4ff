//! The `SolveRequest` a [`BuildPlan`] sends: the Dockerfile frontend's
//! attributes, the exporters and the cache entries, exactly as the daemon
//! reads them (upstream: client/solve.go fills the same fields).

use std::collections::{BTreeMap, HashMap};

use super::{BuildPlan, DockerfileSource};
use crate::cache;
use crate::proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry, Exporter, SolveRequest};

/// The name the frontend uses for the Dockerfile's local source.
pub(crate) const DOCKERFILE_LOCAL: &str = "dockerfile";
/// The file name served for an in-memory Dockerfile.
pub(crate) const INLINE_DOCKERFILE: &str = "Dockerfile";

impl BuildPlan {
    /// The request sent to `Control.Solve`; `locals` names the session that
    /// serves each local source when it is not the build's own.
    pub(crate) fn solve_request(
        &self,
        build_ref: &str,
        session_id: &str,
        locals: &BTreeMap<String, String>,
    ) -> SolveRequest {
        let mut attrs: HashMap<String, String> = self.frontend_attrs.clone().into_iter().collect();
        let filename = match &self.dockerfile {
            DockerfileSource::File { filename, .. } => filename.clone(),
            DockerfileSource::Inline(_) => INLINE_DOCKERFILE.to_string(),
            DockerfileSource::Remote { filename } => filename.clone(),
        };
        attrs.insert("filename".into(), filename);
        // dockerui takes a git or HTTP context from this option.
        if let Some(url) = &self.remote_context {
            attrs.insert("context".into(), url.clone());
        }
        for name in self.named_contexts.keys() {
            attrs.insert(format!("context:{name}"), format!("local:{name}"));
        }
        // The Dockerfile frontend reads each local from the session named
        // here (dockerui's `local-sessionid:` option), as buildx does for
        // builds that share a directory.
        for (name, session) in locals {
            attrs.insert(format!("local-sessionid:{name}"), session.clone());
        }
        let entry = |c: &cache::CacheEntry| CacheOptionsEntry {
            r#type: c.kind.as_str().to_string(),
            attrs: c.attrs.clone().into_iter().collect(),
        };
        if !self.cache_imports.is_empty() {
            // The Dockerfile frontend reads its cache imports from this
            // attribute; the Go client mirrors Cache.Imports into it too.
            attrs.insert(
                "cache-imports".into(),
                cache::imports_attr(&self.cache_imports),
            );
        }
        let exporters: Vec<Exporter> = self
            .exports
            .iter()
            .map(|e| Exporter {
                r#type: e.kind.clone(),
                attrs: e.attrs.clone().into_iter().collect(),
            })
            .collect();
        let first = exporters.first().cloned().unwrap_or_default();
        SolveRequest {
            r#ref: build_ref.to_string(),
            session: session_id.to_string(),
            frontend: "dockerfile.v0".into(),
            frontend_attrs: attrs,
            cache: Some(CacheOptions {
                exports: self.cache_exports.iter().map(entry).collect(),
                imports: self.cache_imports.iter().map(entry).collect(),
            }),
            entitlements: self.entitlements.clone(),
            // Daemons before v0.13 read only the single deprecated exporter.
            exporter_deprecated: first.r#type,
            exporter_attrs_deprecated: first.attrs,
            exporters,
            ..Default::default()
        }
    }
}

/// The request `plan` would send, with placeholder ids: for
/// [`Build::preview`](crate::Build::preview).
pub(crate) fn preview_request(plan: &BuildPlan) -> SolveRequest {
    let mut request = plan.solve_request("", "", &BTreeMap::new());
    request.r#ref.clear();
    request
}
