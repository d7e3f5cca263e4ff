//! Which node builds which platform of a multi-platform build, as buildx
//! splits one over a builder's nodes: each platform goes to a node that
//! builds it natively, so nothing is emulated. Nodes are taken in the
//! build's route-key order, so a project's platforms keep landing on the
//! same nodes and their local caches stay warm.

/// `os/arch[/variant]`, with the spellings containerd treats as one
/// platform made equal: `arm64` is `arm64/v8`, `amd64` is `amd64/v1`,
/// `arm` is `arm/v7`, `aarch64` and `x86_64` are their Go names.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Platform {
    os: String,
    arch: String,
    variant: Option<String>,
}

impl Platform {
    fn parse(text: &str) -> Option<Platform> {
        let lower = text.trim().to_ascii_lowercase();
        let mut parts = lower.split('/');
        let os = parts.next().filter(|s| !s.is_empty())?.to_string();
        let arch = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next().filter(|s| !s.is_empty());
        if parts.next().is_some() {
            return None;
        }
        let arch = match arch {
            "aarch64" => "arm64",
            "x86_64" | "x86-64" => "amd64",
            "armhf" => "arm",
            other => other,
        }
        .to_string();
        let variant = match (arch.as_str(), variant) {
            ("arm64", None | Some("v8")) => None,
            ("amd64", None | Some("v1")) => None,
            ("arm", None) => Some("v7".to_string()),
            (_, v) => v.map(str::to_string),
        };
        Some(Platform { os, arch, variant })
    }
}

/// Whether a node that lists `has` builds `wanted` without emulation.
/// A node listing `linux/amd64/v3` also runs `linux/amd64`; one listing
/// `linux/amd64` does not claim `linux/amd64/v3`.
pub(crate) fn builds_natively(has: &str, wanted: &str) -> bool {
    match (Platform::parse(has), Platform::parse(wanted)) {
        (Some(h), Some(w)) => {
            h.os == w.os && h.arch == w.arch && (w.variant.is_none() || h.variant == w.variant)
        }
        _ => false,
    }
}

/// One node's part of a multi-platform build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Share {
    /// The node, by its position in the caller's list.
    pub node: usize,
    /// The platforms it builds, in the order the build asked for them.
    pub platforms: Vec<String>,
}

/// Splits `wanted` over `nodes` (healthy ones, in route-key order, each
/// with the platforms it builds): each platform goes to the first node that
/// builds it natively; one that no node builds goes to the first node,
/// which may emulate it (as buildx does). Shares come in node order.
pub(crate) fn split(wanted: &[String], nodes: &[(usize, Vec<String>)]) -> Vec<Share> {
    let mut shares: Vec<Share> = Vec::new();
    let Some(first) = nodes.first() else {
        return shares;
    };
    for platform in wanted {
        let node = nodes
            .iter()
            .find(|(_, has)| has.iter().any(|h| builds_natively(h, platform)))
            .unwrap_or(first)
            .0;
        match shares.iter_mut().find(|s| s.node == node) {
            Some(share) => share.platforms.push(platform.clone()),
            None => shares.push(Share {
                node,
                platforms: vec![platform.clone()],
            }),
        }
    }
    let rank = |node: usize| nodes.iter().position(|(i, _)| *i == node);
    shares.sort_by_key(|s| rank(s.node));
    shares
}

/// A platform as a tag suffix: `linux/arm64/v8` → `linux-arm64-v8`.
pub(crate) fn tag_suffix(platform: &str) -> String {
    platform
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn spellings_of_one_platform_match() {
        assert!(builds_natively("linux/arm64/v8", "linux/arm64"));
        assert!(builds_natively("linux/arm64", "linux/aarch64"));
        assert!(builds_natively("linux/amd64/v3", "linux/amd64"));
        assert!(builds_natively("linux/arm", "linux/arm/v7"));
        assert!(!builds_natively("linux/amd64", "linux/amd64/v3"));
        assert!(!builds_natively("linux/amd64", "linux/arm64"));
        assert!(!builds_natively("linux/arm/v6", "linux/arm/v7"));
        assert!(!builds_natively("windows/amd64", "linux/amd64"));
        assert!(!builds_natively("garbage", "linux/amd64"));
    }

    #[test]
    fn each_platform_goes_to_the_first_node_that_builds_it() {
        let nodes = vec![
            (2, s(&["linux/amd64", "linux/386"])),
            (0, s(&["linux/arm64"])),
            (1, s(&["linux/amd64", "linux/arm64"])),
        ];
        let shares = split(&s(&["linux/arm64", "linux/amd64", "linux/386"]), &nodes);
        assert_eq!(
            shares,
            vec![
                Share {
                    node: 2,
                    platforms: s(&["linux/amd64", "linux/386"])
                },
                Share {
                    node: 0,
                    platforms: s(&["linux/arm64"])
                },
            ]
        );
    }

    #[test]
    fn a_platform_no_node_builds_goes_to_the_first() {
        let nodes = vec![(1, s(&["linux/amd64"])), (0, s(&["linux/arm64"]))];
        let shares = split(&s(&["linux/riscv64", "linux/arm64"]), &nodes);
        assert_eq!(shares[0].node, 1);
        assert_eq!(shares[0].platforms, s(&["linux/riscv64"]));
        assert_eq!(shares[1].platforms, s(&["linux/arm64"]));
        assert!(split(&s(&["linux/amd64"]), &[]).is_empty());
    }

    #[test]
    fn tag_suffixes() {
        assert_eq!(tag_suffix("linux/arm64/v8"), "linux-arm64-v8");
        assert_eq!(tag_suffix("Linux/AMD64"), "linux-amd64");
    }
}
