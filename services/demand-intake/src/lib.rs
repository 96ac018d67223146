//! Ground net (地网): enterprises, technology demands and their verification.

use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::demand::demand_service_server::{DemandService, DemandServiceServer};
use sqlx::migrate::Migrator;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Answers `UNIMPLEMENTED` until its issue lands.
#[derive(Debug, Clone)]
pub struct DemandApi;

impl DemandService for DemandApi {}

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let routes = Routes::new(DemandServiceServer::with_interceptor(
        DemandApi,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[<DemandServiceServer<DemandApi> as NamedService>::NAME],
    );
    Ok(runtime)
}
