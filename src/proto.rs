//! Generated BuildKit API types and gRPC stubs, one module per protobuf package.
//!
//! The nesting mirrors the protobuf package names because prost refers to other
//! packages through relative `super::` paths.

#![allow(clippy::all, missing_docs, rustdoc::all)]

/// `package pb` (solver/pb/ops.proto): platforms, progress groups, source info.
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

/// `package errdefs` (solver/errdefs/errdefs.proto): a failed Solve's
/// vertex and Dockerfile source range.
pub mod errdefs {
    include!(concat!(env!("OUT_DIR"), "/errdefs.rs"));
}

/// `package google.rpc`: the gRPC status details envelope.
pub mod google {
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// `package fsutil.types`: the stat and packet framing of directory transfers.
pub mod fsutil {
    pub mod types {
        include!(concat!(env!("OUT_DIR"), "/fsutil.types.rs"));
    }
}

pub mod moby {
    pub mod buildkit {
        /// `package moby.buildkit.v1`: the Control service.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.rs"));
            /// `package moby.buildkit.v1.types`: worker records.
            pub mod types {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.types.rs"));
            }
            /// `package moby.buildkit.v1.apicaps`: the capabilities a
            /// gateway reports.
            pub mod apicaps {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.apicaps.rs"));
            }
            /// `package moby.buildkit.v1.frontend`: the gateway's LLB bridge.
            pub mod frontend {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.frontend.rs"));
            }
        }
        pub mod secrets {
            /// `package moby.buildkit.secrets.v1`.
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.secrets.v1.rs"));
            }
        }
    }
    pub mod filesync {
        /// `package moby.filesync.v1`: FileSync, FileSend and Auth.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.filesync.v1.rs"));
        }
    }
    pub mod sshforward {
        /// `package moby.sshforward.v1`.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.sshforward.v1.rs"));
        }
    }
    pub mod upload {
        /// `package moby.upload.v1`: a context archive the daemon pulls.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.upload.v1.rs"));
        }
    }
}

pub mod containerd {
    pub mod services {
        pub mod content {
            /// `package containerd.services.content.v1`: the content store the
            /// daemon reaches on the session (local cache import/export).
            pub mod v1 {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/containerd.services.content.v1.rs"
                ));
            }
        }
    }
}
