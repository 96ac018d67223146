//! `kechuang demo`: loads a realistic data set through the public gRPC APIs and drives the
//! whole flow with simulated actors, then prints the funnel and the fund's figures.

mod catalog;
mod clients;
pub mod data;
mod deals;
mod driver;
mod finance;
mod ground;
mod policy;
mod registration;
mod report;

pub use clients::Clients;
pub(crate) use driver::bar;
pub use driver::{DemoOptions, run};
