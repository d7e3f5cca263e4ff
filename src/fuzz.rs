//! A small mutation fuzzer run by `cargo test` on the stable toolchain (`cargo fuzz`
//! needs nightly): each target is a unit test next to the code it feeds, started with
//! [`run`]. It replays the target's seed corpus (`fuzz/corpus/TARGET/`) and every crash
//! kept as a regression (`fuzz/regressions/TARGET/`), then mutates the seeds with a
//! deterministic PRNG for a bounded number of cases.
//!
//! The smoke run in `cargo test` is short; a longer hunt on one target:
//!
//! ```text
//! RBUILD_FUZZ_CASES=1000000 RBUILD_FUZZ_SECONDS=600 RBUILD_FUZZ_SEED=7 \
//!     cargo test --release --lib fuzz_dockerignore
//! ```
//!
//! A panicking input is written to `target/fuzz-crashes/TARGET-HASH` and the test fails
//! naming it; the fix comes with that file moved into `fuzz/regressions/TARGET/` and a
//! unit test of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Mutated cases per target in the smoke run.
const DEFAULT_CASES: u64 = 3000;
/// ... unless the target is slower than this.
const DEFAULT_SECONDS: u64 = 3;
/// Inputs grow no larger than this.
const MAX_INPUT: usize = 16 << 10;

/// Bytes worth inserting: the syntax the parsers under test branch on.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\\",
    b"/",
    b"..",
    b"../",
    b"*",
    b"**",
    b"?",
    b"[",
    b"]",
    b"!",
    b"#",
    b"$",
    b"${",
    b"}",
    b":-",
    b"\"",
    b"'",
    b",",
    b"=",
    b"\0",
    b"\xff",
    b"\xe2\x82",
    b"{",
    b":",
    b"<<EOF",
    b"FROM ",
    b"ARG ",
    b"RUN ",
    b"COPY --from=",
    b"type=",
    b"ref=",
    b"0000000000",
    b"ustar",
];

/// Runs `target` on its seeds, its regressions and mutated cases; panics naming the
/// first input that made it panic.
pub(crate) fn run(name: &str, target: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = read_dir(&root.join("fuzz/corpus").join(name));
    assert!(!seeds.is_empty(), "no seed corpus in fuzz/corpus/{name}");
    let regressions = read_dir(&root.join("fuzz/regressions").join(name));
    for input in seeds.iter().chain(&regressions) {
        check(name, &target, input);
    }
    seeds.extend(regressions);
    let cases = env_u64("RBUILD_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let budget = Duration::from_secs(env_u64("RBUILD_FUZZ_SECONDS").unwrap_or(DEFAULT_SECONDS));
    let mut rng = Rng::new(fnv(name.as_bytes()) ^ env_u64("RBUILD_FUZZ_SEED").unwrap_or(0));
    let started = Instant::now();
    let mut ran = 0u64;
    while ran < cases && started.elapsed() <= budget {
        let input = mutate(&mut rng, &seeds);
        check(name, &target, &input);
        ran += 1;
    }
    // Seen with --nocapture: how deep a run went.
    eprintln!("fuzz {name}: {ran} cases in {:.1?}", started.elapsed());
}

fn check(name: &str, target: &impl Fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| target(input))).is_ok() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    let path = dir.join(format!("{name}-{:016x}", fnv(input)));
    let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    panic!(
        "fuzz target {name} panicked on {} bytes{}",
        input.len(),
        match saved {
            Ok(()) => format!(", saved to {}", path.display()),
            Err(e) => format!(" (not saved: {e}): {input:?}"),
        }
    );
}

fn read_dir(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok()?.parse().ok()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64*: deterministic for a seed, plenty for choosing mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A seed changed by one to eight mutations.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(8) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                data.drain(start..end);
            }
            4 if len > 0 => {
                // Repeat a slice: long names, deep nesting, many entries.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let piece = data[start..end].to_vec();
                for _ in 0..=rng.below(32) {
                    data.splice(end..end, piece.iter().copied());
                }
            }
            5 => {
                // Splice in part of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(256)).min(other.len());
                    let at = rng.below(len + 1);
                    data.splice(at..at, other[start..end].iter().copied());
                }
            }
            6 if len > 0 => data.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
        }
        data.truncate(MAX_INPUT);
    }
    data
}

/// Splits a fuzz input into text lines: many targets take several strings.
pub(crate) fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// Targets whose entry points the crate root reaches; the others sit beside their code.
mod targets {
    use super::{lines, run};
    use crate::buildspec::{
        Annotation, AttestKind, Attestation, ExtraHost, NamedContext, Ulimit, parse_size,
    };
    use crate::cache::CacheEntry;
    use crate::output::Output;
    use crate::session::secrets::SecretSpec;
    use crate::session::sshforward::SshSpec;

    /// buildx's CSV specs: one per line, each tried as every kind of flag value.
    #[test]
    fn fuzz_specs() {
        run("specs", |data| {
            for line in lines(data) {
                let line = line.as_str();
                let _ = Output::parse(line);
                let _ = CacheEntry::import(line);
                let _ = CacheEntry::export(line);
                let _ = CacheEntry::shorthand(line);
                let _ = SecretSpec::parse(line);
                let _ = SshSpec::parse(line);
                let _ = Attestation::parse(line);
                let _ = Attestation::shorthand(AttestKind::Sbom, line);
                let _ = line.parse::<NamedContext>();
                let _ = line.parse::<ExtraHost>();
                let _ = line.parse::<Ulimit>();
                let _ = line.parse::<Annotation>();
                let _ = parse_size(line);
                let _ = crate::spec::parse("output", line);
            }
        });
    }

    /// Registry manifests and image configs, as `rbuild cache` reads them.
    #[test]
    fn fuzz_manifest() {
        use crate::registry::manifest::{Manifest, cache_config_created, image_config_created};
        run("manifest", |data| {
            if let Ok(m) = Manifest::parse(data) {
                let _ = (
                    m.references(),
                    m.is_cache(),
                    m.cache_config(),
                    m.image_config(),
                );
                let _ = m.newest_annotated();
            }
            let _ = cache_config_created(data);
            let _ = image_config_created(data);
        });
    }

    /// The Docker CLI config: what the session and `rbuild cache` look credentials up in.
    #[test]
    fn fuzz_docker_config() {
        use crate::credentials::DockerConfig;
        run("docker_config", |data| {
            let Ok(config) = DockerConfig::parse(data) else {
                return;
            };
            let _ = format!("{config:?}");
            for host in ["registry-1.docker.io", "127.0.0.1:5000", "ghcr.io", ""] {
                let _ = (config.inline(host), config.helper_for(host));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_are_deterministic_and_bounded() {
        let seeds = vec![b"FROM a\n".to_vec(), Vec::new()];
        let (mut a, mut b) = (Rng::new(3), Rng::new(3));
        for _ in 0..2000 {
            let x = mutate(&mut a, &seeds);
            assert_eq!(x, mutate(&mut b, &seeds));
            assert!(x.len() <= MAX_INPUT);
        }
    }
}
