//! Finance net (金网) and policy package (政策包): policies, payments, applications, approval, disbursement.

pub mod domain;

use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::subsidy::policy_service_server::{PolicyService, PolicyServiceServer};
use kechuang_proto::subsidy::subsidy_service_server::{SubsidyService, SubsidyServiceServer};
use sqlx::migrate::Migrator;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Answers `UNIMPLEMENTED` until its issue lands.
#[derive(Debug, Clone)]
pub struct PolicyApi;

impl PolicyService for PolicyApi {}

/// Answers `UNIMPLEMENTED` until its issue lands.
#[derive(Debug, Clone)]
pub struct SubsidyApi;

impl SubsidyService for SubsidyApi {}

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let routes = Routes::new(PolicyServiceServer::with_interceptor(
        PolicyApi,
        runtime.interceptor(),
    ))
    .add_service(SubsidyServiceServer::with_interceptor(
        SubsidyApi,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[
            <PolicyServiceServer<PolicyApi> as NamedService>::NAME,
            <SubsidyServiceServer<SubsidyApi> as NamedService>::NAME,
        ],
    );
    Ok(runtime)
}
