//! The request a build sends. A [`Build`] resolved for one daemon: local files checked and read, the
//! freshness rewrite applied, and the Dockerfile frontend's attributes,
//! exporters and cache entries spelled out. Every user mistake is found
//! here, before the daemon is contacted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

use bytes::Bytes;

use crate::buildspec::context;
use crate::buildspec::{AttestSupport, Build, InvalidBuild, Network};
use crate::cache::{self, CacheEntry, Scrubber};
use crate::credentials::{AuthScope, DockerConfig};
use crate::daemon::DaemonKind;
use crate::docker_api::Engine;
use crate::dockerfile::{RefreshOptions, Rewritten};
use crate::outcome::BuildError;
use crate::output::{self, Export};
use crate::session::filesync::LocalSource;
use crate::session::upload::ContextArchive;
use crate::session::{secrets, sshforward};
use crate::subrequests::Call;
use crate::upstream::Resolved;

/// Where the frontend reads the Dockerfile from.
#[derive(Clone, Debug)]
pub(crate) enum DockerfileSource {
    /// `filename` inside directory `dir` (which may be the context itself).
    File { dir: PathBuf, filename: String },
    /// Contents held in memory (inline, stdin, or a rewritten Dockerfile).
    Inline(Bytes),
    /// `filename` inside the remote context, which the daemon fetches.
    Remote { filename: String },
}

/// Everything one solve needs, resolved from a [`Build`].
#[derive(Clone, Debug)]
pub(crate) struct BuildPlan {
    pub name: Option<String>,
    /// What the session serves as `context`; None when the frontend
    /// fetches the context from `remote_context`.
    pub context: Option<LocalSource>,
    /// A context the daemon fetches (git, HTTP tarball, the session upload).
    pub remote_context: Option<String>,
    /// The archive the daemon pulls as the context, by upload id.
    pub upload: Option<(String, ContextArchive)>,
    pub dockerfile: DockerfileSource,
    /// `dockerfile.v0` attributes: target, build-arg:*, label:*, platform...
    pub frontend_attrs: BTreeMap<String, String>,
    /// Extra local directories (within their `.dockerignore`), served under
    /// their own names and wired to the frontend as `context:NAME=local:NAME`.
    pub named_contexts: BTreeMap<String, LocalSource>,
    /// OCI layouts served as session content stores, by store name.
    pub oci_stores: BTreeMap<String, PathBuf>,
    pub exports: Vec<Export>,
    pub cache_imports: Vec<CacheEntry>,
    pub cache_exports: Vec<CacheEntry>,
    pub entitlements: Vec<String>,
    /// Stable key for incremental uploads of this project's context.
    pub shared_key: String,
    pub docker_config: DockerConfig,
    /// The registry hosts that get credentials from `docker_config`.
    pub auth_scope: AuthScope,
    pub secrets: secrets::SecretStore,
    pub ssh: sshforward::SshAgents,
    /// The engine `--load` outputs stream into, when the daemon is not it.
    pub engine: Option<Engine>,
    /// The freshness rewrite, to map line numbers back and mark steps.
    pub rewritten: Option<Rewritten>,
    /// Found while resolving, for the result (cache entries left out).
    pub warnings: Vec<String>,
    /// The cache credentials, to take out of what the daemon sends back.
    pub scrubber: Scrubber,
    /// The question for the frontend instead of a build.
    pub call: Option<Call>,
    /// The frontend image to ask `call` again with, when the daemon's own
    /// frontend does not know it.
    pub call_fallback: Option<String>,
    /// Definitions other builds of the same call handed over as named
    /// contexts (`context:NAME=input:KEY`), by key: set when the build runs.
    pub frontend_inputs: BTreeMap<String, Bytes>,
    /// Other builds of the same call take this build's result as a named
    /// context: set when the build runs.
    pub hands_over: bool,
    /// A file to read from the build's result once it is built.
    pub read_file: Option<String>,
}

