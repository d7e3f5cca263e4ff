//! `rbuild build` flags -> [`Build`]: the flags' own syntax is checked here;
//! everything else about the build is the library's to check.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rbuild::buildspec::{AttestKind, Attestation, ContextInput, ExtraHost, Freshness};
use rbuild::cache::CacheEnv;
use rbuild::session::SecretSpec;
use rbuild::session::SshSpec;
use rbuild::{Build, CacheEntry, Dockerfile, Output};

use super::build_args::{BuildArgs, Network};
use super::flags;

/// Turns the build flags into a [`Build`]. Mistakes in a flag's own syntax
/// are reported here with the flag's name.
pub fn build_from_flags(args: &BuildArgs) -> anyhow::Result<Build> {
    let context = args
        .context
        .as_deref()
        .context("no build context given: rbuild [OPTIONS] PATH (try `rbuild .`)")?;
    let mut build = if context == Path::new("-") {
        stdin_context(args.file.as_deref())?
    } else {
        let build = match remote_url(context) {
            Some(url) => Build::remote(url),
            None => Build::new(context),
        };
        // The library checks the context before the Dockerfile; only stdin
        // is the CLI's to read.
        match args.file.as_deref() {
            Some(p) if p == Path::new("-") => match locate_dockerfile(Some(p), context)? {
                DockerfileInput::Stdin(data) => build.dockerfile(Dockerfile::Inline(data.into())),
                DockerfileInput::File(path) => build.dockerfile_path(path),
            },
            Some(p) => build.dockerfile_path(p),
            None => build,
        }
    };
    if let Some(target) = &args.target {
        build = build.target(target);
    }
    if let Some(key) = &args.route_key {
        build = build.routed_by(key);
    }
    for (k, v) in flags::build_args(&args.build_args, |k| std::env::var(k).ok())? {
        build = build.build_arg(k, v);
    }
    for (k, v) in flags::labels(&args.labels)? {
        build = build.label(k, v);
    }
    for p in &args.platform {
        build = build.platform(p);
    }
    build = build.no_cache(args.no_cache).pull(args.pull);
    for stage in &args.no_cache_filter {
        build = build.no_cache_stage(stage);
    }
    if let Some(size) = &args.shm_size {
        let bytes =
            rbuild::buildspec::parse_size(size).map_err(|e| anyhow::anyhow!("--shm-size {e}"))?;
        build = build.shm_size(bytes);
    }
    for u in &args.ulimits {
        let limit: rbuild::buildspec::Ulimit =
            u.parse().map_err(|e| anyhow::anyhow!("--ulimit {e}"))?;
        build = build.ulimit(limit);
    }
    if let Some(parent) = &args.cgroup_parent {
        build = build.cgroup_parent(parent);
    }
    for a in &args.annotations {
        let annotation: rbuild::buildspec::Annotation =
            a.parse().map_err(|e| anyhow::anyhow!("--annotation {e}"))?;
        build = build.annotation(annotation);
    }
    for e in &args.allow {
        build = build.allow(e.parse().map_err(|e| anyhow::anyhow!("--allow: {e}"))?);
    }
    for a in &args.attest {
        build = build.attest(Attestation::parse(a).map_err(|e| anyhow::anyhow!("--attest: {e}"))?);
    }
    // buildx appends the shorthands after --attest, so they win.
    for (kind, value) in [
        (AttestKind::Provenance, &args.provenance),
        (AttestKind::Sbom, &args.sbom),
    ] {
        if let Some(value) = value {
            let a = Attestation::shorthand(kind, value)
                .map_err(|e| anyhow::anyhow!("--{kind}: {e}"))?;
            build = build.attest(a);
        }
    }
    build = build.default_attestations(default_attestations()?);
    build = build.network(match args.network {
        None | Some(Network::Default) => rbuild::Network::Default,
        Some(Network::None) => rbuild::Network::None,
        Some(Network::Host) => rbuild::Network::Host,
    });
    for h in &args.add_hosts {
        let host: ExtraHost = h
            .parse()
            .map_err(|_| anyhow::anyhow!("--add-host {h:?}: expected HOST:IP, e.g. db:10.0.0.5"))?;
        build = build.extra_host(host);
    }
    for (name, source) in flags::build_contexts(&args.build_contexts)? {
        build = build.named_context_source(name, source);
    }
    for t in &args.tags {
        build = build.tag(t);
    }
    // The solve runs the exporters in this order: -o values, --push, --load.
    for o in &args.outputs {
        build = build.output(Output::parse(o).map_err(flags::spec_error)?);
    }
    if args.push {
        build = build.output(Output::registry());
    }
    if args.load {
        build = build.output(Output::load());
    }
    if let Some(reference) = &args.cache {
        // Checked here so the message names --cache; the library checks again.
        CacheEntry::shorthand(reference).map_err(flags::spec_error)?;
        build = build.cache(reference);
    }
    for spec in &args.cache_from {
        build = build.cache_from(CacheEntry::import(spec).map_err(flags::spec_error)?);
    }
    for spec in &args.cache_to {
        build = build.cache_to(CacheEntry::export(spec).map_err(flags::spec_error)?);
    }
    // The one place the environment's cache credentials are read.
    build = build.cache_env(CacheEnv::from_env());
    for spec in &args.secrets {
        let secret = SecretSpec::parse(spec).map_err(|e| anyhow::anyhow!("--{e}"))?;
        build = build.secret(secret);
    }
    for spec in &args.ssh {
        let ssh = SshSpec::parse(spec).map_err(|e| anyhow::anyhow!("--{e}"))?;
        build = build.ssh(ssh);
    }
    for host in &args.auth_hosts {
        build = build.auth_host(host);
    }
    if let Some(call) = super::call::spec(args.call.as_deref(), args.check.as_deref())?.call {
        build = build.call(call);
    }
    if let Some(image) = &args.call_fallback {
        build = build.call_fallback(image);
    }
    Ok(build.freshness(Freshness {
        every: args.refresh_every,
        now: args.refresh,
        upstream: args.refresh_upstream,
    }))
}

