//! The typed description of one build.
//!
//! A [`Build`] says what to build (context, Dockerfile, target, arguments),
//! what to produce ([`Output`]s) and which caches to use ([`CacheEntry`]);
//! [`Client::build`](crate::Client::build) turns it into one `Control.Solve`
//! ([`crate::request`]) and returns a [`BuildResult`](crate::BuildResult) or
//! a [`BuildError`](crate::BuildError). Neither the CLI nor a Rust program
//! spells a frontend attribute, an exporter name or an entitlement string.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rbuild::{Address, Build, CacheEntry, Client, ConnectOptions, Output};
//!
//! let client = Client::connect(Address::default_local(), &ConnectOptions::default()).await?;
//! let build = Build::new("examples/app")
//!     .tag("127.0.0.1:5000/app:1")
//!     .output(Output::registry())
//!     .cache_from(CacheEntry::registry("127.0.0.1:5000/app-cache"))
//!     .cache_to(CacheEntry::registry_max("127.0.0.1:5000/app-cache"));
//! let result = client.build(&build).await?;
//! println!("{} steps, {} cached", result.steps.total, result.steps.cached);
//! # Ok(())
//! # }
//! ```

mod archive;
pub(crate) mod attest;
pub(crate) mod context;
mod entitlement;
mod hosts;
mod invalid;
mod limits;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::cache::{CacheEntry, CacheEnv};
use crate::credentials::DockerConfig;
use crate::output::Output;
use crate::session::{SecretSpec, SshSpec};
use crate::subrequests::Call;

pub(crate) use attest::AttestSupport;
pub use attest::{AttestKind, Attestation, ProvenanceMode};
pub(crate) use context::ContextSource;
pub use context::{ContextInput, NamedContext, OciLayoutRef};
pub use entitlement::Entitlement;
pub use hosts::{ExtraHost, HostAddr};
pub use invalid::{InvalidBuild, SplitRefusal};
pub use limits::{Annotation, Ulimit, parse_size};

/// Where the Dockerfile comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Dockerfile {
    /// `Dockerfile` in the context directory.
    #[default]
    InContext,
    /// A file anywhere on disk (it may live outside the context).
    Path(PathBuf),
    /// The Dockerfile's text, held in memory.
    Inline(Bytes),
}

impl Dockerfile {
    /// Reads the whole of standard input as the Dockerfile (`-f -`).
    ///
    /// # Errors
    ///
    /// The I/O error from reading standard input.
    pub fn from_stdin() -> std::io::Result<Dockerfile> {
        use std::io::Read;
        let mut data = Vec::new();
        std::io::stdin().read_to_end(&mut data)?;
        Ok(Dockerfile::Inline(Bytes::from(data)))
    }
}

/// The network RUN steps get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// The daemon's default (a bridge network on a Docker Engine).
    #[default]
    Default,
    /// No network at all.
    None,
    /// The host's network; asks for the `network.host` entitlement.
    Host,
}

/// When steps that fetch from outside (`git clone`, `curl`, ...) get a fresh
/// cache key (see [`crate::dockerfile`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Renew those steps once per window of this length (with `upstream`:
    /// the window of a step whose upstream cannot be looked up).
    pub every: Option<Duration>,
    /// Start a new window for them in this build.
    pub now: bool,
    /// Key those steps by what their upstreams are now (the commit of a
    /// cloned ref, a URL's ETag), looked up on this machine before the
    /// solve ([`crate::upstream`]): they re-run exactly when an upstream
    /// moved.
    pub upstream: bool,
}

/// One Dockerfile build: everything the daemon needs, with defaults for all
/// but the context. Build it with the chained setters; nothing is checked
/// until the build runs (or [`Build::validate`] is called), so a mistake is
/// reported with everything else the user got wrong in one place.
#[derive(Clone, Debug, Default)]
pub struct Build {
    pub(crate) name: Option<String>,
    pub(crate) context: ContextSource,
    pub(crate) dockerfile: Dockerfile,
    pub(crate) target: Option<String>,
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) platforms: Vec<String>,
    pub(crate) no_cache: bool,
    pub(crate) no_cache_stages: Vec<String>,
    pub(crate) shm_size: Option<u64>,
    pub(crate) ulimits: Vec<Ulimit>,
    pub(crate) cgroup_parent: Option<String>,
    pub(crate) annotations: Vec<Annotation>,
    pub(crate) attestations: BTreeMap<AttestKind, Attestation>,
    pub(crate) no_default_attestations: bool,
    pub(crate) pull: bool,
    pub(crate) network: Network,
    pub(crate) extra_hosts: Vec<ExtraHost>,
    pub(crate) contexts: BTreeMap<String, NamedContext>,
    pub(crate) context_builds: BTreeMap<String, usize>,
    pub(crate) tags: Vec<String>,
    pub(crate) outputs: Vec<Output>,
    pub(crate) cache_from: Vec<CacheEntry>,
    pub(crate) cache_to: Vec<CacheEntry>,
    pub(crate) shared_cache: Option<String>,
    pub(crate) cache_env: CacheEnv,
    pub(crate) secrets: Vec<SecretSpec>,
    pub(crate) ssh: Vec<SshSpec>,
    pub(crate) entitlements: Vec<Entitlement>,
    pub(crate) freshness: Freshness,
    pub(crate) registry_auth: Option<DockerConfig>,
    pub(crate) auth_hosts: Vec<String>,
    pub(crate) route_key: Option<String>,
    pub(crate) call: Option<Call>,
    pub(crate) call_fallback: Option<String>,
}

