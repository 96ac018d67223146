//! The ground net's rules: plain Rust, no I/O.

pub mod access;
pub mod status;
pub mod validate;

pub use status::{Command, IgnoreReason, Reaction, Refusal, Stage, Status};
