//! The `rbuild` binary: parse flags, install diagnostics, run, map errors to
//! exit codes. Everything else lives in the library and `cli`.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match cli::plugin::invocation(&argv) {
        Some(cli::plugin::Invocation::Metadata) => {
            let _ = writeln!(std::io::stdout(), "{}", cli::plugin::metadata());
            return ExitCode::SUCCESS;
        }
        Some(cli::plugin::Invocation::Run { args, addr }) => {
            let mut cli = cli::Cli::parse_args(args);
            // The Docker context's engine, unless the user named a daemon
            // some other way (a flag, or the environment the library reads).
            let named = |var| std::env::var_os(var).is_some_and(|v| !v.is_empty());
            if cli.global.addr.is_empty()
                && cli.global.builder.is_none()
                && !named("BUILDKIT_HOST")
                && !named("BUILDX_BUILDER")
            {
                cli.global.addr = addr.and_then(|a| a.parse().ok()).into_iter().collect();
            }
            cli
        }
        None => cli::Cli::parse_args(argv),
    };
    init_tracing(cli.global.debug);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Ignored if stderr is gone: the exit code still tells.
            let _ = writeln!(
                std::io::stderr(),
                "error: {}",
                rbuild::error_chain(e.as_ref())
            );
            ExitCode::from(1)
        }
    }
}

/// `RBUILD_LOG` (an env-filter spec) or `--debug` turn on developer logs on
/// stderr; users see only progress and errors otherwise.
fn init_tracing(debug: bool) {
    let filter = match std::env::var("RBUILD_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::new(spec),
        _ if debug => EnvFilter::new("rbuild=debug"),
        _ => EnvFilter::new("off"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its own complaint about a failed write goes through eprintln!,
        // which panics when stderr is a closed pipe.
        .log_internal_errors(false)
        .with_target(false)
        .init();
}
