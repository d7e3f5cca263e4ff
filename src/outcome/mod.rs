//! What running a build gives back: a [`BuildResult`] (each output's
//! result, the step counts, the cache report, the context upload and the
//! warnings) or a [`BuildError`] that says what the caller can do about it.

mod error;
pub(crate) mod provenance;
mod result;
mod warnings;

pub(crate) use error::missing_cache_backend;
pub use error::{BuildError, PoolError, SourceLocation, StepFailure};
pub use result::{
    BuildResult, CacheFailureReport, CacheReport, MetadataProvenance, StepReport, UploadStats,
};
