//! Ground net (地网): enterprises, technology demands and their verification.
//!
//! Enterprises register and submit demands; technology managers verify or reject them; the
//! status then follows what the matching and subsidy services report on the bus
//! (`kc.pairing.proposed` → MATCHING, `kc.pairing.accepted` → DOCKING, `kc.contract.signed` →
//! CONTRACTED, `kc.subsidy.disbursed` → COMPLETED), forward only.
//!
//! Decisions:
//! - An enterprise's id **is** its unified social credit code, so an enterprise's token names
//!   its id before the enterprise is registered, and it can register itself. Technology
//!   managers (who visit enterprises) and the `service` role may register any enterprise.
//! - Who may do what (`domain::access`):
//!
//!   | RPC | enterprise | tech_manager | auditor, finance_* | service |
//!   |---|---|---|---|---|
//!   | RegisterEnterprise | itself | yes | no | yes |
//!   | GetEnterprise, ListEnterprises, GetDemand, ListDemands | its own | all | all | all |
//!   | SubmitDemand | its own | no | no | any enterprise |
//!   | VerifyDemand | no | yes | no | yes |
//!   | WithdrawDemand | its own | no | no | yes |
//!
//!   Another enterprise's enterprise or demand answers `NOT_FOUND`, exactly like an unknown
//!   id (a listing naming another enterprise is empty), so existence does not leak. Wrong
//!   roles answer `PERMISSION_DENIED`; other roles (supplier, finance) are refused.
//! - `request_id` is scoped to the enterprise: two enterprises may use the same one. A retry
//!   of an accepted request returns its demand even after the deadline it named has passed.
//! - Listings carry no history (GetDemand does).
//! - A downstream event that does not move the demand (late, repeated, about a withdrawn,
//!   rejected, unverified or unknown demand) is acknowledged and kept with its reason in
//!   `demand_ignored_events`; it is never dead-lettered, since retrying cannot change it.

pub mod api;
pub mod domain;
pub mod enterprises;
pub mod events;
pub mod group_commit;
pub mod intake;
pub mod store;
pub mod submission;
pub mod wire;

use api::DemandApi;
use events::{IN_PARALLEL, SUBSCRIPTIONS, StageHandler};
use intake::Intake;
use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::demand::demand_service_server::DemandServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The producer name on the events this service emits.
pub const PRODUCER: &str = "demand-intake";

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let (writer, writers) = group_commit::group_commit();
    for _ in 0..group_commit::WRITERS {
        let (pool, writers) = (runtime.pool.clone(), writers.clone());
        let handover = runtime.handover.clone();
        runtime.spawn(move |cancel| writers.run(pool, handover, cancel));
    }
    let api = DemandApi::new(Intake::new(runtime.pool.clone(), writer));
    let routes = Routes::new(DemandServiceServer::with_interceptor(
        api,
        runtime.interceptor(),
    ));
    runtime.set_routes(
        routes,
        &[<DemandServiceServer<DemandApi> as NamedService>::NAME],
    );
    // Events about different demands are independent, and the state machine only moves a
    // demand forward, so one demand's events may be applied out of the stream's order.
    runtime.consume_grouped(&SUBSCRIPTIONS, Arc::new(StageHandler), IN_PARALLEL);
    Ok(runtime)
}
