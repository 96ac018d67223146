//! The engine on small hand-written data: vocabulary gaps closed, hard negatives kept down,
//! reverse matching on the forward scale, replacement by id, determinism, concurrency.

mod eval_set;
mod fixtures;
mod matching;
mod reverse;
