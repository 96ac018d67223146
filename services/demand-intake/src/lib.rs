//! Ground net (地网): enterprises, technology demands and their verification.
//!
//! Enterprises register (an enterprise's id is its unified social credit code) and submit
//! demands; technology managers verify or reject them; the status then follows what the
//! matching and subsidy services report on the bus.

pub mod api;
pub mod domain;
pub mod events;
pub mod intake;
pub mod store;
pub mod wire;

use api::DemandApi;
use events::{SUBSCRIPTIONS, StageHandler};
use intake::Intake;
use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::demand::demand_service_server::DemandServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The producer name on the events this service emits.
pub const SERVICE: &str = "demand-intake";

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let api = DemandApi::new(Intake::new(runtime.pool.clone()));
    let routes = Routes::new(DemandServiceServer::with_interceptor(
        api,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[<DemandServiceServer<DemandApi> as NamedService>::NAME],
    );
    let handler = Arc::new(StageHandler);
    for (name, subjects) in SUBSCRIPTIONS {
        runtime.consume(name, subjects, handler.clone());
    }
    Ok(runtime)
}
