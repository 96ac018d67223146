//! Storage (sqlx, parameterised). Small functions over a connection, so callers compose them
//! in one transaction.

pub mod applications;
pub mod audit;
pub mod contracts;
pub mod figures;
pub mod payouts;
pub mod policies;
pub mod registrations;
