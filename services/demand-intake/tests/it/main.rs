//! demand-intake against the real Postgres and NATS of this machine: each test runs the real
//! service on port 0 with its own database and stream, and talks to it over gRPC.

mod access;
mod backlog;
mod downstream;
mod enterprises;
mod group_commit;
mod helpers;
mod lifecycle;
mod listing;
mod migrations;
mod submit;
