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
    /// only one node could do (`--load`, a file output, an image that is
    /// not pushed).
    #[error("a multi-platform build across nodes {reason}")]
    AcrossNodes {
        /// What cannot be done, and what to do instead.
        reason: String,
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
    #[error("{kind} attestation: {reason}; or turn it off (--{kind}=false)")]
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

impl From<OutputError> for InvalidBuild {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::PushWithoutName => InvalidBuild::PushWithoutName,
            OutputError::TwoStdouts => InvalidBuild::TwoStdouts,
        }
    }
}