/// PATH `-`, as buildx reads it: a tar archive on stdin is the context
/// (`-f` then names a file inside it), anything else is the Dockerfile,
/// built with an empty context.
fn stdin_context(file: Option<&Path>) -> anyhow::Result<Build> {
    use std::io::IsTerminal;
    if file == Some(Path::new("-")) {
        bail!("stdin cannot be both the build context (PATH -) and the Dockerfile (-f -)");
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!(
            "PATH - reads the build context from stdin: pipe a tar archive or a Dockerfile into rbuild"
        );
    }
    let input = ContextInput::detect(stdin).context("cannot read the build context from stdin")?;
    match (input, file) {
        (input @ ContextInput::Archive(_), Some(f)) => {
            Ok(Build::from_input(input).dockerfile_path(f))
        }
        (ContextInput::Dockerfile(_), Some(f)) => bail!(
            "stdin holds a Dockerfile and -f names {} too: pipe a tar archive to use -f with PATH -",
            f.display()
        ),
        (input, None) => Ok(Build::from_input(input)),
    }
}

/// A context the daemon fetches, as buildx recognises one: a git URL
/// (`git://`, `git@`, `ssh://`, `github.com/...`) or an HTTP(S) URL.
fn remote_url(context: &Path) -> Option<String> {
    let s = context.to_str()?;
    let remote = [
        "git://",
        "git@",
        "ssh://",
        "http://",
        "https://",
        "github.com/",
    ]
    .iter()
    .any(|p| s.starts_with(p));
    remote.then(|| s.to_string())
}

/// Where the Dockerfile comes from, checked: shared by `build` and `check`.
pub(super) enum DockerfileInput {
    /// `-f -`: the whole of standard input.
    Stdin(Vec<u8>),
    /// An existing regular file.
    File(PathBuf),
}

/// `-` is stdin, else FILE, else PATH/Dockerfile; a missing or non-regular
/// file is a clear error.
pub(super) fn locate_dockerfile(
    file: Option<&Path>,
    context: &Path,
) -> anyhow::Result<DockerfileInput> {
    let path = match file {
        Some(p) if p == Path::new("-") => {
            let mut data = Vec::new();
            std::io::stdin()
                .read_to_end(&mut data)
                .context("cannot read the Dockerfile from stdin")?;
            return Ok(DockerfileInput::Stdin(data));
        }
        Some(p) => p.to_path_buf(),
        None => context.join("Dockerfile"),
    };
    let meta = std::fs::metadata(&path).with_context(|| {
        format!(
            "no Dockerfile at {} (use -f to name another file)",
            path.display()
        )
    })?;
    if !meta.is_file() {
        bail!("Dockerfile {} is not a regular file", path.display());
    }
    Ok(DockerfileInput::File(path))
}

/// buildx's `BUILDX_NO_DEFAULT_ATTESTATIONS`: set to a true boolean, no
/// provenance is added unless asked for.
pub(crate) fn default_attestations() -> anyhow::Result<bool> {
    let Ok(value) = std::env::var("BUILDX_NO_DEFAULT_ATTESTATIONS") else {
        return Ok(true);
    };
    match value.as_str() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(false),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(true),
        other => anyhow::bail!(
            "BUILDX_NO_DEFAULT_ATTESTATIONS={other:?}: use 1 or true to turn the default provenance off, 0 or false to keep it"
        ),
    }
}

/// buildx's `BUILDX_METADATA_PROVENANCE`: `min` (the default), `max`, or
/// `disabled`/a false boolean; anything else means the default, as in buildx.
pub(crate) fn metadata_provenance() -> rbuild::outcome::MetadataProvenance {
    use rbuild::outcome::MetadataProvenance as M;
    match std::env::var("BUILDX_METADATA_PROVENANCE").as_deref() {
        Ok("max") => M::Max,
        Ok("disabled" | "0" | "f" | "F" | "false" | "FALSE" | "False") => M::Off,
        _ => M::Min,
    }
}
