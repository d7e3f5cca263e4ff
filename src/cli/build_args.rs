//! The flags of `rbuild [build]`, as clap reads them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// Build context: a directory (one named like a command: ./info), a git or
    /// HTTP(S) URL, or `-`: a tar archive on stdin, else a Dockerfile from stdin.
    #[arg(value_name = "PATH")]
    pub context: Option<PathBuf>,

    /// The Dockerfile (default: PATH/Dockerfile); `-` reads it from stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Build this stage of the Dockerfile.
    #[arg(long)]
    pub target: Option<String>,

    /// Build-time variable; KEY alone takes its value from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,

    /// Image label.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// Target platform(s), e.g. linux/amd64 (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', value_name = "OS/ARCH")]
    pub platform: Vec<String>,

    /// Do not use the build cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Do not use the build cache for these stages (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,

    /// Size of /dev/shm in RUN steps (64m, 2g).
    #[arg(long, value_name = "SIZE")]
    pub shm_size: Option<String>,

    /// Resource limit for RUN steps: NAME=SOFT[:HARD] (repeatable).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub ulimits: Vec<String>,

    /// Parent cgroup of RUN steps.
    #[arg(long, value_name = "CGROUP")]
    pub cgroup_parent: Option<String>,

    /// Image annotation: [index:|manifest:|manifest-descriptor:|index-descriptor:]KEY=VALUE.
    #[arg(long = "annotation", value_name = "[LEVEL:]KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Extra privileges: network.host, security.insecure (repeatable).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,

    /// Attestation: type=provenance[,mode=min|max] | type=sbom[,generator=IMAGE] (repeatable).
    #[arg(long = "attest", value_name = "type=TYPE[,...]")]
    pub attest: Vec<String>,

    /// Provenance attestation: true, false, or mode=min|max[,builder-id=URL]
    /// (shorthand for --attest=type=provenance; min is on by default).
    #[arg(long, value_name = "true|false|mode=...")]
    pub provenance: Option<String>,

    /// SBOM attestation: true, false, or generator=IMAGE (shorthand for
    /// --attest=type=sbom).
    #[arg(long, value_name = "true|false|generator=...")]
    pub sbom: Option<String>,

    /// Always look for newer versions of base images.
    #[arg(long)]
    pub pull: bool,

    /// Network for RUN steps.
    #[arg(long, value_enum)]
    pub network: Option<Network>,

    /// Extra /etc/hosts entry for RUN steps.
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,

    /// Extra named build context: NAME=DIR | NAME=docker-image://REF |
    /// NAME=oci-layout://DIR[:TAG|@DIGEST] | NAME=GIT_URL | NAME=https://URL.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,

    /// Image name and tag (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,

    /// Push the tagged image to its registry (shorthand for -o type=registry).
    #[arg(long)]
    pub push: bool,

    /// Load the image into the Docker Engine (shorthand for -o type=docker).
    /// On an engine's own BuildKit the image is stored there directly.
    #[arg(long)]
    pub load: bool,

    /// Output (repeatable, all in one solve): type=image|registry|tar|oci|docker|local
    /// with dest=FILE|DIR|- and exporter options; a bare PATH means type=local, `-` a tar
    /// on stdout.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,

    /// Import build cache: type=registry,ref=REF | type=local,src=DIR | a bare REF.
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,

    /// Export build cache: type=registry,ref=REF[,mode=min|max,...] | type=local,dest=DIR |
    /// type=inline | a bare REF.
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,

    /// Secret for RUN --mount=type=secret (repeatable): id=ID,src=FILE | id=ID,env=VAR |
    /// type=env|file,id=ID[,src=...]; read before the build starts.
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,

    /// SSH agent for RUN --mount=type=ssh (repeatable): `default` (SSH_AUTH_SOCK),
    /// ID=SOCKET, or ID=KEYFILE[,KEYFILE] (unencrypted OpenSSH keys, served in-process).
    #[arg(long = "ssh", value_name = "ID[=SOCKET|KEYFILE,...]")]
    pub ssh: Vec<String>,

    /// Shared registry cache: import from REF and export all layers (mode=max) to it,
    /// best-effort (a cache that cannot be read or written only warns).
    #[arg(long, value_name = "REF")]
    pub cache: Option<String>,

    /// Also send the Docker config's credentials for registry HOST when the daemon asks
    /// (repeatable). By default only the registries the build names get them (its
    /// images, contexts, caches, push targets, SBOM scanner); `*` sends them for every
    /// host, as buildx does.
    #[arg(long = "auth-host", value_name = "HOST")]
    pub auth_hosts: Vec<String>,

    /// With several daemons (a pool): route the build by KEY instead of its
    /// registry cache ref, git remote and path, or context path.
    #[arg(long, value_name = "KEY")]
    pub route_key: Option<String>,

    /// Write the build result metadata (buildx-compatible JSON) to FILE.
    #[arg(long, value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Write the end-of-build report (steps, cache hits, context upload, cache
    /// sources, each refreshed step's key and upstreams) as JSON to FILE, for CI
    /// dashboards; written for failed builds too.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write the image id (config digest) to FILE.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Renew the cache of steps that fetch from outside (git clone, curl, apt-get update, ...)
    /// once per DURATION window (30s, 90m, 6h, 7d); `rbuild check` lists them. A
    /// `# rbuild:refresh=6h|never` comment above a step overrides it for that step.
    #[arg(long, value_name = "DURATION", value_parser = rbuild::dockerfile::parse_duration)]
    pub refresh_every: Option<Duration>,

    /// Start a new refresh window now for those steps (this build only).
    #[arg(long)]
    pub refresh: bool,

    /// Key the cache of steps that fetch from outside by what their upstream is now:
    /// the commit of a cloned branch (git ls-remote), a downloaded URL's ETag (HTTP
    /// HEAD). They re-run exactly when it moved. An upstream that cannot be looked up
    /// falls back to the --refresh-every window (default 24h), with a warning. A
    /// `# rbuild:refresh=upstream` comment above a step does this for that step.
    #[arg(long)]
    pub refresh_upstream: bool,

    /// Progress output: auto (tty on a terminal, else plain), tty, plain,
    /// rawjson, quiet.
    #[arg(long, env = "BUILDKIT_PROGRESS", value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,

    /// Print only the image id (same as --progress quiet).
    #[arg(short, long)]
    pub quiet: bool,

    /// Print the Solve request as JSON (frontend options, exporters, cache
    /// entries; credentials redacted) and build nothing.
    #[arg(long)]
    pub print_request: bool,

    /// Ask the Dockerfile frontend instead of building: check (the build
    /// checks; exits 1 with warnings), outline (build args, secrets, SSH),
    /// targets (the stages); `,format=json` prints the frontend's JSON,
    /// `,ignorestatus=true` exits 0 anyway.
    #[arg(long, value_name = "NAME[,format=json]")]
    pub call: Option<String>,

    /// Shorthand for --call=check.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub check: Option<String>,

    /// When the daemon's Dockerfile frontend lacks the call (Docker Engine
    /// 26's has no checks), ask again with a newer frontend image that the
    /// daemon pulls, as buildx does (default IMAGE: docker/dockerfile:1.8.1,
    /// pinned by digest).
    #[arg(long, num_args = 0..=1, require_equals = true, value_name = "IMAGE",
          default_missing_value = rbuild::subrequests::FALLBACK_FRONTEND)]
    pub call_fallback: Option<String>,

    #[command(flatten)]
    pub legacy: super::legacy::LegacyArgs,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum ProgressArg {
    #[default]
    Auto,
    Tty,
    Plain,
    Rawjson,
    Quiet,
    /// Nothing at all, not even the image id.
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Network {
    Default,
    None,
    Host,
}
