//! Compiles the hand-written BuildKit protos in `proto/` with protox (a pure
//! Rust protobuf compiler), so building rbuild needs no `protoc` on the machine.

const PROTOS: &[&str] = &[
    "control.proto",
    "worker.proto",
    "ops.proto",
    "fsutil.proto",
    "filesync.proto",
    "auth.proto",
    "secrets.proto",
    "sshforward.proto",
    "upload.proto",
    "content.proto",
    "errdefs.proto",
    "rpc_status.proto",
    "caps.proto",
    "gateway.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed=proto/{proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        // Payload-carrying fields (file chunks, tunnel bytes, logs) become
        // `bytes::Bytes` so they move between tasks without copying.
        .bytes(".")
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
