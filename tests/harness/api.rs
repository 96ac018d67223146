//! gRPC clients of the platform's public APIs. With several replicas of a service, each call
//! goes to the next replica in turn, so every replica serves traffic; a killed replica is
//! retired from the rotation.

use kechuang_platform::auth::{Issuer, Role};
use kechuang_platform::{ServiceKind, Settings};
use kechuang_proto::demand::demand_service_client::DemandServiceClient;
use kechuang_proto::fund::fund_service_client::FundServiceClient;
use kechuang_proto::matching::catalog_service_client::CatalogServiceClient;
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::subsidy::policy_service_client::PolicyServiceClient;
use kechuang_proto::subsidy::registration_service_client::RegistrationServiceClient;
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tonic::transport::Channel;

pub struct Api {
    issuer: Issuer,
    services: Vec<(ServiceKind, Mutex<Rotation>)>,
}

/// The live replicas of one service and whose turn is next.
struct Rotation {
    replicas: Vec<(usize, Channel)>,
    next: usize,
}

impl Api {
    /// Clients of `replicas`: (service, replica number, address); tokens of the issuer of
    /// `settings`.
    pub fn new(settings: &Settings, replicas: &[(ServiceKind, usize, SocketAddr)]) -> Self {
        let services = ServiceKind::ALL
            .into_iter()
            .map(|kind| {
                let channels = replicas
                    .iter()
                    .filter(|(k, _, _)| *k == kind)
                    .map(|(_, n, addr)| (*n, channel(*addr)))
                    .collect();
                let rotation = Rotation {
                    replicas: channels,
                    next: 0,
                };
                (kind, Mutex::new(rotation))
            })
            .collect();
        Self {
            issuer: settings.issuer().expect("the test's token issuer"),
            services,
        }
    }

    /// The next live replica of `kind`.
    pub fn channel(&self, kind: ServiceKind) -> Channel {
        let mut rotation = self.rotation(kind).lock().expect("rotation lock");
        assert!(
            !rotation.replicas.is_empty(),
            "no live replica of {}",
            kind.name()
        );
        let turn = rotation.next % rotation.replicas.len();
        rotation.next = rotation.next.wrapping_add(1);
        rotation.replicas[turn].1.clone()
    }

    /// Stops sending calls to replica `replica` of `kind` (it was killed).
    pub fn retire(&self, kind: ServiceKind, replica: usize) {
        let mut rotation = self.rotation(kind).lock().expect("rotation lock");
        rotation.replicas.retain(|(n, _)| *n != replica);
    }

    pub fn demands(&self) -> DemandServiceClient<Channel> {
        DemandServiceClient::new(self.channel(ServiceKind::DemandIntake))
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel(ServiceKind::Matching))
    }

    pub fn matching(&self) -> MatchingServiceClient<Channel> {
        MatchingServiceClient::new(self.channel(ServiceKind::Matching))
    }

    pub fn subsidy(&self) -> SubsidyServiceClient<Channel> {
        SubsidyServiceClient::new(self.channel(ServiceKind::Subsidy))
    }

    pub fn policies(&self) -> PolicyServiceClient<Channel> {
        PolicyServiceClient::new(self.channel(ServiceKind::Subsidy))
    }

    pub fn registrations(&self) -> RegistrationServiceClient<Channel> {
        RegistrationServiceClient::new(self.channel(ServiceKind::Subsidy))
    }

    pub fn fund(&self) -> FundServiceClient<Channel> {
        FundServiceClient::new(self.channel(ServiceKind::FundLedger))
    }

    /// A bearer token for `role`, valid for an hour.
    pub fn token(&self, role: Role, subject: &str, enterprise_id: Option<&str>) -> String {
        self.issuer
            .mint_for(role, subject, enterprise_id, Duration::from_secs(3600))
    }

    fn rotation(&self, kind: ServiceKind) -> &Mutex<Rotation> {
        self.services
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| r)
            .expect("every kind has a rotation")
    }
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}
