//! Which registry hosts the session answers credential requests for.
//!
//! buildx answers for every host in the Docker config, so one compromised shared builder
//! can ask for, and get, every registry login of the runner. rbuild answers only for the
//! hosts the build itself names (its images, contexts, caches, push targets and SBOM
//! scanner) plus any the caller allows; every other request is answered anonymously and
//! noted once ([`AuthScope::withheld`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::config::normalize_host;

/// The hosts that get credentials, by normalized `host[:port]` (Docker Hub's aliases
/// folded into one).
#[derive(Clone, Debug, Default)]
pub struct AuthScope {
    /// `None`: every host, as buildx does.
    hosts: Option<BTreeSet<String>>,
    /// Hosts asked for and refused, shared with clones (the session's copy fills it).
    withheld: Arc<Mutex<BTreeSet<String>>>,
}

impl AuthScope {
    /// Every host in the Docker config, as buildx answers.
    #[cfg(test)]
    pub fn any() -> AuthScope {
        AuthScope::default()
    }

    /// No host yet; [`AuthScope::allow`] adds them.
    pub fn none() -> AuthScope {
        AuthScope {
            hosts: Some(BTreeSet::new()),
            withheld: Arc::default(),
        }
    }

    /// Also answers for `host` (`*` for every host).
    pub fn allow(&mut self, host: &str) {
        if host.trim() == "*" {
            self.hosts = None;
            return;
        }
        let host = normalize_host(host);
        if let Some(hosts) = &mut self.hosts
            && !host.is_empty()
        {
            hosts.insert(host);
        }
    }

    /// Whether credentials for `host` may be sent; a refusal is recorded (and logged
    /// once per host).
    pub fn check(&self, host: &str) -> bool {
        let Some(hosts) = &self.hosts else {
            return true;
        };
        let host = normalize_host(host);
        if hosts.contains(&host) {
            return true;
        }
        let mut withheld = self.withheld.lock().unwrap_or_else(PoisonError::into_inner);
        if withheld.insert(host.clone()) {
            tracing::warn!(%host, "registry credentials withheld: the build does not name this host");
        }
        false
    }

    /// Whether every host gets credentials.
    #[cfg(test)]
    pub fn is_any(&self) -> bool {
        self.hosts.is_none()
    }

    /// The hosts that get credentials; `None` for every host.
    pub fn hosts(&self) -> Option<&BTreeSet<String>> {
        self.hosts.as_ref()
    }

    /// The hosts the daemon asked for and got nothing, sorted.
    pub fn withheld(&self) -> Vec<String> {
        let withheld = self.withheld.lock().unwrap_or_else(PoisonError::into_inner);
        withheld.iter().cloned().collect()
    }
}

/// The one line that tells a user why a registry saw no login.
pub fn withheld_message(host: &str) -> String {
    format!(
        "no registry credentials were sent for {host}: the build names no image, cache or \
         push target there (allow the host explicitly if the daemon needs them)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_hosts_and_each_refusal_once() {
        let mut scope = AuthScope::none();
        scope.allow("https://index.docker.io/v1/");
        scope.allow("127.0.0.1:5000");
        assert!(scope.check("registry-1.docker.io"));
        assert!(scope.check("127.0.0.1:5000"));
        assert!(!scope.check("ghcr.io"));
        assert!(!scope.check("GHCR.io"));
        assert!(!scope.check("127.0.0.1:5001"));
        let shared = scope.clone();
        assert_eq!(shared.withheld(), ["127.0.0.1:5001", "ghcr.io"]);
        scope.allow("*");
        assert!(scope.is_any() && scope.check("anything.example"));
        assert!(AuthScope::any().check("x"));
    }
}
