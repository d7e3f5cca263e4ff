//! Test doubles, compiled only for the crate's own unit tests: a fake Docker
//! Engine API, a fake registry, and a hostile daemon that attacks a real
//! session over the real tunnel. They live here, outside the modules they
//! stand in for, so the production tree holds production code only.

pub(crate) mod fake_engine;
pub(crate) mod fake_registry;
mod hostile;