impl Build {
    /// A build of the Dockerfile in `context`, with BuildKit's defaults.
    pub fn new(context: impl Into<PathBuf>) -> Build {
        Build {
            context: ContextSource::Dir(context.into()),
            ..Build::default()
        }
    }

    /// A name for this build in progress output and results (bake's target
    /// name); unnamed builds are numbered.
    pub fn named(mut self, name: impl Into<String>) -> Build {
        self.name = Some(name.into());
        self
    }

    /// The build's name, if it was given one ([`Build::named`]).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What a [`Pool`](crate::pool::Pool) routes this build by, instead of
    /// its registry cache ref or context ([`crate::pool::route_key`]).
    pub fn routed_by(mut self, key: impl Into<String>) -> Build {
        self.route_key = Some(key.into());
        self
    }

    /// The routing key given with [`Build::routed_by`], if any.
    pub fn route_key(&self) -> Option<&str> {
        self.route_key.as_deref()
    }

    /// The Dockerfile's path on disk (`None` for an inline one), as given.
    pub fn dockerfile_file(&self) -> Option<PathBuf> {
        match &self.dockerfile {
            Dockerfile::InContext => Some(self.context().join("Dockerfile")),
            Dockerfile::Path(p) => Some(p.clone()),
            Dockerfile::Inline(_) => None,
        }
    }

    /// Where the Dockerfile comes from (default: `Dockerfile` in the context).
    pub fn dockerfile(mut self, dockerfile: Dockerfile) -> Build {
        self.dockerfile = dockerfile;
        self
    }

    /// The Dockerfile at `path`.
    pub fn dockerfile_path(self, path: impl Into<PathBuf>) -> Build {
        self.dockerfile(Dockerfile::Path(path.into()))
    }

    /// The Dockerfile's text itself.
    pub fn dockerfile_inline(self, text: impl Into<Bytes>) -> Build {
        self.dockerfile(Dockerfile::Inline(text.into()))
    }

    /// Build this stage instead of the last one.
    pub fn target(mut self, stage: impl Into<String>) -> Build {
        self.target = Some(stage.into());
        self
    }

    /// A build argument (`ARG`).
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Build {
        self.build_args.insert(key.into(), value.into());
        self
    }

    /// An image label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Build {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// A target platform (`linux/arm64`); repeat for a multi-platform image.
    pub fn platform(mut self, platform: impl Into<String>) -> Build {
        self.platforms.push(platform.into());
        self
    }

    /// Ignore the build cache for every step.
    pub fn no_cache(mut self, yes: bool) -> Build {
        self.no_cache = yes;
        self
    }

    /// Ignore the build cache for this stage only (repeat for several);
    /// [`Build::no_cache`] ignores it for all.
    pub fn no_cache_stage(mut self, stage: impl Into<String>) -> Build {
        self.no_cache_stages.push(stage.into());
        self
    }

    /// The size of `/dev/shm` in RUN steps, in bytes.
    pub fn shm_size(mut self, bytes: u64) -> Build {
        self.shm_size = Some(bytes);
        self
    }

    /// A resource limit for RUN steps.
    pub fn ulimit(mut self, limit: Ulimit) -> Build {
        self.ulimits.push(limit);
        self
    }

    /// The cgroup RUN steps are placed under.
    pub fn cgroup_parent(mut self, parent: impl Into<String>) -> Build {
        self.cgroup_parent = Some(parent.into());
        self
    }

    /// An annotation on every image the build produces.
    pub fn annotation(mut self, annotation: Annotation) -> Build {
        self.annotations.push(annotation);
        self
    }

    /// An attestation to attach to the images (or, turned off with
    /// [`Attestation::off`], one not to). A later one of the same kind
    /// replaces an earlier one, as with buildx's flags.
    pub fn attest(mut self, attestation: Attestation) -> Build {
        self.attestations.insert(attestation.kind(), attestation);
        self
    }

    /// Whether the build gets buildx's default minimal provenance
    /// attestation when it says nothing about provenance and the daemon can
    /// store attestations (on by default; buildx turns it off with
    /// `BUILDX_NO_DEFAULT_ATTESTATIONS=1`).
    pub fn default_attestations(mut self, yes: bool) -> Build {
        self.no_default_attestations = !yes;
        self
    }

    /// Look for newer base images even when they are cached.
    pub fn pull(mut self, yes: bool) -> Build {
        self.pull = yes;
        self
    }

