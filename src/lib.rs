//! rbuild: a native Rust client for BuildKit.
//!
//! # Layout
//!
//! - [`connect`]: daemon addresses and transports (unix, tcp, Docker Engine).
//! - [`client`]: a connected daemon: info, workers, and the Control stubs.
//! - [`proto`]: the generated BuildKit API.

pub mod client;
pub mod connect;
pub mod proto;

pub use client::{Client, ClientError, DaemonInfo, Worker};
pub use connect::{Address, ConnectError, ConnectOptions};
