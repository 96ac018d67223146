//! End-to-end tests over the real services, Postgres and NATS.

mod bad_input;
mod flow;
mod forgery;
mod platform;
mod registration;
mod replicas;
mod rewards;
mod saga;
