//! Starts the whole platform in-process with its own databases, stream and subject prefix,
//! on ports the OS picks, and cleans up after itself (also when the test fails).

use crate::Api;
use kechuang::Platform;
use kechuang_platform::auth::Role;
use kechuang_platform::testing::{cleanup, isolated_settings};
use kechuang_platform::{ServiceKind, Settings};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub struct TestPlatform {
    pub settings: Settings,
    addresses: Vec<(ServiceKind, SocketAddr)>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestPlatform {
    pub async fn start() -> Self {
        Self::start_with(isolated_settings()).await
    }

    /// The platform with `settings` (start from [`isolated_settings`]).
    pub async fn start_with(settings: Settings) -> Self {
        crate::books::prepare_databases(&settings).await;
        let platform = Platform::start(&settings).await.expect("platform starts");
        let addresses = platform.addresses();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(platform.run_until_stopped(shutdown.clone()));
        Self {
            settings,
            addresses,
            shutdown,
            task: Some(task),
        }
    }

    pub fn address(&self, kind: ServiceKind) -> SocketAddr {
        self.addresses
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, a)| *a)
            .expect("started")
    }

    pub async fn channel(&self, kind: ServiceKind) -> Channel {
        Channel::from_shared(format!("http://{}", self.address(kind)))
            .expect("uri")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect")
    }

    /// Clients of the four services.
    pub fn api(&self) -> Api {
        let replicas: Vec<_> = self
            .addresses
            .iter()
            .map(|(kind, addr)| (*kind, 0, *addr))
            .collect();
        Api::new(&self.settings, &replicas)
    }

    pub fn token(&self, role: Role, subject: &str, enterprise_id: Option<&str>) -> String {
        kechuang_platform::testing::token(&self.settings, role, subject, enterprise_id)
    }

    /// Stops every service, then drops the databases and the stream.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let stopped = self.task.take().expect("running").await;
        cleanup(&self.settings).await;
        stopped.expect("join").expect("clean stop");
    }
}

/// A test that panics before [`TestPlatform::stop`] still drops its databases and stream.
impl Drop for TestPlatform {
    fn drop(&mut self) {
        if self.task.is_some() {
            self.shutdown.cancel();
            crate::cleanup_from_drop(&self.settings);
        }
    }
}
