//! Integration tests of the fund ledger: the real service over gRPC, real Postgres, real
//! NATS. Each test starts its own service with its own database and stream.

mod batching;
mod concurrency;
mod flow;
mod helpers;
mod replay;
mod rpc;
