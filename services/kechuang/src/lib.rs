//! The whole platform in one process (what `kechuang up` runs and the end-to-end tests start),
//! the demo that drives it, and the bench that measures it.

pub mod bench;
pub mod demo;

use futures::future::try_join_all;
use kechuang_platform::{ServiceKind, ServiceRuntime, Settings};
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

/// Builds the service `config.kind` names.
pub async fn build(config: kechuang_platform::ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    match config.kind {
        ServiceKind::DemandIntake => demand_intake::build(config).await,
        ServiceKind::Matching => matching::build(config).await,
        ServiceKind::Subsidy => subsidy::build(config).await,
        ServiceKind::FundLedger => fund_ledger::build(config).await,
    }
}

/// The migrations of the service `kind` (the platform's own run before them, in
/// [`kechuang_platform::db::connect`]).
pub fn migrator(kind: ServiceKind) -> &'static sqlx::migrate::Migrator {
    match kind {
        ServiceKind::DemandIntake => &demand_intake::MIGRATOR,
        ServiceKind::Matching => &matching::MIGRATOR,
        ServiceKind::Subsidy => &subsidy::MIGRATOR,
        ServiceKind::FundLedger => &fund_ledger::MIGRATOR,
    }
}

/// Runs the service `kind` alone until Ctrl-C or SIGTERM, as its own binary would (settings
/// from `KC_*`): `kechuang serve`. Prints `<service> listening on <addr>` once it takes calls,
/// so whoever started it (a script, a test) learns the port when `KC_*_PORT` is 0.
pub fn serve(kind: ServiceKind) -> anyhow::Result<()> {
    kechuang_platform::launcher::run_one(kind, |config, shutdown| async move {
        let runtime = build(config).await?;
        println!("{} listening on {}", kind.name(), runtime.local_addr());
        runtime.run_until_stopped(shutdown).await
    })
}

/// The four services, started and listening.
pub struct Platform {
    services: Vec<(ServiceKind, ServiceRuntime)>,
}

impl Platform {
    /// Builds every service (databases and stream created when missing), in flow order.
    pub async fn start(settings: &Settings) -> anyhow::Result<Self> {
        let mut services = Vec::new();
        for kind in ServiceKind::ALL {
            services.push((kind, build(settings.service(kind)).await?));
        }
        Ok(Self { services })
    }

    pub fn addresses(&self) -> Vec<(ServiceKind, SocketAddr)> {
        self.services
            .iter()
            .map(|(kind, runtime)| (*kind, runtime.local_addr()))
            .collect()
    }

    pub fn address(&self, kind: ServiceKind) -> SocketAddr {
        self.services
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, runtime)| runtime.local_addr())
            .expect("every kind is started")
    }

    /// The pool of `kind`'s database.
    pub fn pool(&self, kind: ServiceKind) -> &sqlx::PgPool {
        self.services
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, runtime)| &runtime.pool)
            .expect("every kind is started")
    }

    /// The gateway's configuration from `settings`, pointed at these services' addresses.
    pub fn gateway_config(&self, settings: &Settings) -> kechuang_platform::GatewayConfig {
        let mut config = settings.gateway();
        let url = |kind| format!("http://{}", self.address(kind));
        config.demand_url = url(ServiceKind::DemandIntake);
        config.matching_url = url(ServiceKind::Matching);
        config.subsidy_url = url(ServiceKind::Subsidy);
        config.fund_url = url(ServiceKind::FundLedger);
        config
    }

    /// Serves until `shutdown`, then drains every service.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        try_join_all(
            self.services
                .into_iter()
                .map(|(_, runtime)| runtime.run_until_stopped(shutdown.clone())),
        )
        .await?;
        Ok(())
    }
}
