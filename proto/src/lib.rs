//! kechuang's wire contract: the public gRPC APIs (`kechuang.<area>.v1`) and the event
//! envelope (`kechuang.events.v1`), generated from `proto/` at build time.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

include!(concat!(env!("OUT_DIR"), "/kechuang.rs"));

/// The encoded `FileDescriptorSet` of every kechuang proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kechuang_descriptor.bin"));

pub use kechuang::common::v1 as common;
pub use kechuang::demand::v1 as demand;
pub use kechuang::events::v1 as events;
pub use kechuang::fund::v1 as fund;
pub use kechuang::matching::v1 as matching;
pub use kechuang::subsidy::v1 as subsidy;

pub mod codec;
pub mod event_types;
pub use event_types::{EventType, producer_of};
