//! Payments and the subsidy applications they lead to.

use super::{ApplicationStatus, time, timestamp};
use chrono::{DateTime, Utc};
use kechuang_proto::subsidy as spb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Reports a payment made under a signed contract; it creates a subsidy application.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RecordPaymentBody {
    pub contract_id: String,
    pub amount_fen: i64,
    /// Not before the contract was signed, not in the future (a few minutes of clock skew
    /// allowed), and within the policy's claim window (365 days by default).
    pub paid_at: DateTime<Utc>,
    /// The bank's reference of the transfer; unique.
    pub bank_reference: String,
}

impl RecordPaymentBody {
    pub fn into_proto(self) -> spb::RecordPaymentRequest {
        spb::RecordPaymentRequest {
            contract_id: self.contract_id,
            amount_fen: self.amount_fen,
            paid_at: Some(timestamp(self.paid_at)),
            bank_reference: self.bank_reference,
        }
    }
}

/// A payment an enterprise made under a contract.
#[derive(Debug, Serialize, ToSchema)]
pub struct Payment {
    pub id: String,
    pub contract_id: String,
    pub enterprise_id: String,
    pub amount_fen: i64,
    pub paid_at: Option<DateTime<Utc>>,
    pub bank_reference: String,
    /// The subsidy application the payment created.
    pub application_id: String,
    pub create_time: Option<DateTime<Utc>>,
}

impl From<spb::Payment> for Payment {
    fn from(p: spb::Payment) -> Self {
        Self {
            id: p.id,
            contract_id: p.contract_id,
            enterprise_id: p.enterprise_id,
            amount_fen: p.amount_fen,
            paid_at: time(p.paid_at),
            bank_reference: p.bank_reference,
            application_id: p.application_id,
            create_time: time(p.create_time),
        }
    }
}

/// One approver's approval.
#[derive(Debug, Serialize, ToSchema)]
pub struct Approval {
    pub approver: String,
    pub note: String,
    pub approve_time: Option<DateTime<Utc>>,
}

/// A subsidy application, created by a payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Application {
    pub id: String,
    pub contract_id: String,
    pub enterprise_id: String,
    pub payment_id: String,
    pub policy_id: String,
    /// The subsidy granted, in fen.
    pub amount_fen: i64,
    /// The payment it refunds part of, in fen.
    pub payment_amount_fen: i64,
    /// The part of the payment the subsidy is computed on, in fen: for a registered contract
    /// the payment's pro-rata share of the certified technical amount.
    pub eligible_base_fen: i64,
    pub status: Option<ApplicationStatus>,
    pub approvals: Vec<Approval>,
    /// How many different approvers it needs (four eyes above the policy's threshold).
    pub required_approvals: i32,
    /// Why it is ineligible, rejected or failed.
    pub status_reason: String,
    /// How the amount was computed, step by step.
    pub computation: Vec<String>,
    pub fund_id: String,
    /// The bank's reference of the payout, once disbursed.
    pub payout_reference: String,
    pub create_time: Option<DateTime<Utc>>,
    pub update_time: Option<DateTime<Utc>>,
    /// `SUBSIDY`, or `BROKER_REWARD`: the reward of the broker who facilitated the deal
    /// (enterprises never see these).
    pub kind: String,
    /// Who is paid: the enterprise id for a subsidy, the broker for a reward.
    pub payee: String,
}

impl From<spb::SubsidyApplication> for Application {
    fn from(a: spb::SubsidyApplication) -> Self {
        Self {
            id: a.id,
            contract_id: a.contract_id,
            enterprise_id: a.enterprise_id,
            payment_id: a.payment_id,
            policy_id: a.policy_id,
            amount_fen: a.amount_fen,
            payment_amount_fen: a.payment_amount_fen,
            eligible_base_fen: a.eligible_base_fen,
            status: ApplicationStatus::from_proto(a.status),
            approvals: a
                .approvals
                .into_iter()
                .map(|x| Approval {
                    approver: x.approver,
                    note: x.note,
                    approve_time: time(x.approve_time),
                })
                .collect(),
            required_approvals: a.required_approvals,
            status_reason: a.status_reason,
            computation: a.computation,
            fund_id: a.fund_id,
            payout_reference: a.payout_reference,
            create_time: time(a.create_time),
            update_time: time(a.update_time),
            kind: match kechuang_proto::common::ApplicationKind::try_from(a.kind) {
                Ok(kechuang_proto::common::ApplicationKind::BrokerReward) => "BROKER_REWARD",
                _ => "SUBSIDY",
            }
            .into(),
            payee: a.payee,
        }
    }
}

/// What an application pays for: a subsidy to the enterprise, or the reward of the broker
/// who facilitated the deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApplicationKind {
    Subsidy,
    BrokerReward,
}

impl ApplicationKind {
    pub fn to_proto(self) -> i32 {
        use kechuang_proto::common::ApplicationKind as Proto;
        match self {
            ApplicationKind::Subsidy => Proto::Subsidy as i32,
            ApplicationKind::BrokerReward => Proto::BrokerReward as i32,
        }
    }
}

/// Filters and paging of the application listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListApplicationsQuery {
    pub status: Option<ApplicationStatus>,
    /// Only this kind; absent: every kind the caller may see (an enterprise sees only its
    /// subsidies, and asking for rewards is refused).
    pub kind: Option<ApplicationKind>,
    /// An enterprise lists only its own applications.
    pub enterprise_id: Option<String>,
    /// At most 500 (more is cut to 500); 0 or absent: 50.
    #[param(minimum = 0)]
    pub page_size: Option<i32>,
    pub page_token: Option<String>,
}

/// A page of applications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationPage {
    pub applications: Vec<Application>,
    pub next_page_token: String,
}
