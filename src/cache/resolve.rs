//! Entries completed from a [`CacheEnv`] the way buildx completes them
//! before a solve (build/opt.go: addGithubToken, addAwsCredentials,
//! isActive): only attributes the entry lacks are filled in, and a `gha`
//! entry that still has no token or URL is left out rather than sent to
//! fail the build.

use super::{CacheBackend, CacheEntry, CacheEnv};

impl CacheEntry {
    /// The entry with what `env` holds for its backend filled in, the
    /// entry's own attributes winning: for `gha`, `token`, `url` (the cache
    /// URL, else the results URL) and, for cache API v2 (`version=2` or
    /// [`GhaRuntime::service_v2`](super::GhaRuntime::service_v2)),
    /// `url_v2`; for `s3`, `access_key_id`, `secret_access_key` and
    /// `session_token`, unless the entry has its own key pair. Other
    /// backends are returned unchanged.
    pub fn with_env(mut self, env: &CacheEnv) -> CacheEntry {
        match self.kind {
            CacheBackend::Gha => self.add_gha(env),
            CacheBackend::S3 => self.add_aws(env),
            _ => {}
        }
        self
    }

    /// False for a `gha` entry without a token or a service URL: the daemon
    /// would fail the whole build on it, so it is left out with a warning.
    pub fn is_active(&self) -> bool {
        if self.kind != CacheBackend::Gha {
            return true;
        }
        let set = |k: &str| self.attrs.get(k).is_some_and(|v| !v.is_empty());
        set("token") && (set("url") || set("url_v2"))
    }

    fn add_gha(&mut self, env: &CacheEnv) {
        let gha = &env.gha;
        let v2 = match self.attrs.get("version") {
            Some(v) => v == "2",
            None => gha.service_v2,
        };
        let mut fill = |key: &str, value: Option<&String>| {
            if let Some(v) = value
                && !self.attrs.contains_key(key)
            {
                self.attrs.insert(key.to_string(), v.clone());
            }
        };
        fill("token", gha.token.as_ref());
        if v2 {
            fill("url_v2", gha.results_url.as_ref());
        }
        fill("url", gha.cache_url.as_ref().or(gha.results_url.as_ref()));
    }

    fn add_aws(&mut self, env: &CacheEnv) {
        let has = |k: &str| self.attrs.contains_key(k);
        // The entry's own key pair comes with its own session token (or none).
        if has("access_key_id") && has("secret_access_key") {
            return;
        }
        let Some(aws) = &env.aws else { return };
        for (key, value) in [
            ("access_key_id", Some(&aws.access_key_id)),
            ("secret_access_key", Some(&aws.secret_access_key)),
            ("session_token", aws.session_token.as_ref()),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                self.attrs
                    .entry(key.to_string())
                    .or_insert_with(|| v.clone());
            }
        }
    }
}

/// The entries a build sends: each completed from `env`; an inactive one
/// is dropped, with a warning for the build's result.
/// `direction` is `import` or `export`, for the warning.
pub(crate) fn resolve_entries(
    entries: Vec<CacheEntry>,
    env: &CacheEnv,
    direction: &str,
    warnings: &mut Vec<String>,
) -> Vec<CacheEntry> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries.into_iter().map(|e| e.with_env(env)) {
        if entry.is_active() {
            out.push(entry);
            continue;
        }
        let scope = entry.attrs.get("scope").map_or("buildkit", String::as_str);
        let warning = format!(
            "cache {direction} type=gha (scope {scope}) skipped: no GitHub Actions cache token and URL \
             (ACTIONS_RUNTIME_TOKEN with ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL is not set, \
             nor token= and url=)"
        );
        warnings.push(warning);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{AwsCredentials, GhaRuntime};
    use super::*;

    fn gha_env(cache: Option<&str>, results: Option<&str>, v2: bool) -> CacheEnv {
        CacheEnv {
            gha: GhaRuntime {
                token: Some("jwt".into()),
                cache_url: cache.map(str::to_string),
                results_url: results.map(str::to_string),
                service_v2: v2,
            },
            aws: None,
        }
    }

    #[test]
    fn gha_takes_the_token_and_urls_buildx_takes() {
        let v1 = CacheEntry::gha("app").with_env(&gha_env(
            Some("https://c/"),
            Some("https://r/"),
            false,
        ));
        assert_eq!(v1.attrs["token"], "jwt");
        assert_eq!(v1.attrs["url"], "https://c/");
        assert!(
            !v1.attrs.contains_key("url_v2"),
            "v2 only when the job uses it"
        );
        let v2 = CacheEntry::gha("app").with_env(&gha_env(None, Some("https://r/"), true));
        assert_eq!(v2.attrs["url_v2"], "https://r/");
        assert_eq!(
            v2.attrs["url"], "https://r/",
            "the results URL stands in for v1"
        );
        // version=2 on the entry asks for v2 without the job's variable; an
        // entry's own values are kept.
        let mut own = CacheEntry::gha("app");
        own.attrs.insert("version".into(), "2".into());
        own.attrs.insert("token".into(), "mine".into());
        let own = own.with_env(&gha_env(Some("https://c/"), Some("https://r/"), false));
        assert_eq!(
            (own.attrs["token"].as_str(), own.attrs["url_v2"].as_str()),
            ("mine", "https://r/")
        );
        assert!(v1.is_active() && v2.is_active() && own.is_active());
    }

    #[test]
    fn an_inactive_gha_entry_is_dropped_with_a_warning() {
        let mut warnings = Vec::new();
        let entries = vec![CacheEntry::gha("app"), CacheEntry::registry("r/a")];
        let kept = resolve_entries(
            entries.clone(),
            &CacheEnv::default(),
            "export",
            &mut warnings,
        );
        assert_eq!(kept, vec![CacheEntry::registry("r/a")]);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("cache export type=gha (scope app) skipped"),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("ACTIONS_RUNTIME_TOKEN"));
        // A token without any URL is as inactive.
        let env = gha_env(None, None, false);
        assert!(resolve_entries(entries, &env, "import", &mut warnings).len() == 1);
    }

    #[test]
    fn s3_takes_aws_credentials_unless_it_has_a_key_pair() {
        let env = CacheEnv {
            aws: Some(AwsCredentials::new("AKID", "SECRET").with_session_token("SESSION")),
            ..CacheEnv::default()
        };
        let e = CacheEntry::s3("b", "eu-west-1").with_env(&env);
        assert_eq!(e.attrs["access_key_id"], "AKID");
        assert_eq!(e.attrs["secret_access_key"], "SECRET");
        assert_eq!(e.attrs["session_token"], "SESSION");
        let mut half = CacheEntry::s3("b", "r");
        half.attrs.insert("access_key_id".into(), "OWN".into());
        let half = half.with_env(&env);
        assert_eq!(
            (
                half.attrs["access_key_id"].as_str(),
                half.attrs["secret_access_key"].as_str()
            ),
            ("OWN", "SECRET")
        );
        let mut pair = CacheEntry::s3("b", "r");
        pair.attrs.insert("access_key_id".into(), "OWN".into());
        pair.attrs.insert("secret_access_key".into(), "OWNS".into());
        let pair = pair.with_env(&env);
        assert!(
            !pair.attrs.contains_key("session_token"),
            "no foreign session token on an own pair"
        );
        // azblob and the rest pass through.
        let az = CacheEntry::azblob("https://a").with_env(&env);
        assert_eq!(az, CacheEntry::azblob("https://a"));
        assert_eq!(
            CacheEntry::s3("b", "r")
                .with_env(&CacheEnv::default())
                .attrs
                .len(),
            2
        );
    }
}
