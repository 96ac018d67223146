//! gRPC clients of the four services, and the tokens of the demo's people.

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
use std::time::Duration;
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Clients {
    pub demand: DemandServiceClient<Channel>,
    pub catalog: CatalogServiceClient<Channel>,
    pub matching: MatchingServiceClient<Channel>,
    pub subsidy: SubsidyServiceClient<Channel>,
    pub policy: PolicyServiceClient<Channel>,
    pub registrations: RegistrationServiceClient<Channel>,
    pub fund: FundServiceClient<Channel>,
}

async fn channel(addr: SocketAddr) -> anyhow::Result<Channel> {
    Channel::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {addr}: {e} (is `kechuang up` running?)"))
}

impl Clients {
    pub async fn connect(addr: impl Fn(ServiceKind) -> SocketAddr) -> anyhow::Result<Self> {
        let matching = channel(addr(ServiceKind::Matching)).await?;
        let subsidy = channel(addr(ServiceKind::Subsidy)).await?;
        Ok(Self {
            demand: DemandServiceClient::new(channel(addr(ServiceKind::DemandIntake)).await?)
                .max_decoding_message_size(64 << 20),
            catalog: CatalogServiceClient::new(matching.clone()),
            matching: MatchingServiceClient::new(matching).max_decoding_message_size(64 << 20),
            subsidy: SubsidyServiceClient::new(subsidy.clone()).max_decoding_message_size(64 << 20),
            policy: PolicyServiceClient::new(subsidy.clone()),
            registrations: RegistrationServiceClient::new(subsidy),
            fund: FundServiceClient::new(channel(addr(ServiceKind::FundLedger)).await?),
        })
    }
}

/// Technology managers, registrars and pairs of approvers the demo's work is spread over:
/// each person is held to the platform's per-caller write rate, as a real office's staff
/// would be, so the office's pace grows with its staff, not with one person's speed.
pub const STAFF: usize = 8;

/// Tokens for the demo's cast.
pub struct Cast {
    issuer: Issuer,
    managers: Vec<String>,
    registrars: Vec<String>,
    reviewers: Vec<(String, String)>,
    pub supplier: String,
    pub officer: String,
    pub approver_1: String,
    pub approver_2: String,
    pub auditor: String,
}

impl Cast {
    /// The cast's tokens, signed by the platform's token issuer (`KC_TOKEN_SIGNING_KEY`, or
    /// the development issuer of `kechuang up`).
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let issuer = settings.issuer()?;
        let mint = |role, subject: &str| {
            issuer.mint_for(
                role,
                subject,
                None,
                kechuang_platform::auth::DEFAULT_MAX_LIFETIME,
            )
        };
        let staff = |role, family: &str| -> Vec<String> {
            (1..=STAFF)
                .map(|k| mint(role, &format!("{family}{k}")))
                .collect()
        };
        Ok(Self {
            managers: staff(Role::TechManager, "技术经理人·周"),
            registrars: staff(Role::Registrar, "登记员·吴"),
            reviewers: staff(Role::FinanceApprover, "审批人·李")
                .into_iter()
                .zip(staff(Role::FinanceApprover, "审批人·赵"))
                .collect(),
            supplier: mint(Role::Supplier, "成果转化办·陈"),
            officer: mint(Role::FinanceOfficer, "财政专员·王"),
            approver_1: mint(Role::FinanceApprover, "审批人·李"),
            approver_2: mint(Role::FinanceApprover, "审批人·赵"),
            auditor: mint(Role::Auditor, "审计·孙"),
            issuer,
        })
    }

    /// The technology manager who handles item `i` (an enterprise, a demand).
    pub fn manager(&self, i: usize) -> &str {
        &self.managers[i % self.managers.len()]
    }

    /// The registrar who examines contract `i`.
    pub fn registrar(&self, i: usize) -> &str {
        &self.registrars[i % self.registrars.len()]
    }

    /// The two approvers who review application `i`: the first, and the second above the
    /// four-eyes threshold.
    pub fn reviewers(&self, i: usize) -> (&str, &str) {
        let (first, second) = &self.reviewers[i % self.reviewers.len()];
        (first, second)
    }

    pub fn enterprise(&self, credit_code: &str) -> String {
        self.issuer.mint_for(
            Role::Enterprise,
            &format!("财务·{credit_code}"),
            Some(credit_code),
            kechuang_platform::auth::DEFAULT_MAX_LIFETIME,
        )
    }
}

pub use kechuang_platform::auth::authed;
