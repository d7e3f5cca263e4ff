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
//! - [`build`]: the typed build description, its outputs, results and errors.
//! - [`bake`]: bake files (HCL, JSON) -> builds for `Client::build_all`.
//! - [`client`]: a connected daemon: info, workers, `build`, `build_all`.
//! - [`connect`]: daemon addresses and transports (unix, tcp, TLS, Docker
//!   Engine, docker-container, ssh).
//! - [`pool`]: several daemons; each build placed on one by rendezvous
//!   hashing of its routing key, unhealthy nodes skipped; builder configs.
//! - [`progress`]: typed build events and their renderers (tty, plain,
//!   rawjson, quiet), one output for many concurrent builds.
//! - [`status`]: the daemon's progress messages as plain Rust values.
//! - [`dockerfile`]: Dockerfile analysis and the cache freshness policy.
//! - [`upstream`]: what a fetching step's git ref or URL is now (the exact
//!   freshness policy's cache key).
//! - [`duration`]: the one duration syntax (`30s`, `90m`, `6h`, `7d`).
//! - [`engine`]: a small Docker Engine API client (`--load`, tests).
//! - [`registry`]: an OCI distribution client for cache housekeeping.
//! - [`proto`]: the generated BuildKit API, for programs that need a raw call.
//!
//! Internals (the session and its services, the solve runner, exporter
//! wiring) are private: the daemon calls them back, a program never does.

#![warn(missing_docs)]

#[cfg(feature = "bake")]
pub mod bake;
pub mod buildspec;
pub mod cache;
pub mod client;
pub mod connect;
pub mod credentials;
pub(crate) mod daemon;
pub mod docker_api;
pub mod dockerfile;
pub mod duration;
mod error_chain;
#[cfg(test)]
mod fuzz;
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
#[cfg(test)]
mod testing;
pub mod upstream;

pub use buildspec::{Build, Dockerfile, Entitlement, Network};
pub use cache::{CacheEntry, CacheEnv};
pub use client::{BuildOptions, Client, ClientError, DaemonInfo, Worker};
pub use connect::{Address, ConnectError, ConnectOptions};
pub use error_chain::error_chain;
pub use outcome::{BuildError, BuildResult, StepFailure};
pub use output::Output;
pub use spec::SpecError;
pub use tokio_util::sync::CancellationToken;
