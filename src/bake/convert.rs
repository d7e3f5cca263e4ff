//! One resolved bake target -> a typed [`Build`]: buildx's spec strings
//! parsed, paths resolved, `target:` contexts turned into build indices.

use std::path::Path;

use super::{BakeError, Target};
use crate::buildspec::{Build, Dockerfile, Entitlement, Network};
use crate::cache::CacheEntry;
use crate::output::Output;
use crate::session::secrets::SecretSpec;
use crate::session::sshforward::SshSpec;

pub(super) fn to_build(
    name: &str,
    t: &Target,
    cwd: &Path,
    index: &dyn Fn(&str) -> Option<usize>,
) -> Result<Build, BakeError> {
    let bad = |source: Box<dyn std::error::Error + Send + Sync>| BakeError::Target {
        target: name.to_string(),
        source,
    };
    let context = cwd.join(t.context.as_deref().unwrap_or("."));
    let mut b = Build::new(&context).named(name);
    b = match (&t.dockerfile_inline, &t.dockerfile) {
        (Some(text), _) => b.dockerfile(Dockerfile::Inline(text.clone().into())),
        (None, Some(f)) => b.dockerfile_path(context.join(f)),
        (None, None) => b,
    };
    if let Some(stage) = &t.target {
        b = b.target(stage);
    }
    for (k, v) in &t.args {
        b = b.build_arg(k, v);
    }
    for (k, v) in &t.labels {
        b = b.label(k, v);
    }
    for (k, value) in &t.contexts {
        if let Some(dep) = value.strip_prefix("target:") {
            let i = index(dep).ok_or_else(|| {
                bad(format!("context {k:?}: target {dep:?} is not selected").into())
            })?;
            b = b.named_context_from(k, i);
        } else {
            // The same forms as `--build-context`; local paths are the
            // target's context's relatives, as its other paths are.
            let source = match value.parse::<crate::buildspec::NamedContext>() {
                Ok(crate::buildspec::NamedContext::Dir(dir)) => {
                    crate::buildspec::NamedContext::Dir(context.join(dir))
                }
                Ok(crate::buildspec::NamedContext::OciLayout(mut layout)) => {
                    layout.dir = context.join(&layout.dir);
                    crate::buildspec::NamedContext::OciLayout(layout)
                }
                Ok(other) => other,
                Err(e) => {
                    return Err(bad(format!(
                        "context {k:?} = {value:?}: {} (or target:NAME)",
                        e.reason
                    )
                    .into()));
                }
            };
            b = b.named_context_source(k, source);
        }
    }
    for tag in &t.tags {
        b = b.tag(tag);
    }
    for p in &t.platforms {
        b = b.platform(p);
    }
    for o in &t.output {
        b = b.output(Output::parse(o).map_err(|e| bad(e.into()))?);
    }
    for c in &t.cache_from {
        b = b.cache_from(CacheEntry::import(c).map_err(|e| bad(e.into()))?);
    }
    for c in &t.cache_to {
        b = b.cache_to(CacheEntry::export(c).map_err(|e| bad(e.into()))?);
    }
    for s in &t.secret {
        b = b.secret(SecretSpec::parse(s).map_err(|e| bad(e.into()))?);
    }
    for s in &t.ssh {
        b = b.ssh(SshSpec::parse(s).map_err(|e| bad(e.into()))?);
    }
    b = b
        .no_cache(t.no_cache.unwrap_or(false))
        .pull(t.pull.unwrap_or(false));
    for stage in &t.no_cache_filter {
        b = b.no_cache_stage(stage);
    }
    if let Some(size) = &t.shm_size {
        b = b.shm_size(crate::buildspec::parse_size(size).map_err(|e| bad(e.into()))?);
    }
    for u in &t.ulimits {
        b = b.ulimit(
            u.parse()
                .map_err(|e: crate::buildspec::InvalidBuild| bad(e.into()))?,
        );
    }
    for a in &t.annotations {
        b = b.annotation(
            a.parse()
                .map_err(|e: crate::buildspec::InvalidBuild| bad(e.into()))?,
        );
    }
    for a in &t.attest {
        b = b.attest(crate::buildspec::Attestation::parse(a).map_err(|e| bad(e.into()))?);
    }
    b = b.network(match t.network.as_deref() {
        None | Some("default") => Network::Default,
        Some("none") => Network::None,
        Some("host") => Network::Host,
        Some(other) => {
            return Err(bad(
                format!("network {other:?}: use default, none or host").into()
            ));
        }
    });
    for e in &t.entitlements {
        b = b.allow(e.parse::<Entitlement>().map_err(|e| bad(e.into()))?);
    }
    // buildx keeps only the call's name from the attribute; how it is
    // printed is the command's.
    if let Some(call) = &t.call {
        let spec: crate::subrequests::CallSpec = call.parse().map_err(|e| bad(Box::new(e)))?;
        if let Some(call) = spec.call {
            b = b.call(call);
        }
    }
    Ok(b)
}
