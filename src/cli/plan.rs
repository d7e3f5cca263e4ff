//! `rbuild build` flags -> [`BuildPlan`]: every user mistake is found here,
//! before the daemon is contacted.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use bytes::Bytes;
use rbuild::Address;
use rbuild::cache::CacheEntry;
use rbuild::dockerfile::Rewritten;
use rbuild::output::{self, Daemon, OutputFlags};
use rbuild::session::secrets::{self, SecretSpec};
use rbuild::session::sshforward::{self, SshSpec};
use rbuild::solve::{BuildPlan, DockerfileSource};

use super::build::{BuildArgs, Network};
use super::flags;

/// Resolves the flags into a plan; every user mistake is reported here,
/// before connecting.
pub fn plan(args: &BuildArgs, addr: &Address) -> anyhow::Result<(BuildPlan, Option<Rewritten>)> {
    let context = args
        .context
        .as_deref()
        .context("no build context given: rbuild [OPTIONS] PATH (try `rbuild .`)")?;
    let context = existing_dir(context)?;
    let dockerfile = dockerfile_source(args.file.as_deref(), &context)?;
    let (dockerfile, rewritten) = refresh_policy(args, dockerfile)?;

    let mut attrs = BTreeMap::new();
    if let Some(target) = &args.target {
        attrs.insert("target".to_string(), target.clone());
    }
    for (k, v) in flags::build_args(&args.build_args, |k| std::env::var(k).ok())? {
        attrs.insert(format!("build-arg:{k}"), v);
    }
    for (k, v) in flags::labels(&args.labels)? {
        attrs.insert(format!("label:{k}"), v);
    }
    if !args.platform.is_empty() {
        attrs.insert("platform".to_string(), args.platform.join(","));
    }
    if args.no_cache {
        // Empty means every stage.
        attrs.insert("no-cache".to_string(), String::new());
    }
    if args.pull {
        attrs.insert("image-resolve-mode".to_string(), "pull".to_string());
    }
    let mut entitlements = Vec::new();
    match args.network {
        None | Some(Network::Default) => {}
        Some(Network::None) => {
            attrs.insert("force-network-mode".to_string(), "none".to_string());
        }
        Some(Network::Host) => {
            attrs.insert("force-network-mode".to_string(), "host".to_string());
            entitlements.push("network.host".to_string());
        }
    }
    if !args.add_hosts.is_empty() {
        attrs.insert("add-hosts".to_string(), flags::add_hosts(&args.add_hosts)?);
    }
    let mut named_contexts = BTreeMap::new();
    for (name, dir) in flags::build_contexts(&args.build_contexts)? {
        named_contexts.insert(name, existing_dir(&dir)?);
    }

    let daemon = match addr {
        Address::Docker(_) => Daemon::Engine,
        _ => Daemon::Buildkitd,
    };
    let exports = output::resolve(
        &OutputFlags {
            outputs: args.outputs.clone(),
            tags: args.tags.clone(),
            push: args.push,
            load: args.load,
        },
        daemon,
    )?;
    output::check_destinations(&exports)?;
    let (cache_imports, cache_exports) = cache_entries(args)?;

    let engine = match &addr {
        Address::Docker(socket) => rbuild::engine::Engine::new(socket.clone()),
        // --load goes to the engine that runs the builder container.
        Address::DockerContainer { engine, .. } => rbuild::engine::Engine::new(engine.clone()),
        _ => rbuild::engine::Engine::new(rbuild::connect::docker_socket_from_env()),
    };
    let secret_specs = args
        .secrets
        .iter()
        .map(|s| SecretSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let secrets = secrets::load(&secret_specs)?;
    let ssh_specs = args
        .ssh
        .iter()
        .map(|s| SshSpec::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let ssh = sshforward::load(&ssh_specs)?;
    let docker_config = rbuild::session::auth::DockerConfig::load()?;
    let plan = BuildPlan {
        docker_config,
        secrets,
        ssh,
        engine,
        shared_key: flags::shared_key(&context),
        context,
        dockerfile,
        frontend_attrs: attrs,
        named_contexts,
        exports,
        cache_imports,
        cache_exports,
        entitlements,
    };
    Ok((plan, rewritten))
}

/// Applies the freshness policy (`--refresh-every`, `--refresh`, and
/// `# rbuild:refresh=` directives): when a step is to be renewed, the
/// frontend gets a rewritten Dockerfile from memory; the user's file is
/// never touched.
fn refresh_policy(
    args: &BuildArgs,
    dockerfile: DockerfileSource,
) -> anyhow::Result<(DockerfileSource, Option<Rewritten>)> {
    let (name, bytes) = match &dockerfile {
        DockerfileSource::File { dir, filename } => {
            let path = dir.join(filename);
            let data = std::fs::read(&path)
                .with_context(|| format!("cannot read Dockerfile {}", path.display()))?;
            (path.display().to_string(), Bytes::from(data))
        }
        DockerfileSource::Inline(data) => ("Dockerfile (stdin)".to_string(), data.clone()),
    };
    let asked = args.refresh_every.is_some() || args.refresh;
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => text,
        Err(_) if asked => {
            bail!("Dockerfile {name} is not UTF-8 text: cannot apply --refresh-every/--refresh")
        }
        // Nothing asked for: the frontend reads the file as it is.
        Err(_) => return Ok((dockerfile, None)),
    };
    let rewritten =
        rbuild::dockerfile::prepare(text, args.refresh_every, args.refresh, SystemTime::now())
            .with_context(|| format!("Dockerfile {name}"))?;
    Ok(match rewritten {
        Some(r) => (
            DockerfileSource::Inline(Bytes::from(r.text.clone())),
            Some(r),
        ),
        None => (dockerfile, None),
    })
}

fn cache_entries(args: &BuildArgs) -> anyhow::Result<(Vec<CacheEntry>, Vec<CacheEntry>)> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    if let Some(reference) = &args.cache {
        let (import, export) = CacheEntry::shorthand(reference)?;
        imports.push(import);
        exports.push(export);
    }
    for spec in &args.cache_from {
        imports.push(CacheEntry::import(spec)?);
    }
    for spec in &args.cache_to {
        exports.push(CacheEntry::export(spec)?);
    }
    Ok((imports, exports))
}

fn existing_dir(path: &Path) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(path).with_context(|| {
        format!(
            "build context {} does not exist (give the directory to build)",
            path.display()
        )
    })?;
    if !meta.is_dir() {
        bail!("build context {} is not a directory", path.display());
    }
    std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve build context {}", path.display()))
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

fn dockerfile_source(file: Option<&Path>, context: &Path) -> anyhow::Result<DockerfileSource> {
    let path = match locate_dockerfile(file, context)? {
        DockerfileInput::Stdin(data) => return Ok(DockerfileSource::Inline(Bytes::from(data))),
        DockerfileInput::File(path) => path,
    };
    let path = std::fs::canonicalize(&path)
        .with_context(|| format!("cannot resolve Dockerfile {}", path.display()))?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        bail!("Dockerfile {} has no file name", path.display());
    };
    Ok(DockerfileSource::File {
        dir: dir.to_path_buf(),
        filename: name.to_string_lossy().into_owned(),
    })
}
