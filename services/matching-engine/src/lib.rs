//! Sky net (天网) matching engine: pairs enterprises' technology demands with achievements.
//!
//! Pure domain code with an in-RAM index, no database, no network:
//! - `analysis`: jieba segmentation of mixed Chinese/English text;
//! - `relations`: curated symptom → method knowledge (`data/term_relations.tsv`) used to
//!   expand a demand's query, so "焊缝气孔" finds "激光-电弧复合焊接";
//! - `engine`: tantivy BM25 candidate retrieval over title, keywords and abstract, joined by
//!   the nearest achievements in meaning (`dense`: sentence embeddings made by the caller);
//! - `score` + `fit`: the documented re-ranking by text relevance and structured fit;
//! - `reasons`: why each pairing was made, in Chinese;
//! - `eval`: ranking metrics for the committed evaluation set.

mod analysis;
pub mod dense;
pub mod docs;
mod engine;
pub mod eval;
mod evidence;
pub mod fit;
mod index;
pub mod outcomes;
pub mod reasons;
pub mod relations;
pub mod score;

pub use docs::{AchievementDoc, DemandDoc, DemandMatch, Match};
pub use engine::Engine;
pub use index::Tuning;
pub use score::Blend;
