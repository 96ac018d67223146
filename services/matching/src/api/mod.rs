//! The gRPC doors: thin; rules live in `domain`, SQL in `store`.

mod catalog;
mod matching;

pub use catalog::CatalogApi;
pub use matching::MatchingApi;
