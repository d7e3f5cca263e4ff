//! The Solve request a [`Build`] would send, shown without a daemon: what a
//! CI engineer checks when swapping `docker buildx build` for rbuild (which
//! flag became which frontend option, exporter or cache entry).

use std::collections::BTreeMap;

use crate::buildspec::{AttestSupport, Build};
use crate::daemon::DaemonKind;
use crate::outcome::BuildError;

/// One exporter or cache entry of the request: its type and attributes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TypedEntry {
    /// The daemon's name for it (`image`, `moby`, `local`, `registry`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its attributes as sent; credentials shown as `<redacted>`.
    pub attrs: BTreeMap<String, String>,
}

/// The request, as far as it is known before a session exists: the
/// session ids, the build ref and the upload itself are left out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RequestPreview {
    /// Always `dockerfile.v0`.
    pub frontend: String,
    /// The frontend's options: `target`, `build-arg:*`, `attest:*`, ...
    pub frontend_attrs: BTreeMap<String, String>,
    /// Every exporter, in order.
    pub exporters: Vec<TypedEntry>,
    /// Cache imports.
    pub cache_imports: Vec<TypedEntry>,
    /// Cache exports.
    pub cache_exports: Vec<TypedEntry>,
    /// Entitlements asked for (`network.host`, `security.insecure`).
    pub entitlements: Vec<String>,
    /// The frontend runs through the gateway (a call): the Solve itself
    /// carries no frontend, and `frontend_attrs` are what the frontend is
    /// asked over the LLB bridge (`requestid=frontend.lint`, ...).
    pub gateway: bool,
}

impl Build {
    /// Checks everything that can be checked without a daemon: the context
    /// and Dockerfile exist, outputs can be written, cache specs, secrets
    /// and SSH keys are readable. `Client::build` runs the same checks.
    ///
    /// # Errors
    ///
    /// [`BuildError::Invalid`] with the first mistake found: a missing context or
    /// Dockerfile, a malformed spec, an unreadable secret or SSH key, outputs that cannot
    /// go together.
    pub fn validate(&self) -> Result<(), BuildError> {
        super::prepare(
            self,
            DaemonKind::Buildkitd,
            None,
            AttestSupport::Yes,
            &crate::upstream::Resolved::default(),
        )
        .map(|_| ())
    }

    /// The request this build would send to a Docker Engine's BuildKit
    /// (`engine`) or to a standalone buildkitd, checked as
    /// [`Build::validate`] checks it. Attestations are shown as on a daemon
    /// that can store them. Upstreams are not looked up (no network): a step
    /// keyed by its upstream is planned with its fallback window.
    ///
    /// # Errors
    ///
    /// As [`Build::validate`].
    pub fn preview(&self, engine: bool) -> Result<RequestPreview, BuildError> {
        let daemon = if engine {
            DaemonKind::Engine
        } else {
            DaemonKind::Buildkitd
        };
        let none = crate::upstream::Resolved::default();
        let mut plan = super::prepare(self, daemon, None, AttestSupport::Yes, &none)?;
        plan.cache_imports = plan.cache_imports.iter().map(|c| c.redacted()).collect();
        plan.cache_exports = plan.cache_exports.iter().map(|c| c.redacted()).collect();
        let request = super::preview_request(&plan);
        let entry = |kind: String, attrs: std::collections::HashMap<String, String>| TypedEntry {
            kind,
            attrs: attrs.into_iter().collect(),
        };
        let cache = request.cache.unwrap_or_default();
        let gateway = plan.via_gateway();
        let (frontend, frontend_attrs) = match gateway {
            true => {
                let f = plan.frontend_request(&BTreeMap::new());
                (f.frontend, f.opts)
            }
            false => (
                request.frontend,
                request.frontend_attrs.into_iter().collect(),
            ),
        };
        Ok(RequestPreview {
            frontend,
            frontend_attrs,
            gateway,
            exporters: request
                .exporters
                .into_iter()
                .map(|e| entry(e.r#type, e.attrs))
                .collect(),
            cache_imports: cache
                .imports
                .into_iter()
                .map(|e| entry(e.r#type, e.attrs))
                .collect(),
            cache_exports: cache
                .exports
                .into_iter()
                .map(|e| entry(e.r#type, e.attrs))
                .collect(),
            entitlements: request.entitlements,
        })
    }
}