    /// The network RUN steps get.
    pub fn network(mut self, network: Network) -> Build {
        self.network = network;
        self
    }

    /// An extra `/etc/hosts` entry for RUN steps.
    pub fn extra_host(mut self, host: ExtraHost) -> Build {
        self.extra_hosts.push(host);
        self
    }

    /// An image name; names every image-producing output that has none.
    pub fn tag(mut self, name: impl Into<String>) -> Build {
        self.tags.push(name.into());
        self
    }

    /// An output; all outputs of a build are produced by one solve. With no
    /// output, a tagged build (or any build on a Docker Engine) keeps its
    /// image in the daemon, as buildx does.
    pub fn output(mut self, output: Output) -> Build {
        self.outputs.push(output);
        self
    }

    /// Import build cache from this source.
    pub fn cache_from(mut self, entry: CacheEntry) -> Build {
        self.cache_from.push(entry);
        self
    }

    /// Export build cache to this destination.
    pub fn cache_to(mut self, entry: CacheEntry) -> Build {
        self.cache_to.push(entry);
        self
    }

    /// The shared registry cache: import from `reference` and export every
    /// layer (`mode=max`) to it.
    pub fn cache(mut self, reference: impl Into<String>) -> Build {
        self.shared_cache = Some(reference.into());
        self
    }

    /// What `gha` and `s3` cache entries take from the environment when
    /// they lack it (the Actions cache token and URL, AWS credentials);
    /// default: nothing. [`CacheEnv::from_env`] reads the process's.
    pub fn cache_env(mut self, env: CacheEnv) -> Build {
        self.cache_env = env;
        self
    }

    /// A secret for `RUN --mount=type=secret`; read when the build starts.
    pub fn secret(mut self, secret: SecretSpec) -> Build {
        self.secrets.push(secret);
        self
    }

    /// An SSH agent for `RUN --mount=type=ssh`.
    pub fn ssh(mut self, ssh: SshSpec) -> Build {
        self.ssh.push(ssh);
        self
    }

    /// Ask the daemon for a privilege.
    pub fn allow(mut self, entitlement: Entitlement) -> Build {
        if !self.entitlements.contains(&entitlement) {
            self.entitlements.push(entitlement);
        }
        self
    }

    /// The cache freshness policy for steps that fetch from outside.
    pub fn freshness(mut self, freshness: Freshness) -> Build {
        self.freshness = freshness;
        self
    }

    /// Registry credentials for pulls, pushes and cache; default: the
    /// Docker config of the environment (`DOCKER_CONFIG` or `~/.docker`).
    pub fn registry_auth(mut self, config: DockerConfig) -> Build {
        self.registry_auth = Some(config);
        self
    }

    /// Also send registry credentials for `host` (`registry.example:5000`) when the
    /// daemon asks. By default only the registries the build names get them: the
    /// Dockerfile's images, `docker-image://` contexts, registry caches, push targets
    /// and the SBOM scanner; a request for any other host is answered without
    /// credentials and reported in
    /// [`BuildResult::warnings`](crate::BuildResult::warnings). `"*"` answers for every
    /// host in the Docker config, as buildx does. Needed for images the build pulls
    /// that the client cannot see, e.g. in a Dockerfile inside a remote context.
    pub fn auth_host(mut self, host: impl Into<String>) -> Build {
        self.auth_hosts.push(host.into());
        self
    }

    /// Ask the frontend `call` instead of building (buildx's `--call`):
    /// the build exports nothing, and its
    /// [`BuildResult::call`](crate::BuildResult::call) holds the answer.
    pub fn call(mut self, call: Call) -> Build {
        self.call = Some(call);
        self
    }

    /// The question asked with [`Build::call`], if any.
    pub fn call_asked(&self) -> Option<&Call> {
        self.call.as_ref()
    }

    /// When the daemon's Dockerfile frontend does not know the
    /// [`Build::call`] (Docker Engine 26's has no build checks), ask again
    /// with the frontend image `image` (buildx's fallback:
    /// [`FALLBACK_FRONTEND`](crate::subrequests::FALLBACK_FRONTEND)), which
    /// the daemon pulls. Off by default: the daemon then says which call
    /// its frontend lacks.
    pub fn call_fallback(mut self, image: impl Into<String>) -> Build {
        self.call_fallback = Some(image.into());
        self
    }

    /// The cache imports and exports the build will use, `cache(..)`
    /// expanded (an invalid shared ref is left out: the build reports it).
    pub fn cache_entries(&self) -> (Vec<CacheEntry>, Vec<CacheEntry>) {
        let mut from = Vec::new();
        let mut to = Vec::new();
        if let Some(Ok((i, e))) = self.shared_cache.as_deref().map(CacheEntry::shorthand) {
            from.push(i);
            to.push(e);
        }
        from.extend(self.cache_from.iter().cloned());
        to.extend(self.cache_to.iter().cloned());
        (from, to)
    }
}
