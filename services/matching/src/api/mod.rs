//! The gRPC doors: thin; rules live in `domain`, SQL in `store`.

mod catalog;
mod matching;
mod supplier;

pub use catalog::CatalogApi;
pub use matching::MatchingApi;
