//! End-to-end tests over the real services, Postgres and NATS.

mod flow;
mod forgery;
mod platform;
mod replicas;
mod saga;
