//! The whole platform in one process (what `kechuang up` runs and the end-to-end tests start),
//! and the demo that drives it.

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