/// Resolves `build` for a daemon of kind `daemon`; `resolved` holds what
/// its upstreams are now ([`look_upstream`]).
pub(crate) fn prepare(
    build: &Build,
    daemon: DaemonKind,
    engine: Option<Engine>,
    attest_support: AttestSupport,
    resolved: &Resolved,
) -> Result<BuildPlan, BuildError> {
    let main = main_context(build)?;
    let (dockerfile, rewritten, dockerfile_text) =
        refresh_policy(build, main.dockerfile, resolved)?;
    // Decided on the Dockerfile the frontend will read, rewritten or not.
    let context = match main.local {
        Some(LocalSource::Dir(dir, _)) => {
            let scope = confine::context_scope(&dir, &dockerfile)?;
            Some(LocalSource::Dir(dir, scope))
        }
        other => other,
    };

    let mut attrs = BTreeMap::new();
    if let Some(target) = &build.target {
        attrs.insert("target".to_string(), target.clone());
    }
    for (k, v) in &build.build_args {
        non_empty_key("build argument", k, v)?;
        attrs.insert(format!("build-arg:{k}"), v.clone());
    }
    for (k, v) in &build.labels {
        non_empty_key("label", k, v)?;
        attrs.insert(format!("label:{k}"), v.clone());
    }
    if !build.platforms.is_empty() {
        attrs.insert("platform".to_string(), build.platforms.join(","));
    }
    if build.no_cache {
        // Empty means every stage.
        attrs.insert("no-cache".to_string(), String::new());
    } else if !build.no_cache_stages.is_empty() {
        attrs.insert("no-cache".to_string(), build.no_cache_stages.join(","));
    }
    if let Some(bytes) = build.shm_size {
        attrs.insert("shm-size".to_string(), bytes.to_string());
    }
    if !build.ulimits.is_empty() {
        let limits: Vec<String> = build.ulimits.iter().map(ToString::to_string).collect();
        attrs.insert("ulimit".to_string(), limits.join(","));
    }
    if let Some(parent) = &build.cgroup_parent {
        attrs.insert("cgroup-parent".to_string(), parent.clone());
    }
    // A call builds nothing, so there is nothing to attest.
    if build.call.is_none() {
        attrs.extend(crate::buildspec::attest::frontend_attrs(
            build,
            &attest_support,
        )?);
    }
    if build.pull {
        attrs.insert("image-resolve-mode".to_string(), "pull".to_string());
    }
    let mut entitlements: Vec<String> = build
        .entitlements
        .iter()
        .map(crate::buildspec::Entitlement::wire)
        .collect();
    match build.network {
        Network::Default => {}
        Network::None => {
            attrs.insert("force-network-mode".to_string(), "none".to_string());
        }
        Network::Host => {
            attrs.insert("force-network-mode".to_string(), "host".to_string());
            let host = crate::buildspec::Entitlement::NetworkHost.wire();
            if !entitlements.contains(&host) {
                entitlements.push(host);
            }
        }
    }
    if !build.extra_hosts.is_empty() {
        let hosts: Vec<String> = build.extra_hosts.iter().map(|h| h.attr()).collect();
        attrs.insert("add-hosts".to_string(), hosts.join(","));
    }
    let named = context::resolve(build)?;
    attrs.extend(named.attrs);
    let mut named_contexts = BTreeMap::new();
    for (name, dir) in named.dirs {
        let scope = confine::named_scope(&name, &dir)?;
        named_contexts.insert(name, LocalSource::Dir(dir, scope));
    }
    if !build.contexts.is_empty() || !build.context_builds.is_empty() {
        // buildx asks for named-context support this way: a frontend
        // without it fails clearly (or, with `#syntax`, forwards to one
        // that has it) instead of ignoring the contexts.
        attrs.insert(
            "frontend.caps".to_string(),
            "moby.buildkit.frontend.contexts+forward".to_string(),
        );
    }

    // A call exports nothing (buildx marks it internal, and its answer
    // has no image); outputs and cache exports are left out.
    let mut exports = match build.call {
        Some(_) => Vec::new(),
        None => output::resolve(&build.outputs, &build.tags, daemon).map_err(InvalidBuild::from)?,
    };
    for e in exports.iter_mut().filter(|e| e.produces_image()) {
        for a in &build.annotations {
            e.attrs.entry(a.attr()).or_insert_with(|| a.value.clone());
        }
    }
    output::check_destinations(&exports)?;
    let mut warnings = Vec::new();
    let (cache_imports, cache_exports) = cache_entries(build)?;
    let cache_imports =
        cache::resolve_entries(cache_imports, &build.cache_env, "import", &mut warnings);
    let cache_exports = match build.call {
        Some(_) => Vec::new(),
        None => cache::resolve_entries(cache_exports, &build.cache_env, "export", &mut warnings),
    };
    let scrubber = Scrubber::of(cache_imports.iter().chain(&cache_exports));
    let secrets = secrets::load(&build.secrets).map_err(InvalidBuild::from)?;
    let ssh = sshforward::load(&build.ssh).map_err(InvalidBuild::from)?;
    let auth_scope = auth_hosts::scope(
        build,
        dockerfile_text.as_deref(),
        &exports,
        cache_imports.iter().chain(&cache_exports),
    );
    let docker_config = match &build.registry_auth {
        Some(config) => config.clone(),
        None => DockerConfig::load().map_err(InvalidBuild::from)?,
    };
    Ok(BuildPlan {
        name: build.name.clone(),
        shared_key: main.shared_key,
        context,
        remote_context: main.remote,
        upload: main.upload,
        dockerfile,
        frontend_attrs: attrs,
        named_contexts,
        oci_stores: named.oci_stores,
        exports,
        cache_imports,
        cache_exports,
        entitlements,
        docker_config,
        auth_scope,
        secrets,
        ssh,
        engine,
        rewritten,
        warnings,
        scrubber,
        call: build.call.clone(),
        call_fallback: build.call_fallback.clone(),
        frontend_inputs: BTreeMap::new(),
        hands_over: false,
        read_file: None,
    })
}

