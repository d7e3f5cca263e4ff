//! Which `RUN` steps fetch from outside the build: their result depends on
//! a remote that moves on (a branch, a package index, a URL), so a layer
//! cached once is stale forever. Each finding has a short reason.
//!
//! The rules (table-tested below):
//! - `git clone|fetch|pull`, `git submodule update --remote`; not when the
//!   same step checks out (or `reset --hard`s to) a commit id of 7-64 hex
//!   digits: that content cannot move. A tag is no pin (tags can move, and
//!   look like branch names).
//! - `curl`, `wget`: any use but `--version`/`--help` (the URL is often in a
//!   variable; a checksum check makes a refresh cheap, not wrong).
//! - `apt-get|apt update` always (it is why `install` sees new versions);
//!   `upgrade`/`dist-upgrade`; `install` when a package has no `=version`.
//! - `apk update|upgrade`; `apk add` when a package has no `=`/`~`/`<`/`>`
//!   constraint. `yum|dnf|microdnf install|update|upgrade` always.
//! - `pip install` (also `python -m pip`, `uv pip`): `-U`/`--upgrade`;
//!   `-r FILE` unless `--require-hashes` (the file's pins are not visible
//!   here); a requirement without `==`/`===` (local paths and wheels are
//!   pinned). Transitive dependencies of a pinned package still float; lock
//!   them with `-r` + `--require-hashes`.
//! - `npm install|i|add|update` with no package or an unpinned one (`npm ci`
//!   is pinned by the lockfile); `yarn [install]` and `pnpm install` unless
//!   `--frozen-lockfile`/`--immutable`; `yarn|pnpm add` like npm.
//! - `go get` and `go install` of a module at `@latest`, a branch, or no
//!   version; `go mod download` is pinned by go.sum.
//! - `sh -c SCRIPT` (any shell) is searched; `RUN --network=none` fetches
//!   nothing.
//!
//! `ADD https://...` and `ADD git...` are not listed: BuildKit re-checks
//! those sources on every build already.

mod upstreams;

use super::shell;
use super::sources::Upstream;
use super::vars::Vars;
use crate::upstream::Source;

/// How deep `sh -c "sh -c ..."` is followed.
const MAX_SHELL_DEPTH: usize = 4;

/// The reasons that name a command whose upstream [`sources`] reads.
const LOOKED_UP: &[&str] = &["git clone", "git fetch", "git pull", "curl URL", "wget URL"];

/// What one RUN step fetches: the reasons, and the upstreams behind them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Detected {
    pub reasons: Vec<String>,
    pub upstreams: Vec<Upstream>,
}

/// The reasons a RUN script fetches from outside, in order, without repeats.
#[cfg(test)]
pub(crate) fn script(script: &str) -> Vec<String> {
    script_in(script, &Vars::default()).reasons
}

/// The same for the exec form, `RUN ["git", "clone", "..."]`.
#[cfg(test)]
pub(crate) fn exec(words: &[String]) -> Vec<String> {
    exec_in(words, &Vars::default()).reasons
}

/// What a RUN script fetches, its URLs expanded with the stage's `vars`.
pub(crate) fn script_in(script: &str, vars: &Vars) -> Detected {
    let mut found = Findings::new(vars);
    scan(script, 0, &mut found);
    found.finish()
}

/// The same for the exec form.
pub(crate) fn exec_in(words: &[String], vars: &Vars) -> Detected {
    let mut found = Findings::new(vars);
    command(words, 0, &mut found);
    found.finish()
}

#[derive(Default)]
struct Findings {
    reasons: Vec<String>,
    git_pinned: bool,
    upstreams: Vec<Upstream>,
    /// The stage's variables plus the script's own assignments so far.
    vars: Vars,
    /// The step's last `git clone`: its entry in `upstreams`.
    clone: Option<usize>,
}

impl Findings {
    fn new(vars: &Vars) -> Findings {
        Findings {
            vars: vars.clone(),
            ..Findings::default()
        }
    }

    fn add(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
    }

    fn finish(mut self) -> Detected {
        let unknown: Vec<String> = self
            .reasons
            .iter()
            .filter(|r| !LOOKED_UP.contains(&r.as_str()))
            .cloned()
            .collect();
        for reason in unknown {
            self.opaque(reason, "rbuild cannot look up what it fetches");
        }
        if self.git_pinned {
            self.reasons.retain(|r| !r.starts_with("git "));
            self.upstreams.retain(|u| match u {
                Upstream::Source(s) => !matches!(s, Source::Git { .. }),
                Upstream::Opaque { fetch, .. } => !fetch.starts_with("git "),
            });
        }
        Detected {
            reasons: self.reasons,
            upstreams: self.upstreams,
        }
    }
}

