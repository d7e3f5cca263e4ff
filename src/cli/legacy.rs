//! `docker buildx build` flags rbuild does not implement. A pipeline that
//! passes one gets a one-line answer, never a silent ignore: an error for a
//! flag whose effect rbuild cannot give, a warning for the ones buildx
//! itself accepts without effect under BuildKit.

use clap::Args;

#[derive(Debug, Args, Default)]
pub struct LegacyArgs {
    #[arg(long, hide = true)]
    policy: Vec<String>,
    #[arg(long, hide = true)]
    resource: Vec<String>,
    #[arg(short = 'm', long, hide = true)]
    memory: Option<String>,
    #[arg(long, hide = true)]
    memory_swap: Option<String>,
    #[arg(short = 'c', long, hide = true)]
    cpu_shares: Option<String>,
    #[arg(long, hide = true)]
    cpu_period: Option<String>,
    #[arg(long, hide = true)]
    cpu_quota: Option<String>,
    #[arg(long, hide = true)]
    cpuset_cpus: Option<String>,
    #[arg(long, hide = true)]
    cpuset_mems: Option<String>,

    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    compress: Option<String>,
    #[arg(long, hide = true)]
    isolation: Option<String>,
    #[arg(long, hide = true)]
    security_opt: Vec<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    squash: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    rm: Option<String>,
    #[arg(long, hide = true, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    force_rm: Option<String>,
}

impl LegacyArgs {
    /// An error for the first flag rbuild cannot honour; otherwise the
    /// warnings for flags that have no effect with BuildKit.
    pub fn check(&self) -> anyhow::Result<Vec<String>> {
        let resources = "is a resource limit for build containers, which BuildKit's Dockerfile \
                         frontend does not take from rbuild; set limits on the daemon instead";
        let unsupported: [(&str, bool, &str); 9] = [
            (
                "--policy",
                !self.policy.is_empty(),
                "configures buildx's source policy, which rbuild does not evaluate",
            ),
            ("--resource", !self.resource.is_empty(), resources),
            ("--memory", self.memory.is_some(), resources),
            ("--memory-swap", self.memory_swap.is_some(), resources),
            ("--cpu-shares", self.cpu_shares.is_some(), resources),
            ("--cpu-period", self.cpu_period.is_some(), resources),
            ("--cpu-quota", self.cpu_quota.is_some(), resources),
            ("--cpuset-cpus", self.cpuset_cpus.is_some(), resources),
            ("--cpuset-mems", self.cpuset_mems.is_some(), resources),
        ];
        if let Some((flag, _, why)) = unsupported.iter().find(|(_, given, _)| *given) {
            anyhow::bail!("{flag} is not supported by rbuild: it {why}");
        }
        let mut warnings = Vec::new();
        let no_effect = [
            (
                "--compress",
                self.compress.is_some(),
                "rbuild sends only the changed files",
            ),
            (
                "--isolation",
                self.isolation.is_some(),
                "isolation is the daemon's",
            ),
            (
                "--security-opt",
                !self.security_opt.is_empty(),
                "use RUN --security=insecure with --allow security.insecure",
            ),
            (
                "--squash",
                self.squash.as_deref().is_some_and(|v| v != "false"),
                "squash in the Dockerfile with a multi-stage COPY",
            ),
            (
                "--rm",
                self.rm.is_some(),
                "BuildKit leaves no intermediate containers",
            ),
            (
                "--force-rm",
                self.force_rm.is_some(),
                "BuildKit leaves no intermediate containers",
            ),
        ];
        for (flag, given, hint) in no_effect {
            if given {
                warnings.push(format!("{flag} has no effect with BuildKit: {hint}"));
            }
        }
        Ok(warnings)
    }
}
