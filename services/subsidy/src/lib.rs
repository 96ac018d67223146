//! Finance net (金网) and policy package (政策包): subsidy policies, payments under signed
//! contracts, applications computed by policy, four-eyes approval, the disbursement saga
//! with the fund ledger, and the registration of technology contracts.

pub mod anchors;
pub mod api;
pub mod approvals;
pub mod domain;
pub mod events;
pub mod judging;
pub mod payout;
pub mod reservations;
pub mod rewards;
pub mod seed;
pub mod settlements;
pub mod store;
pub mod wire;

use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::event_types;
use kechuang_proto::subsidy::policy_service_server::PolicyServiceServer;
use kechuang_proto::subsidy::registration_service_server::RegistrationServiceServer;
use kechuang_proto::subsidy::subsidy_service_server::SubsidyServiceServer;
use payout::{PayoutGateway, SimulatedBank};
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The producer name on events and the audit trail.
pub const PRODUCER: &str = "subsidy";

/// The service with the simulated bank configured by `config.tuning`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let bank = SimulatedBank::new(
        config.tuning.payout_latency,
        config.tuning.payout_failure_rate,
    );
    build_with(config, Arc::new(bank)).await
}

/// The service paying out through `gateway`.
pub async fn build_with(
    config: ServiceConfig,
    gateway: Arc<dyn PayoutGateway>,
) -> anyhow::Result<ServiceRuntime> {
    let max_attempts = config.tuning.payout_max_attempts;
    let registration_window_days = config.tuning.registration_window_days;
    payout::describe_metrics();
    let limits = domain::policy::Limits::new(config.tuning.policy_cap_ceiling_fen);
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    seed::hubei_policy(&runtime.pool, &limits).await?;
    let (handover, handed) = payout::Handover::new();
    let (reservations, queued) = reservations::Reservations::new();
    let pool = runtime.pool.clone();
    runtime.spawn(move |cancel| reservations::run(pool, queued, cancel));
    runtime.consume(
        "contracts",
        event_types::CONTRACT_SIGNED,
        Arc::new(events::Contracts {
            registration_window_days,
        }),
    );
    // The ledger's answers are about one application each (its row lock orders them), so
    // several may be handled at a time without disturbing each other's order.
    runtime.consume_in_parallel(
        "fund",
        event_types::every::FUND,
        Arc::new(events::FundAnswers {
            payouts: handover,
            reservations,
        }),
        events::FUND_ANSWERS_PARALLELISM,
    );
    let pool = runtime.pool.clone();
    let (settlements, outcomes) = settlements::Settlements::new();
    let pool_for_settlements = runtime.pool.clone();
    runtime.spawn(move |cancel| settlements::run(pool_for_settlements, outcomes, cancel));
    runtime.spawn(move |cancel| {
        payout::run_worker(pool, gateway, settlements, max_attempts, handed, cancel)
    });
    let pool = runtime.pool.clone();
    runtime.spawn(move |cancel| judging::run_sweep(pool, cancel));
    let pool = runtime.pool.clone();
    runtime.spawn(move |cancel| store::audit::run_integrator(pool, cancel));
    let policies = api::PolicyApi::new(runtime.pool.clone(), limits);
    let (approvals, queued) = approvals::Approvals::new();
    let pool = runtime.pool.clone();
    runtime.spawn(move |cancel| approvals::run(pool, queued, cancel));
    let anchors = anchors::Anchors::new(
        runtime.jetstream.clone(),
        runtime.config.bus.clone(),
        runtime.event_keys.clone(),
    );
    let subsidies = api::SubsidyApi::new(runtime.pool.clone(), approvals, anchors);
    let registrations = api::RegistrationApi::new(runtime.pool.clone());
    let routes = Routes::new(PolicyServiceServer::with_interceptor(
        policies,
        runtime.interceptor(),
    ))
    .add_service(SubsidyServiceServer::with_interceptor(
        subsidies,
        runtime.interceptor(),
    ))
    .add_service(RegistrationServiceServer::with_interceptor(
        registrations,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[
            <PolicyServiceServer<api::PolicyApi> as NamedService>::NAME,
            <SubsidyServiceServer<api::SubsidyApi> as NamedService>::NAME,
            <RegistrationServiceServer<api::RegistrationApi> as NamedService>::NAME,
        ],
    );
    Ok(runtime)
}
