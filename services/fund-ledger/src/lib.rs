//! The fund ledger: double-entry accounts, two-phase transfers, reconciliation.

use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::fund::fund_service_server::{FundService, FundServiceServer};
use sqlx::migrate::Migrator;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub mod domain;

/// Answers `UNIMPLEMENTED` until its issue lands.
#[derive(Debug, Clone)]
pub struct FundApi;

impl FundService for FundApi {}

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let routes = Routes::new(FundServiceServer::with_interceptor(
        FundApi,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[<FundServiceServer<FundApi> as NamedService>::NAME],
    );
    Ok(runtime)
}
