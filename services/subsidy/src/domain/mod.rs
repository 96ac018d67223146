//! The subsidy domain: plain Rust, no I/O.

pub mod application;
pub mod audit;
pub mod calculator;
pub mod eligibility;
pub mod figures;
pub mod kind;
pub mod money;
pub mod policy;
pub mod registration;
pub mod reward;
pub mod timing;
