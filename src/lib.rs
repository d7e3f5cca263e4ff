//! rbuild: a native Rust client for BuildKit.
//!
//! A Rust program can script builds with it: connect a [`Client`], describe
//! the build as a [`solve::BuildPlan`], run [`solve::solve`] and feed the
//! status stream to a [`progress::Progress`] renderer.
//!
//! # Layout
//!
//! - [`connect`]: daemon addresses and transports (unix, tcp, Docker Engine).
//! - [`client`]: a connected daemon: info, workers, and the Control stubs.
//! - [`session`]: the session tunnel and the services the daemon calls back
//!   on (health, filesync).
//! - [`dockerfile`]: Dockerfile analysis and the cache freshness policy
//!   (steps that fetch from outside renewed per time window).
//! - [`solve`]: a build plan becomes a `SolveRequest`; session, Solve and
//!   Status run together under one cancel token.
//! - [`cache`], [`spec`]: `--cache-from`/`--cache-to` and buildx's
//!   `type=...,k=v` flag syntax, validated before connecting.
//! - [`output`]: exporters and safe writing of the files they produce.
//! - [`status`], [`progress`]: status stream events and their renderers.
//! - [`engine`]: a small Docker Engine API client (`--load`, tests).
//! - [`registry`]: an OCI distribution client for cache housekeeping
//!   (`rbuild cache ls/du/prune`).
//! - [`proto`]: the generated BuildKit API.

pub mod cache;
pub mod client;
pub mod connect;
pub mod dockerfile;
pub mod duration;
pub mod engine;
pub(crate) mod http1;
pub mod output;
pub mod progress;
pub mod proto;
pub mod registry;
pub mod session;
pub mod solve;
pub mod spec;
pub mod status;

pub use client::{Client, ClientError, DaemonInfo, Worker};
pub use connect::{Address, ConnectError, ConnectOptions};
