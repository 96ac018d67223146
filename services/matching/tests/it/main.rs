//! The sky net against the real Postgres and NATS of this machine, over gRPC.

mod catalog;
mod contracts;
mod facilitators;
mod helpers;
mod migrations;
mod pairings;
mod reflection;
mod semantic;
mod signing;
mod supplier;
mod withdrawal;
