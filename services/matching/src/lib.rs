//! Sky net (天网): the achievement catalog, matching, pairings and contracts.

use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::matching::catalog_service_server::{CatalogService, CatalogServiceServer};
use kechuang_proto::matching::matching_service_server::{MatchingService, MatchingServiceServer};
use sqlx::migrate::Migrator;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Answers `UNIMPLEMENTED` until its issue lands.
#[derive(Debug, Clone)]
pub struct CatalogApi;

impl CatalogService for CatalogApi {}

/// Answers `UNIMPLEMENTED` until its issue lands.
#[derive(Debug, Clone)]
pub struct MatchingApi;

impl MatchingService for MatchingApi {}

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let routes = Routes::new(CatalogServiceServer::with_interceptor(
        CatalogApi,
        runtime.interceptor(),
    ))
    .add_service(MatchingServiceServer::with_interceptor(
        MatchingApi,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[
            <CatalogServiceServer<CatalogApi> as NamedService>::NAME,
            <MatchingServiceServer<MatchingApi> as NamedService>::NAME,
        ],
    );
    Ok(runtime)
}
