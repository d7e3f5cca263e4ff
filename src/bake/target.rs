//! One bake target's attributes, as buildx's bake files spell them, and
//! what merging, inheriting and `--set` do to them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::BakeError;

/// A target's attributes; `None` (or empty) means "not set here", so later
/// files, `inherits` and `--set` can tell what to override.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Target {
    /// Targets whose attributes this one starts from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inherits: Vec<String>,
    /// The build context directory (default `.`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Named contexts: name -> directory.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The Dockerfile's text itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Build arguments.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// Image labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Image names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Target platforms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Cache imports, in buildx's spec syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Cache exports, in buildx's spec syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    /// Outputs, in buildx's `-o` syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<String>,
    /// Secrets, in buildx's `--secret` syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret: Vec<String>,
    /// SSH agents, in buildx's `--ssh` syntax.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<String>,
    /// Ignore the build cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_cache: Option<bool>,
    /// Look for newer base images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<bool>,
    /// The network for RUN steps (`default`, `none`, `host`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Privileges (`network.host`, `security.insecure`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Stages to build without cache.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub no_cache_filter: Vec<String>,
    /// Attestations: `type=provenance,mode=max`, `type=sbom,generator=IMAGE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attest: Vec<String>,
    /// Image annotations: `[LEVEL:]KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
    /// `/dev/shm` size for RUN steps (`64m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// Resource limits for RUN steps: `NAME=SOFT[:HARD]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<String>,
    /// A description, for people reading the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Ask the frontend instead of building (`check`, `outline`,
    /// `targets`), as buildx's `--call` value; kept as written and read
    /// when the target becomes a build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
}

/// Attributes buildx knows that rbuild does not build with yet: a file that
/// sets one fails clearly instead of building something else.
pub(crate) const NOT_YET: &[&str] = &[];

impl Target {
    /// Overlays `later` on `self`: a later file's (or a child's) values
    /// win; maps merge key by key.
    pub(crate) fn overlay(&mut self, later: &Target) {
        macro_rules! take {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f.clone(); } )* };
        }
        macro_rules! take_list {
            ($($f:ident),*) => { $( if !later.$f.is_empty() { self.$f = later.$f.clone(); } )* };
        }
        take!(
            context,
            dockerfile,
            dockerfile_inline,
            target,
            no_cache,
            pull,
            network,
            shm_size,
            description,
            call
        );
        take_list!(
            inherits,
            tags,
            platforms,
            cache_from,
            cache_to,
            output,
            secret,
            ssh,
            entitlements,
            no_cache_filter,
            attest,
            annotations,
            ulimits
        );
        for (k, v) in &later.args {
            self.args.insert(k.clone(), v.clone());
        }
        for (k, v) in &later.labels {
            self.labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &later.contexts {
            self.contexts.insert(k.clone(), v.clone());
        }
    }

    /// Sets one attribute from a string, as `--set NAME.KEY=VALUE` does;
    /// with `again` (the same key was set before) a list attribute gets the
    /// value appended instead of replaced.
    pub(crate) fn set(&mut self, key: &str, value: &str, again: bool) -> Result<(), BakeError> {
        let bad = |reason: &str| BakeError::Set {
            input: format!("{key}={value}"),
            reason: reason.to_string(),
        };
        let boolean = || match value {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        let list = || value.split(',').map(str::to_string).collect::<Vec<_>>();
        let one = |current: &mut Vec<String>| {
            if !again {
                current.clear();
            }
            current.push(value.to_string());
        };
        match key.split_once('.') {
            Some(("args", k)) => {
                self.args.insert(k.to_string(), value.to_string());
            }
            Some(("labels", k)) => {
                self.labels.insert(k.to_string(), value.to_string());
            }
            Some(("contexts", k)) => {
                self.contexts.insert(k.to_string(), value.to_string());
            }
            Some(_) => return Err(bad("only args.*, labels.* and contexts.* take a key")),
            None => match key {
                "context" => self.context = Some(value.to_string()),
                "dockerfile" => self.dockerfile = Some(value.to_string()),
                "dockerfile-inline" => self.dockerfile_inline = Some(value.to_string()),
                "target" => self.target = Some(value.to_string()),
                "network" => self.network = Some(value.to_string()),
                "tags" => one(&mut self.tags),
                "platform" | "platforms" => self.platforms = list(),
                "cache-from" => one(&mut self.cache_from),
                "cache-to" => one(&mut self.cache_to),
                "output" => one(&mut self.output),
                "secrets" | "secret" => one(&mut self.secret),
                "ssh" => one(&mut self.ssh),
                "no-cache" => self.no_cache = Some(boolean()?),
                "no-cache-filter" => self.no_cache_filter = list(),
                "attest" => self.attest.push(value.to_string()),
                "annotations" => self.annotations.push(value.to_string()),
                "shm-size" => self.shm_size = Some(value.to_string()),
                "call" => self.call = Some(value.to_string()),
                "ulimits" => self.ulimits.push(value.to_string()),
                "pull" => self.pull = Some(boolean()?),
                "push" => {
                    if boolean()? {
                        self.output = vec!["type=registry".to_string()];
                    }
                }
                "load" => {
                    if boolean()? {
                        self.output = vec!["type=docker".to_string()];
                    }
                }
                k if NOT_YET.contains(&k) => {
                    return Err(bad("rbuild does not support this attribute yet"));
                }
                _ => return Err(bad("unknown attribute")),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_values_win_and_maps_merge() {
        let mut base = Target {
            context: Some("a".into()),
            tags: vec!["x".into()],
            args: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "1".into())]),
            ..Target::default()
        };
        let later = Target {
            tags: vec!["y".into()],
            args: BTreeMap::from([("B".into(), "2".into())]),
            ..Target::default()
        };
        base.overlay(&later);
        assert_eq!(base.context.as_deref(), Some("a"));
        assert_eq!(base.tags, ["y"]);
        assert_eq!(base.args["A"], "1");
        assert_eq!(base.args["B"], "2");
    }

    #[test]
    fn set_follows_buildx_keys() {
        let mut t = Target::default();
        t.set("args.V", "1", false).unwrap();
        t.set("platform", "linux/amd64,linux/arm64", false).unwrap();
        t.set("push", "true", false).unwrap();
        t.set("no-cache", "true", false).unwrap();
        assert_eq!(t.args["V"], "1");
        assert_eq!(t.platforms.len(), 2);
        assert_eq!(t.output, ["type=registry"]);
        assert_eq!(t.no_cache, Some(true));
        assert!(
            t.set("colour", "red", false)
                .unwrap_err()
                .to_string()
                .contains("unknown attribute")
        );
        t.set("call", "check", false).unwrap();
        assert_eq!(t.call.as_deref(), Some("check"));
    }
}
