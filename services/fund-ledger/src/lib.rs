//! The fund ledger: double-entry accounts, two-phase transfers, reconciliation.
//!
//! `domain` holds the rules (pure), `store` the tables, `ledger` the operations (a batch of
//! requests on one fund per transaction, events through the outbox), `group_commit` the
//! per-fund tasks that gather those batches, `api` the gRPC service, `events` the handlers
//! of the subsidy service's events.

pub mod api;
pub mod domain;
pub mod events;
pub mod gauges;
pub mod group_commit;
pub mod ledger;
pub mod store;
pub mod wire;

use api::FundApi;
use group_commit::GroupCommit;
use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::fund::fund_service_server::FundServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connects, migrates, seeds the default fund and wires the service; run it with
/// `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let mut tx = runtime.pool.begin().await?;
    ledger::seed_default_fund(&mut tx).await?;
    tx.commit().await?;
    runtime.consume_in_parallel(
        "subsidy",
        kechuang_proto::event_types::every::SUBSIDY,
        Arc::new(events::SubsidyEvents::new(GroupCommit::new(
            runtime.pool.clone(),
        ))),
        events::PARALLELISM,
    );
    gauges::describe();
    runtime.sample(gauges::balances);
    let routes = Routes::new(FundServiceServer::with_interceptor(
        FundApi::new(runtime.pool.clone()),
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[<FundServiceServer<FundApi> as NamedService>::NAME],
    );
    Ok(runtime)
}
