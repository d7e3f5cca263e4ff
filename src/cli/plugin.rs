//! Running as a docker CLI plugin: installed as `docker-rbuild` in a
//! `cli-plugins` directory, `docker rbuild build ...` runs rbuild. The CLI
//! first asks `docker-rbuild docker-cli-plugin-metadata`, then runs
//! `docker-rbuild [DOCKER GLOBAL FLAGS] rbuild ARGS...`; the daemon is the
//! one the CLI would use: `-H`, else `--context`/the current context (asked
//! of the CLI itself), else `DOCKER_HOST`.

use std::ffi::OsString;
use std::path::Path;

/// The command name docker calls the plugin by.
const PLUGIN: &str = "rbuild";

/// What the plugin was asked.
pub enum Invocation {
    /// The metadata handshake: print it and exit.
    Metadata,
    /// A command: rbuild's own argv, and the engine address docker implies.
    Run {
        args: Vec<OsString>,
        addr: Option<String>,
    },
}

/// `None` when this is not a plugin invocation (the binary is not named
/// `docker-rbuild`).
pub fn invocation(argv: &[OsString]) -> Option<Invocation> {
    let name = argv.first().map(Path::new)?.file_name()?;
    if name != "docker-rbuild" {
        return None;
    }
    if argv
        .get(1)
        .is_some_and(|a| a == "docker-cli-plugin-metadata")
    {
        return Some(Invocation::Metadata);
    }
    // Docker's global flags come before the plugin's name.
    let at = argv.iter().skip(1).position(|a| a == PLUGIN).map(|i| i + 1);
    let (globals, rest) = match at {
        Some(i) => (&argv[1..i], &argv[i + 1..]),
        None => (&argv[1..1], &argv[1..]),
    };
    let mut host = None;
    let mut context = None;
    let mut it = globals.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(flag) = it.next() {
        let (key, inline) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        let value = |it: &mut dyn Iterator<Item = String>| inline.clone().or_else(|| it.next());
        match key.as_str() {
            "-H" | "--host" => host = value(&mut it),
            "-c" | "--context" => context = value(&mut it),
            _ => {}
        }
    }
    let mut args = vec![OsString::from("rbuild")];
    args.extend(rest.iter().cloned());
    Some(Invocation::Run {
        args,
        addr: engine_address(host, context),
    })
}

/// The plugin handshake's answer.
pub fn metadata() -> String {
    serde_json::json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "rbuild",
        "Version": env!("CARGO_PKG_VERSION"),
        "ShortDescription": "Build with BuildKit natively: one solve, shared registry cache",
    })
    .to_string()
}

/// `docker://SOCKET` for the engine docker would talk to.
fn engine_address(host: Option<String>, context: Option<String>) -> Option<String> {
    let host = host.or_else(|| context_host(context.as_deref()))?;
    host.strip_prefix("unix://")
        .map(|p| format!("docker://{p}"))
}

/// The docker endpoint of `context` (or the current one), asked of the CLI
/// that started the plugin, so its config and `DOCKER_CONTEXT` apply.
fn context_host(context: Option<&str>) -> Option<String> {
    if context.is_none()
        && let Ok(h) = std::env::var("DOCKER_HOST")
        && !h.is_empty()
    {
        return Some(h);
    }
    let cli = std::env::var_os("DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND")?;
    let mut cmd = std::process::Command::new(cli);
    cmd.args([
        "context",
        "inspect",
        "--format",
        "{{.Endpoints.docker.Host}}",
    ]);
    if let Some(c) = context {
        cmd.arg(c);
    }
    let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
    let host = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn docker_global_flags_are_read_and_dropped() {
        assert!(invocation(&argv(&["rbuild", "build", "."])).is_none());
        assert!(matches!(
            invocation(&argv(&["/p/docker-rbuild", "docker-cli-plugin-metadata"])),
            Some(Invocation::Metadata)
        ));
        let Some(Invocation::Run { args, addr }) = invocation(&argv(&[
            "/p/docker-rbuild",
            "-H",
            "unix:///run/x.sock",
            "rbuild",
            "build",
            ".",
        ])) else {
            panic!("not a run");
        };
        assert_eq!(args, argv(&["rbuild", "build", "."]));
        assert_eq!(addr.as_deref(), Some("docker:///run/x.sock"));
        let v: serde_json::Value = serde_json::from_str(&metadata()).unwrap();
        assert_eq!(v["SchemaVersion"], "0.1.0");
    }
}
