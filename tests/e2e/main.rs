//! End-to-end tests over the real services, Postgres and NATS.

mod flow;
mod platform;
mod replicas;
mod saga;
