//! The command line: clap structs, then one function per command that turns
//! flags into library calls. Only this module and `main` print.

mod bake;
mod build;
mod build_args;
mod cache;
mod call;
mod check;
mod check_upstreams;
mod dial;
mod flags;
mod github;
mod info;
mod legacy;
mod plan;
pub mod plugin;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use rbuild::connect::TlsConfig;
use rbuild::connect::builder::BuilderError;
use rbuild::pool::{Nodes, SelectError, Selection};
use rbuild::{Address, ConnectOptions};

/// A native BuildKit client: build Dockerfiles with a shared registry layer cache.
///
/// `rbuild [OPTIONS] PATH` builds PATH like `rbuild build [OPTIONS] PATH`; a
/// context named like a command is given as `./info`.
#[derive(Debug, Parser)]
#[command(name = "rbuild", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses argv, reading `rbuild [OPTIONS] PATH` as `rbuild build [OPTIONS]
    /// PATH`: when the arguments do not start a command, they are tried as
    /// build arguments. Exits with clap's message on a usage error.
    pub fn parse_args(args: Vec<std::ffi::OsString>) -> Cli {
        use clap::error::ErrorKind;
        match Cli::try_parse_from(&args) {
            Ok(cli) => cli,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::InvalidSubcommand
                        | ErrorKind::UnknownArgument
                        | ErrorKind::MissingSubcommand
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) && args.len() > 1 =>
            {
                let mut with_build = args.clone();
                with_build.insert(1, "build".into());
                Cli::try_parse_from(with_build).unwrap_or_else(|e| e.exit())
            }
            Err(e) => e.exit(),
        }
    }
}

/// Options every command takes, before or after the command name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// BuildKit address: unix:///PATH, tcp://HOST:PORT, docker:///ENGINE.sock,
    /// docker-container://NAME or ssh://[USER@]HOST[:PORT][/SOCKET] (the
    /// remote command: RBUILD_SSH_REMOTE_COMMAND, default `buildctl dial-stdio`).
    /// Default: the Docker Engine socket when it exists, else
    /// unix:///run/buildkit/buildkitd.sock. Repeat it (or separate addresses
    /// with commas in BUILDKIT_HOST) for a pool: each build goes to one node,
    /// chosen by its route key. A flag wins over BUILDX_BUILDER and
    /// BUILDKIT_HOST.
    #[arg(long, global = true, value_name = "ADDR", value_delimiter = ',')]
    pub addr: Vec<Address>,

    /// A builder by name: one of the builders file (RBUILD_BUILDERS, else
    /// ~/.config/rbuild/builders.hcl), else of the Docker config's buildx
    /// store (its remote, docker-container or docker nodes). Several nodes
    /// are a pool. Env: BUILDX_BUILDER, which wins over BUILDKIT_HOST; the
    /// flag wins over both.
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "addr")]
    pub builder: Option<String>,

    /// Seconds to wait for the daemon to answer a new connection.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 4)]
    pub connect_timeout: u64,

    /// Seconds between HTTP/2 pings while a call runs; a ping unanswered for
    /// 20 s fails the build instead of waiting on a hung daemon. 0 = no pings.
    #[arg(long, global = true, value_name = "SECS", default_value_t = 30)]
    pub keepalive: u64,

    /// CA certificate (PEM) a tcp:// daemon's TLS certificate must chain to.
    /// Any --tls* flag turns TLS on; without this one the system's roots are used.
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,

    /// Client certificate (PEM) for a daemon that requires mTLS; needs --tlskey.
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,

    /// Private key (PEM) of --tlscert.
    #[arg(long, global = true, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,

    /// Name the daemon's certificate must be valid for (default: the address host).
    #[arg(long, global = true, value_name = "NAME")]
    pub tlsservername: Option<String>,

    /// Directory with ca.pem|ca.crt, cert.pem|tls.crt and key.pem|tls.key, as buildctl reads it.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        value_parser = parse_tlsdir,
        conflicts_with_all = ["tlscacert", "tlscert", "tlskey"]
    )]
    pub tlsdir: Option<TlsConfig>,

    /// Developer diagnostics on stderr (same as RBUILD_LOG=debug).
    #[arg(long, global = true)]
    pub debug: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a Dockerfile (the default command).
    Build(Box<build::BuildArgs>),
    /// Build the targets of a bake file (docker-bake.hcl / .json) together.
    Bake(Box<bake::BakeArgs>),
    /// Show the daemon's BuildKit version and workers.
    Info(info::InfoArgs),
    /// List the Dockerfile's steps that fetch from outside and their refresh policy.
    Check(check::CheckArgs),
    /// Registry cache housekeeping: ls, du, prune.
    ///
    /// REPO is HOST[:PORT]/PATH: HTTPS (verified against the system's roots,
    /// SSL_CERT_FILE, and --ca-file), except plain HTTP for a loopback host;
    /// write https://HOST/PATH or http://HOST/PATH to choose. Credentials
    /// come from the Docker config ($DOCKER_CONFIG or ~/.docker: `auths` or
    /// a credential helper) and are sent only when the registry asks: as
    /// Basic auth, or for a token with the scope `pull` (ls, du) or
    /// `pull,push,delete` (prune --yes). Deleting needs a registry that
    /// allows deletes (distribution: `storage.delete.enabled: true`).
    #[command(subcommand)]
    Cache(cache::CacheCommand),
    /// Bridge stdin/stdout to the daemon, as `buildctl dial-stdio` (for
    /// docker-container:// and ssh:// clients).
    DialStdio(dial::DialStdioArgs),
    /// Print a shell completion script: rbuild completion bash|zsh|fish.
    Completion(CompletionArgs),
    /// Print the man page (roff): rbuild man > rbuild.1
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