fn scan(script: &str, depth: usize, found: &mut Findings) {
    for words in shell::commands(script) {
        command(&words, depth, found);
    }
}

/// Programs that run the rest of their arguments as a command.
const WRAPPERS: &[&str] = &[
    "sudo", "env", "command", "exec", "nohup", "time", "nice", "xargs", "then", "do", "else", "if",
    "elif", "while", "until", "!", "{", "}",
];

fn command(words: &[String], depth: usize, found: &mut Findings) {
    // `REPO=https://... ; git clone "$REPO"`: the script's own variables.
    if !words.is_empty() && words.iter().all(|w| is_assignment(w)) {
        found.vars.assign(words);
        return;
    }
    if words.first().is_some_and(|w| w == "export") {
        let assigned: Vec<String> = words[1..]
            .iter()
            .filter(|w| is_assignment(w))
            .cloned()
            .collect();
        found.vars.assign(&assigned);
        return;
    }
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let wrapper = WRAPPERS.contains(&first.as_str());
        if !(wrapper
            || is_assignment(first)
            || (first.starts_with('-') && rest.len() < words.len()))
        {
            break;
        }
        rest = tail;
    }
    let Some((program, args)) = rest.split_first() else {
        return;
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    match name {
        "sh" | "bash" | "ash" | "dash" | "zsh" | "ksh" => shell_c(args, depth, found),
        "git" => upstreams::git(args, found),
        "curl" | "wget" => {
            let info = |a: &String| matches!(a.as_str(), "--version" | "-V" | "--help" | "-h");
            if !args.is_empty() && !args.iter().all(info) {
                found.add(format!("{name} URL"));
                upstreams::download(name, args, found);
            }
        }
        "apt-get" | "apt" | "aptitude" => apt(name, args, found),
        "apk" => apk(args, found),
        "yum" | "dnf" | "microdnf" => {
            let sub = operands(args, &[]).next();
            if let Some(sub @ ("install" | "update" | "upgrade")) = sub {
                found.add(format!("{name} {sub}"));
            }
        }
        "uv" if args.first().is_some_and(|a| a == "pip") => pip(&args[1..], found),
        n if n.starts_with("python") && args.len() > 1 && args[0] == "-m" && args[1] == "pip" => {
            pip(&args[2..], found)
        }
        n if n.starts_with("pip") => pip(args, found),
        "npm" | "yarn" | "pnpm" => node(name, args, found),
        "go" => go(args, found),
        _ => {}
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(k, _)| {
        !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// The words that are not options, skipping the values of `with_value`
/// options given as a separate word.
fn operands<'a>(args: &'a [String], with_value: &'a [&str]) -> impl Iterator<Item = &'a str> {
    let mut skip = false;
    args.iter().filter_map(move |a| {
        if std::mem::take(&mut skip) {
            return None;
        }
        if a.starts_with('-') {
            skip = with_value.contains(&a.as_str());
            return None;
        }
        Some(a.as_str())
    })
}

fn has(args: &[String], flags: &[&str]) -> bool {
    args.iter().any(|a| flags.contains(&a.as_str()))
}

fn shell_c(args: &[String], depth: usize, found: &mut Findings) {
    let c = args
        .iter()
        .position(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c') || a == "-c");
    if let Some(script) = c.and_then(|i| args.get(i + 1))
        && depth < MAX_SHELL_DEPTH
    {
        scan(script, depth + 1, found);
    }
}

fn is_commit_id(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn apt(name: &str, args: &[String], found: &mut Findings) {
    let mut ops = operands(args, &["-o", "-c", "-t", "--target-release"]);
    match ops.next() {
        Some(sub @ ("update" | "upgrade" | "dist-upgrade" | "full-upgrade")) => {
            found.add(format!("{name} {sub}"))
        }
        Some("install") if ops.any(|p| !p.contains('=') && !is_path(p)) => {
            found.add(format!("{name} install (unpinned)"))
        }
        _ => {}
    }
}

fn apk(args: &[String], found: &mut Findings) {
    let with_value = [
        "-X",
        "--repository",
        "-t",
        "--virtual",
        "-p",
        "--root",
        "--arch",
        "--cache-dir",
        "--keys-dir",
        "--repositories-file",
    ];
    let mut ops = operands(args, &with_value);
    match ops.next() {
        Some(sub @ ("update" | "upgrade")) => found.add(format!("apk {sub}")),
        Some("add") if ops.any(|p| !p.contains(['=', '~', '<', '>']) && !is_path(p)) => {
            found.add("apk add (unpinned)")
        }
        _ => {}
    }
}

fn is_path(p: &str) -> bool {
    p.starts_with(['.', '/', '$']) || p.ends_with(".deb") || p.ends_with(".apk")
}

fn pip(args: &[String], found: &mut Findings) {
    let with_value = [
        "-c",
        "--constraint",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "-t",
        "--target",
        "--prefix",
        "--root",
        "--trusted-host",
        "--platform",
        "--python-version",
        "--only-binary",
        "--no-binary",
        "-r",
        "--requirement",
        "-e",
        "--editable",
    ];
    let mut ops = operands(args, &with_value);
    if ops.next() != Some("install") {
        return;
    }
    if has(args, &["-U", "--upgrade"]) || args.iter().any(|a| a.starts_with("--upgrade")) {
        found.add("pip install --upgrade");
        return;
    }
    let requirement_file =
        has(args, &["-r", "--requirement"]) || args.iter().any(|a| a.starts_with("--requirement="));
    if requirement_file && !has(args, &["--require-hashes"]) {
        found.add("pip install -r (pins not visible)");
        return;
    }
    // `-e URL` is a requirement too.
    let editable = args
        .windows(2)
        .filter(|w| w[0] == "-e" || w[0] == "--editable")
        .map(|w| w[1].as_str());
    let unpinned =
        |r: &str| r.contains("://") || !(r.contains("==") || is_path(r) || r.ends_with(".whl"));
    if ops.chain(editable).any(unpinned) {
        found.add("pip install (unpinned)");
    }
}

fn node(name: &str, args: &[String], found: &mut Findings) {
    let with_value = [
        "--prefix",
        "--registry",
        "-w",
        "--workspace",
        "--omit",
        "--include",
        "--cache",
    ];
    let mut ops = operands(args, &with_value);
    let sub = ops.next();
    let frozen = has(
        args,
        &["--frozen-lockfile", "--immutable", "--immutable-cache"],
    );
    let pinned = |p: &str| {
        // `pkg@1.2.3`, `@scope/pkg@1.2.3`: an exact version.
        p.rsplit_once('@')
            .is_some_and(|(n, v)| !n.is_empty() && is_exact_version(v))
            || is_path(p)
    };
    match (name, sub) {
        ("npm", Some(s @ ("install" | "i" | "in" | "add")))
        | ("pnpm" | "yarn", Some(s @ "add")) => {
            let packages: Vec<&str> = ops.collect();
            if packages.is_empty() {
                if name == "npm" {
                    found.add("npm install (not npm ci)");
                }
            } else if packages.iter().any(|p| !pinned(p)) {
                found.add(format!("{name} {s} (unpinned)"));
            }
        }
        ("npm" | "pnpm", Some(s @ ("update" | "up" | "upgrade")))
        | ("yarn", Some(s @ ("upgrade" | "up"))) => found.add(format!("{name} {s}")),
        ("yarn", None | Some("install")) | ("pnpm", Some("install" | "i")) if !frozen => {
            found.add(format!("{name} install (lockfile not frozen)"))
        }
        ("yarn", Some("global")) if ops.next() == Some("add") => found.add("yarn global add"),
        _ => {}
    }
}

fn is_exact_version(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let parts: Vec<&str> = v.split(['.', '-', '+']).collect();
    parts.len() >= 3
        && parts[..3]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn go(args: &[String], found: &mut Findings) {
    let mut ops = operands(args, &["-C", "-o", "-modfile", "-tags"]);
    let sub = ops.next();
    if !matches!(sub, Some("get" | "install")) {
        return;
    }
    let floating = |m: &str| match m.rsplit_once('@') {
        Some((_, v)) => !(is_exact_version(v) || is_commit_id(v)),
        // `go install` without a version builds the local module.
        None => sub == Some("get"),
    };
    if ops.any(|m| !is_path(m) && floating(m)) {
        found.add(format!("go {} (not pinned)", sub.unwrap_or_default()));
    }
}

#[cfg(test)]
mod tests;