fn non_empty_key(what: &'static str, key: &str, value: &str) -> Result<(), InvalidBuild> {
    if key.is_empty() {
        return Err(InvalidBuild::EmptyKey {
            what,
            input: format!("={value}"),
        });
    }
    Ok(())
}

fn cache_entries(build: &Build) -> Result<(Vec<CacheEntry>, Vec<CacheEntry>), InvalidBuild> {
    if let Some(reference) = &build.shared_cache {
        CacheEntry::shorthand(reference)?;
    }
    Ok(build.cache_entries())
}

/// Applies the freshness policy: when a step is to be renewed, the frontend
/// gets a rewritten Dockerfile from memory; the user's file is never touched.
/// Also returns the Dockerfile's text, when it is local and UTF-8.
fn refresh_policy(
    build: &Build,
    dockerfile: DockerfileSource,
    resolved: &Resolved,
) -> Result<(DockerfileSource, Option<Rewritten>, Option<String>), InvalidBuild> {
    let (name, bytes) = match &dockerfile {
        DockerfileSource::File { dir, filename } => {
            let path = dir.join(filename);
            let data = std::fs::read(&path).map_err(|e| InvalidBuild::Dockerfile {
                message: format!("cannot read Dockerfile {}: {e}", path.display()),
            })?;
            (path.display().to_string(), Bytes::from(data))
        }
        DockerfileSource::Inline(data) => ("(inline)".to_string(), data.clone()),
        DockerfileSource::Remote { filename } => {
            let f = build.freshness;
            if f.every.is_some() || f.now || f.upstream {
                return Err(InvalidBuild::Dockerfile {
                    message: format!(
                        "the refresh policy needs a local Dockerfile; {filename} is read from the remote context"
                    ),
                });
            }
            return Ok((dockerfile, None, None));
        }
    };
    let fresh = build.freshness;
    let asked = fresh.every.is_some() || fresh.now || fresh.upstream;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(_) if asked => {
            return Err(InvalidBuild::Dockerfile {
                message: format!(
                    "Dockerfile {name} is not UTF-8 text: cannot apply the refresh policy"
                ),
            });
        }
        // Nothing asked for: the frontend reads the file as it is.
        Err(_) => return Ok((dockerfile, None, None)),
    };
    let options = RefreshOptions {
        every: fresh.every,
        force: fresh.now,
        upstream: fresh.upstream,
        build_args: build.build_args.clone(),
        resolved: resolved.clone(),
    };
    let rewritten = crate::dockerfile::prepare_with(text, &options, SystemTime::now())
        .map_err(|source| InvalidBuild::Freshness { file: name, source })?;
    let text = Some(text.to_string());
    Ok(match rewritten {
        Some(r) => (
            DockerfileSource::Inline(Bytes::from(r.text.clone())),
            Some(r),
            text,
        ),
        None => (dockerfile, None, text),
    })
}

/// What the upstreams of `build`'s upstream-keyed steps are now, looked
/// up concurrently before the solve. Empty when no step is keyed by its
/// upstream, with `--refresh` (every such step is renewed anyway), or when
/// the Dockerfile cannot be read or analyzed ([`prepare`] then says why).
pub(crate) async fn look_upstream(build: &Build) -> Resolved {
    let fresh = build.freshness;
    if fresh.now {
        return Resolved::default();
    }
    let text = match main_context(build).map(|m| m.dockerfile) {
        Ok(DockerfileSource::File { dir, filename }) => {
            std::fs::read_to_string(dir.join(filename)).ok()
        }
        Ok(DockerfileSource::Inline(data)) => String::from_utf8(data.to_vec()).ok(),
        _ => None,
    };
    let Some(text) = text else {
        return Resolved::default();
    };
    if !fresh.upstream && !text.contains("rbuild:refresh") {
        return Resolved::default();
    }
    let Ok(steps) = crate::dockerfile::analyze_with(&text, &build.build_args) else {
        return Resolved::default();
    };
    let sources = steps
        .iter()
        .flat_map(|s| s.sources(fresh.every, fresh.upstream, false));
    crate::upstream::resolve(sources, crate::upstream::DEFAULT_TIMEOUT).await
}

mod auth_hosts;
pub(crate) mod confine;
mod main_context;
mod preview;
mod solve_request;
#[cfg(test)]
mod tests;

use main_context::main_context;
#[cfg(test)]
use main_context::shared_key;
pub use preview::{RequestPreview, TypedEntry};
pub(crate) use solve_request::{DOCKERFILE_LOCAL, INLINE_DOCKERFILE, preview_request};