impl GlobalArgs {
    /// The one daemon and how to connect, for commands that talk to one.
    pub fn endpoint(&self) -> anyhow::Result<(Address, ConnectOptions)> {
        match self.nodes()? {
            Nodes::One(addr, opts) => Ok((addr, *opts)),
            Nodes::Pool(nodes) => anyhow::bail!(
                "this command talks to one daemon, but {} are given ({}); give one --addr",
                nodes.len(),
                nodes
                    .iter()
                    .map(|n| n.address.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => anyhow::bail!("this kind of builder is not supported here"),
        }
    }

    /// The daemon or the pool the flags name.
    pub fn nodes(&self) -> anyhow::Result<Nodes> {
        let selection = self
            .addr
            .iter()
            .fold(Selection::new(self.connect_options()), |s, a| {
                s.addr(a.clone())
            });
        let selection = match &self.builder {
            Some(name) => selection.builder(name),
            None => selection,
        };
        selection.resolve().map_err(|e| {
            let e = match e {
                SelectError::Env(_) => return anyhow::Error::new(e),
                SelectError::Store(BuilderError::UnsupportedDriver { name, driver, .. }) => {
                    anyhow::anyhow!(
                        "buildx builder {name:?}: the {driver} driver is not supported \
                         (use --addr with the daemon's address)"
                    )
                }
                e => anyhow::Error::new(e),
            };
            match self.builder {
                Some(_) => anyhow::anyhow!("--builder: {e}"),
                None => e,
            }
        })
    }

    pub fn connect_options(&self) -> ConnectOptions {
        let tls = match &self.tlsdir {
            Some(dir) => Some(dir.clone()),
            None if self.tlscacert.is_some()
                || self.tlscert.is_some()
                || self.tlskey.is_some()
                || self.tlsservername.is_some() =>
            {
                Some(TlsConfig {
                    ca: self.tlscacert.clone(),
                    cert: self.tlscert.clone(),
                    key: self.tlskey.clone(),
                    server_name: None,
                })
            }
            None => None,
        }
        .map(|tls| TlsConfig {
            server_name: self.tlsservername.clone(),
            ..tls
        });
        // RBUILD_SSH_COMMAND and RBUILD_SSH_REMOTE_COMMAND are read by the
        // transport itself, for every path that connects.
        ConnectOptions::default()
            .timeout(Duration::from_secs(self.connect_timeout.max(1)))
            .tls(tls)
            .keepalive((self.keepalive > 0).then(|| Duration::from_secs(self.keepalive)))
    }
}

/// Writes a line to stderr. A reader that went away (`rbuild … 2>&1 | head`)
/// must not turn a finished build into a panic, so write errors are dropped.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// [`say`] for stdout.
pub(crate) fn say_out(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// Progress output that outlives its reader: after a broken pipe it
/// discards, so the build (push, exports, report) still completes and its
/// exit code still says how it went.
pub(crate) struct Lenient<W> {
    inner: W,
    closed: bool,
}

impl<W> Lenient<W> {
    pub(crate) fn new(inner: W) -> Self {
        Lenient {
            inner,
            closed: false,
        }
    }

    fn absorb<T>(&mut self, result: std::io::Result<T>, done: T) -> std::io::Result<T> {
        match result {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                tracing::debug!("progress reader went away; output discarded from here");
                self.closed = true;
                Ok(done)
            }
            other => other,
        }
    }
}

impl<W: std::io::Write> std::io::Write for Lenient<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        let result = self.inner.write(buf);
        self.absorb(result, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        let result = self.inner.flush();
        self.absorb(result, ())
    }
}

/// Connects to the daemon the global flags name; errors get the flag that
/// would fix them.
pub(crate) async fn connect(global: &GlobalArgs) -> anyhow::Result<rbuild::Client> {
    let (addr, opts) = global.endpoint()?;
    connect_to(addr, &opts).await
}

/// The pool the global flags name; a lone daemon is connected here, so its
/// failure reads as it always did.
pub(crate) async fn pool(global: &GlobalArgs) -> anyhow::Result<rbuild::pool::Pool> {
    match global.nodes()? {
        Nodes::One(addr, opts) => Ok(rbuild::pool::Pool::of_client(
            connect_to(addr, &opts).await?,
        )),
        Nodes::Pool(nodes) => Ok(rbuild::pool::Pool::new(nodes)?),
        _ => anyhow::bail!("this kind of builder is not supported"),
    }
}

async fn connect_to(addr: Address, opts: &ConnectOptions) -> anyhow::Result<rbuild::Client> {
    use rbuild::ConnectError;
    rbuild::Client::connect(addr, opts)
        .await
        .map_err(|e| match e {
            ConnectError::NoSocket { addr, path } => anyhow::anyhow!(
                "cannot connect to BuildKit at {addr}: no socket at {path} \
                 (is the daemon running? set --addr or BUILDKIT_HOST)"
            ),
            ConnectError::Tls {
                addr,
                detail,
                check: Some(check),
            } => {
                use rbuild::connect::TlsCheck;
                let flags = match check {
                    TlsCheck::CaCert => "--tlscacert",
                    TlsCheck::ServerName => "--tlsservername",
                    TlsCheck::ClientCert => "--tlscert and --tlskey",
                };
                anyhow::anyhow!(
                    "cannot connect to BuildKit at {addr}: TLS handshake failed: {detail} (check {flags})"
                )
            }
            e @ ConnectError::TlsUnsupported { .. } => {
                anyhow::anyhow!("{e} (--tlscacert, --tlscert, --tlskey, --tlsservername, --tlsdir)")
            }
            e => e.into(),
        })
}

/// `--tlsdir`: read when parsed, so a wrong directory is a usage error.
fn parse_tlsdir(dir: &str) -> Result<TlsConfig, String> {
    TlsConfig::from_dir(std::path::Path::new(dir)).map_err(|e| e.to_string())
}

/// Runs the parsed command; the returned code is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Build(args) => build::run(&cli.global, *args).await,
        Command::Bake(args) => bake::run(&cli.global, *args).await,
        Command::Info(args) => info::run(&cli.global, args).await,
        Command::Check(args) => check::run(args).await,
        Command::Cache(cmd) => cache::run(&cli.global, cmd).await,
        Command::DialStdio(args) => dial::run(&cli.global, args).await,
        Command::Completion(args) => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            let mut out = Lenient::new(std::io::stdout());
            clap_complete::generate(args.shell, &mut cmd, "rbuild", &mut out);
            Ok(0)
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut out = Lenient::new(std::io::stdout());
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            Ok(0)
        }
    }
}
