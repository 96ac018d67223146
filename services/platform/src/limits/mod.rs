//! What one caller or one flood may take from a server (issue 20, item 6). Every gRPC service
//! gets all of it from [`crate::runtime`]; the gateway uses the same pieces over HTTP.
//!
//! - [`conn`]: at most `max_connections` open connections per listener (one more is closed at
//!   once, counted, logged at most once a second), and a deadline for a new connection's first
//!   bytes (a half-sent HTTP/2 preface is dropped after `handshake_timeout`).
//! - [`grpc`]: at most `max_concurrent_requests` requests in flight per service, refused with
//!   RESOURCE_EXHAUSTED beyond it (health checks are outside the limit), and the per-caller
//!   write rate.
//! - [`drain`]: a request body nobody read is read to its end, so that refusals do not
//!   wear out the connection's HTTP/2 budget.
//! - [`writes`]: which RPCs are writes, and the per-caller token bucket (governor's GCRA).
//!
//! The rest comes from tonic's own server options (see `runtime.rs`): the request timeout,
//! HTTP/2 keepalive pings and the streams per connection.

pub mod conn;
pub mod drain;
pub mod grpc;
pub mod writes;

pub use conn::{Admission, Guarded};
pub use writes::{WriteLimiter, is_write_rpc, retry_delay};
