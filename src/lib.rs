//! rbuild: a native Rust client for BuildKit.
//!
//! A Rust program scripts builds with one typed API, the same one the
//! `rbuild` CLI (and bake) use: connect a [`Client`], describe each build as
//! a [`Build`], run it with [`Client::build`] (or several at once, sharing
//! one connection and one upload of a shared context, with
//! [`Client::build_all`]) and get a [`BuildResult`] or a typed
//! [`BuildError`]. Progress arrives as [`progress::Event`]s, which the
//! renderers in [`progress`] turn into buildx-style output.
//!
//! ```no_run
//! use rbuild::{Address, Build, Client, ConnectOptions, Output};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect(Address::default_local(), &ConnectOptions::default()).await?;
//! let result = client
//!     .build(
//!         &Build::new("examples/app")
//!             .tag("127.0.0.1:5000/app:1")
//!             .output(Output::registry())
//!             .cache("127.0.0.1:5000/app-cache"),
//!     )
//!     .await?;
//! println!("pushed {:?}", result.outputs[0].digest());
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! Modules from the bottom layer up; each uses only modules listed before
//! it (ARCHITECTURE.md has the rule and `tests/layers.rs` checks it).
//!
//! - [`proto`]: the generated BuildKit API, for programs that need a raw call.
//! - [`digest`], [`duration`]: content digests; the one duration syntax.
//! - [`credentials`]: registry logins from the Docker config, and which
//!   hosts may get them.
//! - [`docker_api`]: a small Docker Engine API client (`--load`, the
//!   engine's image store).
//! - [`connect`]: daemon addresses and transports (unix, tcp, TLS, Docker
//!   Engine, docker-container, ssh).
//! - [`progress`]: build events, the daemon's status messages as plain Rust
//!   values, and their renderers (tty, plain, rawjson, quiet).
//! - [`session`]: what a build hands its session (secrets, SSH agents, a
//!   context archive); the services themselves are internal.
//! - [`registry`], [`upstream`]: an OCI distribution client; what a fetching
//!   step's git ref or URL is now.
//! - [`cache`], [`output`], [`dockerfile`]: cache entries, outputs and their
//!   results, Dockerfile analysis and the freshness policy.
//! - [`subrequests`]: questions for the frontend instead of a build
//!   (build checks, outline, targets) and their typed answers.
//! - [`buildspec`]: [`Build`], the typed description of one build.
//! - [`outcome`]: [`BuildResult`] and [`BuildError`].
//! - [`request`]: the Solve request a build sends ([`Build::preview`]).
//! - [`client`]: [`Client`]: `build`, `build_all`, `info`.
//! - [`report`]: the end-of-build report's schema.
//! - [`pool`] (feature `pool`): several daemons as one; which daemons the
//!   environment names ([`pool::Selection`]).
//! - [`bake`] (feature `bake`): bake files (HCL, JSON, compose) -> builds.
//!
//! Internals (the session's services, the solve runner, exporter wiring)
//! are private: the daemon calls them back, a program never does.
//!
//! # Features
//!
//! `cli` (default) is the `rbuild` binary's: a program that only uses the
//! library sets `default-features = false` and picks `bake`, `pool` and
//! `ssh-agent` (the in-process agent for `--ssh ID=KEYFILE`) as it needs.

#![warn(missing_docs)]
// The docs link the feature-gated `pool` and `bake`; without them those
// links have nothing to point at.
#![cfg_attr(
    not(all(feature = "pool", feature = "bake")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "bake")]
pub mod bake;
pub mod buildspec;
pub mod cache;
pub mod client;
pub mod connect;
pub mod credentials;
pub(crate) mod daemon;
pub mod digest;
pub mod docker_api;
pub mod dockerfile;
pub mod duration;
mod error_chain;
#[cfg(test)]
mod fuzz;
pub(crate) mod gateway;
pub mod outcome;
pub mod output;
#[cfg(feature = "pool")]
pub mod pool;
pub mod progress;
pub mod proto;
pub mod registry;
pub mod report;
pub mod request;
pub mod session;
pub(crate) mod solve;
pub(crate) mod spec;
pub mod subrequests;
#[cfg(test)]
mod testing;
pub mod upstream;

pub use buildspec::{Build, Dockerfile, Entitlement, Network};
pub use cache::{CacheEntry, CacheEnv};
pub use client::{BuildOptions, Client, ClientError, DaemonInfo, Worker};
pub use connect::{Address, ConnectError, ConnectOptions};
pub use digest::Digest;
pub use error_chain::error_chain;
pub use outcome::{BuildError, BuildResult, StepFailure};
pub use output::Output;
pub use spec::SpecError;
pub use tokio_util::sync::CancellationToken;
