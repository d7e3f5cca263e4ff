//! The `SolveRequest` a [`BuildPlan`] sends: the Dockerfile frontend's
//! attributes, the exporters and the cache entries, exactly as the daemon
//! reads them (upstream: client/solve.go fills the same fields). A build
//! that runs its frontend through the gateway sends the same request with
//! no frontend, and the frontend's own request over the LLB bridge
//! ([`BuildPlan::frontend_request`], upstream buildx build/build.go).

use std::collections::{BTreeMap, HashMap};

use super::{BuildPlan, DockerfileSource};
use crate::cache;
use crate::gateway::FrontendRequest;
use crate::proto::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry, Exporter, SolveRequest};

/// The name the frontend uses for the Dockerfile's local source.
pub(crate) const DOCKERFILE_LOCAL: &str = "dockerfile";
/// The file name served for an in-memory Dockerfile.
pub(crate) const INLINE_DOCKERFILE: &str = "Dockerfile";
/// The Dockerfile frontend built into every daemon.
const DOCKERFILE_FRONTEND: &str = "dockerfile.v0";
/// Asks the frontend to pass a subrequest it does not know on to the
/// frontend a `# syntax=` line names, instead of failing (buildx sends it).
const SUBREQUESTS_CAP: &str = "moby.buildkit.frontend.subrequests+forward";

impl BuildPlan {
    /// Whether the build runs its frontend through the gateway: to ask a
    /// call, to hand its result to another build or take one as a named
    /// context, or to read a file of its result. Other builds send the frontend with the Solve, which is all
    /// they need.
    pub(crate) fn via_gateway(&self) -> bool {
        self.call.is_some()
            || self.hands_over
            || self.read_file.is_some()
            || !self.frontend_inputs.is_empty()
    }

    /// The frontend attributes, with the per-run ones: `locals` names the
    /// session that serves each local source when it is not the build's own.
    fn attrs(&self, locals: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut attrs = self.frontend_attrs.clone();
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
        if !self.cache_imports.is_empty() {
            // The Dockerfile frontend reads its cache imports from this
            // attribute; the Go client mirrors Cache.Imports into it too.
            attrs.insert(
                "cache-imports".into(),
                cache::imports_attr(&self.cache_imports),
            );
        }
        attrs
    }

    /// The request sent to `Control.Solve`; `locals` names the session that
    /// serves each local source when it is not the build's own.
    pub(crate) fn solve_request(
        &self,
        build_ref: &str,
        session_id: &str,
        locals: &BTreeMap<String, String>,
    ) -> SolveRequest {
        let entry = |c: &cache::CacheEntry| CacheOptionsEntry {
            r#type: c.kind.as_str().to_string(),
            attrs: c.attrs.clone().into_iter().collect(),
        };
        let exporters: Vec<Exporter> = self
            .exports
            .iter()
            .map(|e| Exporter {
                r#type: e.kind.clone(),
                attrs: e.attrs.clone().into_iter().collect(),
            })
            .collect();
        let first = exporters.first().cloned().unwrap_or_default();
        // A gateway build registers with the daemon and waits for the
        // client to run the frontend; its attributes still go here, for
        // what the daemon does with the result (attestations, history).
        let frontend = match self.via_gateway() {
            true => String::new(),
            false => DOCKERFILE_FRONTEND.into(),
        };
        SolveRequest {
            r#ref: build_ref.to_string(),
            session: session_id.to_string(),
            frontend,
            frontend_attrs: self.attrs(locals).into_iter().collect::<HashMap<_, _>>(),
            cache: Some(CacheOptions {
                exports: self.cache_exports.iter().map(entry).collect(),
                imports: self.cache_imports.iter().map(entry).collect(),
            }),
            entitlements: self.entitlements.clone(),
            // Daemons before v0.13 read only the single deprecated exporter.
            exporter_deprecated: first.r#type,
            exporter_attrs_deprecated: first.attrs,
            exporters,
            // A call is no build: the daemon keeps no history record of it.
            internal: self.call.is_some(),
            ..Default::default()
        }
    }

    /// What a gateway build asks its frontend over the LLB bridge: the
    /// same attributes, the subrequest for a call, and the named inputs.
    pub(crate) fn frontend_request(&self, locals: &BTreeMap<String, String>) -> FrontendRequest {
        let mut opts = self.attrs(locals);
        if let Some(call) = &self.call {
            opts.insert("requestid".into(), call.request_id());
            let caps = match opts.get("frontend.caps") {
                Some(caps) => format!("{caps},{SUBREQUESTS_CAP}"),
                None => SUBREQUESTS_CAP.to_string(),
            };
            opts.insert("frontend.caps".into(), caps);
        }
        FrontendRequest {
            frontend: DOCKERFILE_FRONTEND.into(),
            opts,
            inputs: self.frontend_inputs.clone(),
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
