//! Where a pool placed a build, as progress shows it and reports keep it:
//! plain data, made by the pool and read by renderers and reports, so it
//! lives below both.

/// A node that was passed over for a build, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Skipped {
    /// The node's name.
    pub node: String,
    /// Its address.
    pub address: String,
    /// What went wrong: no answer in time, a failed health check.
    pub reason: String,
}

/// Where a build went.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Placement {
    /// The node that built.
    pub node: String,
    /// Its address.
    pub address: String,
    /// What the build was routed by.
    pub key: RouteKey,
    /// Nodes before it in the key's order that did not take the build.
    pub skipped: Vec<Skipped>,
    /// The platforms it built, when a multi-platform build was split over
    /// several nodes; empty otherwise (it built them all).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
}

/// What a build is routed by, and where that came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteKey {
    /// The key as hashed (credentials never appear in it).
    pub value: String,
    /// Why this is the key.
    pub source: KeySource,
}

/// Where a [`RouteKey`] came from, in the order they are tried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// Given by the caller ([`Build::routed_by`](crate::Build::routed_by)).
    Given,
    /// The build's registry cache ref: builds that share a cache share a node.
    CacheRef,
    /// The git remote of the repository the context directory is in, and
    /// the context's path inside it: the same on every checkout.
    Git,
    /// A remote context's URL.
    Remote,
    /// The context directory's absolute path.
    Path,
    /// Nothing better: an archive or a Dockerfile alone.
    Unnamed,
}

impl KeySource {
    /// Words for progress and reports.
    pub fn describe(self) -> &'static str {
        match self {
            KeySource::Given => "given",
            KeySource::CacheRef => "the registry cache ref",
            KeySource::Git => "the git remote and path",
            KeySource::Remote => "the remote context",
            KeySource::Path => "the context path",
            KeySource::Unnamed => "no context name",
        }
    }
}

impl std::fmt::Display for RouteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.value, self.source.describe())
    }
}

/// `"name" (address)`, or the address alone when it is the name.
pub(crate) fn shown(name: &str, address: &str) -> String {
    if name == address {
        address.to_string()
    } else {
        format!("{name:?} ({address})")
    }
}
