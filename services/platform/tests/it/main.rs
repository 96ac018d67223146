//! Integration tests of the plumbing against the real Postgres and NATS of this machine.
//! Each test makes its own database and its own stream and subject prefix.

mod authenticity;
mod bench;
mod consumer;
mod dead_letters;
mod grouped;
mod handover;
mod helpers;
mod limits;
mod outbox;
mod token_keys;
mod tracing_propagation;
mod upkeep;
