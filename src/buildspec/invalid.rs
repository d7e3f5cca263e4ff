//! Mistakes in a build description, found before the daemon is contacted.
//! Messages name no CLI flag; a CLI adds its own hints where it maps a
//! variant to a flag.

use std::path::PathBuf;

use crate::credentials::CredentialsError;
use crate::dockerfile::DockerfileError;
use crate::output::OutputError;
use crate::session::secrets::SecretError;
use crate::session::sshforward::SshError;
use crate::spec::SpecError;

/// A mistake in the build description, found before contacting the daemon.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidBuild {
    /// The context directory is missing or not a directory.
    #[error("build context {} {reason}", path.display())]
    Context {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A named context's directory is missing or not a directory.
    #[error("named context {name:?} at {} {reason}", path.display())]
    NamedContext {
        /// The name.
        name: String,
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A named context's OCI layout cannot be read, or has no such image.
    #[error("named context {name:?}: OCI layout {}: {reason}", dir.display())]
    OciLayout {
        /// The name.
        name: String,
        /// The layout directory given.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A named context's name is reserved or malformed.
    #[error("named context {name:?}: {reason}")]
    ContextName {
        /// The name.
        name: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// The Dockerfile is missing or unreadable.
    #[error("{message}")]
    Dockerfile {
        /// What is wrong, naming the file.
        message: String,
    },
    /// A `# rbuild:` directive or the freshness policy cannot be applied.
    #[error("Dockerfile {file}: {source}")]
    Freshness {
        /// The Dockerfile.
        file: String,
        /// What is wrong.
        source: DockerfileError,
    },
    /// An output, cache or secret spec is malformed.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A multi-platform build split over a pool's nodes asks for something
    /// only one node could do (loading into a Docker Engine, a file output,
    /// an image that is not pushed), or names an image its index cannot be
    /// published under.
    #[error("a multi-platform build across nodes {reason}")]
    AcrossNodes {
        /// What cannot be done, and what to do instead.
        #[source]
        reason: SplitRefusal,
    },
    /// An image output pushes but nothing names the image.
    #[error("pushing needs an image name: tag the build or give the output a name")]
    PushWithoutName,
    /// More than one output writes to standard output.
    #[error("only one output can go to stdout")]
    TwoStdouts,
    /// An extra host entry is malformed.
    #[error("extra host {input:?}: expected HOST:IP, e.g. db:10.0.0.5")]
    ExtraHost {
        /// What was given.
        input: String,
    },
    /// A ulimit, size or annotation is malformed.
    #[error("{input:?}: {reason}")]
    Limit {
        /// What was given.
        input: String,
        /// What is wrong, and the right form.
        reason: String,
    },
    /// An attestation spec is malformed.
    #[error("attestation {input:?}: {reason}")]
    Attest {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// The daemon cannot store the attestation asked for.
    #[error("{kind} attestation: {reason}; or turn it off")]
    AttestUnsupported {
        /// The attestation asked for.
        kind: super::AttestKind,
        /// Why this daemon cannot store it, and what would.
        reason: String,
    },
    /// A build argument or label has an empty name.
    #[error("{what} {input:?}: the name is empty")]
    EmptyKey {
        /// `build argument` or `label`.
        what: &'static str,
        /// What was given.
        input: String,
    },
    /// A secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// An SSH agent or key cannot be used.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// The Docker config with registry credentials cannot be read.
    #[error(transparent)]
    Auth(#[from] CredentialsError),
}

/// Why a multi-platform build cannot be split over a pool's nodes: its
/// platforms are built on several nodes and joined in a registry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitRefusal {
    /// An image output that does not push: the parts can only meet in a
    /// registry.
    #[error("is joined in a registry: push its image, or build it on one node")]
    ImageNotPushed,
    /// An output that loads into a Docker Engine or writes files here:
    /// only one node could make it.
    #[error(
        "can only push its image: loading into a Docker Engine and file outputs need every \
         platform on one node"
    )]
    LocalOutput,
    /// Nothing is pushed, and the build does not only warm the cache.
    #[error("is joined in a registry: push its image under a name, or only warm the cache")]
    NothingPushed,
    /// A name the index cannot be published under.
    #[error("cannot publish {name}: {source}")]
    Unpublishable {
        /// The image name.
        name: String,
        /// Why it is no image name to publish under.
        source: crate::registry::RegistryError,
    },
    /// A tag with no room for the per-platform suffix of its parts.
    #[error("cannot tag {name}: its tag is too long for a platform suffix")]
    TagTooLong {
        /// The image name.
        name: String,
    },
}

impl From<OutputError> for InvalidBuild {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::PushWithoutName => InvalidBuild::PushWithoutName,
            OutputError::TwoStdouts => InvalidBuild::TwoStdouts,
        }
    }
}
