//! Plumbing shared by the four kechuang services. Nothing here knows the domain: services
//! bring their migrations, handlers and gRPC services; this crate runs them.

pub mod auth;
pub mod bench;
pub mod bus;
pub mod config;
pub mod consumer;
pub mod db;
pub mod dead_letters;
pub mod error;
pub mod events;
pub mod groups;
pub mod idempotency;
pub mod input;
pub mod launcher;
pub mod limits;
pub mod locks;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod runtime;
pub mod seal;
pub mod telemetry;
pub mod upkeep;

pub use auth::{Caller, Role};
pub use config::{GatewayConfig, ServiceConfig, ServiceKind, Settings};
pub use consumer::{EventHandler, HandlerError};
pub use error::{Error, Result, Violations};
pub use events::NewEvent;
pub use runtime::ServiceRuntime;

#[cfg(feature = "testing")]
pub mod testing;
