//! Compiles `kechuang/**/*.proto` with protox (pure Rust: no protoc needed) and generates
//! prost messages and tonic clients and servers.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "kechuang/common/v1/common.proto",
    "kechuang/demand/v1/demand.proto",
    "kechuang/matching/v1/matching.proto",
    "kechuang/subsidy/v1/subsidy.proto",
    "kechuang/subsidy/v1/registration.proto",
    "kechuang/fund/v1/fund.proto",
    "kechuang/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTOS, ["."])?;
    // Served by gRPC reflection.
    std::fs::write(
        out_dir.join("kechuang_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .generate_default_stubs(true)
        // Undecodable requests are INVALID_ARGUMENT (src/codec.rs).
        .codec_path("crate::codec::Codec")
        .include_file("kechuang.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
