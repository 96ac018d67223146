//! The JSON shapes of the HTTP API: the gRPC messages with snake_case enums, RFC 3339 times
//! and money in fen, and their conversions to and from the proto messages.

use chrono::{DateTime, Utc};
use kechuang_proto::common::ContractType as PbContractType;
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use prost_types::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    kechuang_platform::events::timestamp(t)
}

pub fn time(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
    kechuang_platform::events::from_timestamp(&t?)
}

/// The five kinds of Chinese technology contract (技术合同).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContractType {
    /// 技术开发
    Development,
    /// 技术转让
    Transfer,
    /// 技术许可
    License,
    /// 技术咨询
    Consulting,
    /// 技术服务
    Service,
}

impl ContractType {
    pub fn to_proto(self) -> i32 {
        (match self {
            ContractType::Development => PbContractType::Development,
            ContractType::Transfer => PbContractType::Transfer,
            ContractType::License => PbContractType::License,
            ContractType::Consulting => PbContractType::Consulting,
            ContractType::Service => PbContractType::Service,
        }) as i32
    }

    pub fn from_proto(value: i32) -> Option<Self> {
        match PbContractType::try_from(value).ok()? {
            PbContractType::Development => Some(ContractType::Development),
            PbContractType::Transfer => Some(ContractType::Transfer),
            PbContractType::License => Some(ContractType::License),
            PbContractType::Consulting => Some(ContractType::Consulting),
            PbContractType::Service => Some(ContractType::Service),
            PbContractType::Unspecified => None,
        }
    }
}

/// Where a demand is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DemandStatus {
    Submitted,
    Verified,
    Rejected,
    Matching,
    Docking,
    Contracted,
    Completed,
    Withdrawn,
}

impl DemandStatus {
    const ALL: [(DemandStatus, dpb::DemandStatus); 8] = [
        (DemandStatus::Submitted, dpb::DemandStatus::Submitted),
        (DemandStatus::Verified, dpb::DemandStatus::Verified),
        (DemandStatus::Rejected, dpb::DemandStatus::Rejected),
        (DemandStatus::Matching, dpb::DemandStatus::Matching),
        (DemandStatus::Docking, dpb::DemandStatus::Docking),
        (DemandStatus::Contracted, dpb::DemandStatus::Contracted),
        (DemandStatus::Completed, dpb::DemandStatus::Completed),
        (DemandStatus::Withdrawn, dpb::DemandStatus::Withdrawn),
    ];

    pub fn to_proto(self) -> i32 {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, p)| *p as i32)
            .unwrap_or(0)
    }

    pub fn from_proto(value: i32) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, p)| *p as i32 == value)
            .map(|(s, _)| *s)
    }
}

/// Where a pairing is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PairingStatus {
    Proposed,
    Accepted,
    Rejected,
    Expired,
}

impl PairingStatus {
    pub fn from_proto(value: i32) -> Option<Self> {
        match mpb::PairingStatus::try_from(value).ok()? {
            mpb::PairingStatus::Proposed => Some(PairingStatus::Proposed),
            mpb::PairingStatus::Accepted => Some(PairingStatus::Accepted),
            mpb::PairingStatus::Rejected => Some(PairingStatus::Rejected),
            mpb::PairingStatus::Expired => Some(PairingStatus::Expired),
            mpb::PairingStatus::Unspecified => None,
        }
    }
}

/// Where a subsidy application is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    PendingReview,
    Approved,
    Rejected,
    Ineligible,
    FundsReserved,
    Waitlisted,
    Disbursed,
    DisbursementFailed,
}

impl ApplicationStatus {
    const ALL: [(ApplicationStatus, spb::ApplicationStatus); 8] = [
        (
            ApplicationStatus::PendingReview,
            spb::ApplicationStatus::PendingReview,
        ),
        (
            ApplicationStatus::Approved,
            spb::ApplicationStatus::Approved,
        ),
        (
            ApplicationStatus::Rejected,
            spb::ApplicationStatus::Rejected,
        ),
        (
            ApplicationStatus::Ineligible,
            spb::ApplicationStatus::Ineligible,
        ),
        (
            ApplicationStatus::FundsReserved,
            spb::ApplicationStatus::FundsReserved,
        ),
        (
            ApplicationStatus::Waitlisted,
            spb::ApplicationStatus::Waitlisted,
        ),
        (
            ApplicationStatus::Disbursed,
            spb::ApplicationStatus::Disbursed,
        ),
        (
            ApplicationStatus::DisbursementFailed,
            spb::ApplicationStatus::DisbursementFailed,
        ),
    ];

    pub fn to_proto(self) -> i32 {
        Self::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, p)| *p as i32)
            .unwrap_or(0)
    }

    pub fn from_proto(value: i32) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, p)| *p as i32 == value)
            .map(|(s, _)| *s)
    }
}

// ---- enterprises -------------------------------------------------------------------------

/// Registers an enterprise by its unified social credit code.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterEnterpriseBody {
    pub name: String,
    /// 18-character unified social credit code (GB 32100-2015), with its check character.
    pub credit_code: String,
    /// 6-digit administrative region code, e.g. `420100` (Wuhan).
    pub region_code: String,
    /// An industry chain of the catalog, e.g. `高端装备`.
    pub industry_chain: String,
}

/// An enterprise (企业).
#[derive(Debug, Serialize, ToSchema)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    pub credit_code: String,
    pub region_code: String,
    pub industry_chain: String,
    pub create_time: Option<DateTime<Utc>>,
}

impl From<dpb::Enterprise> for Enterprise {
    fn from(e: dpb::Enterprise) -> Self {
        Self {
            id: e.id,
            name: e.name,
            credit_code: e.credit_code,
            region_code: e.region_code,
            industry_chain: e.industry_chain,
            create_time: time(e.create_time),
        }
    }
}

// ---- demands -----------------------------------------------------------------------------

/// Submits a technology demand (技术需求); idempotent on `request_id`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmitDemandBody {
    /// Client-chosen idempotency key: the same key again returns the same demand.
    pub request_id: String,
    pub enterprise_id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: ContractType,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
    pub deadline: DateTime<Utc>,
}

impl SubmitDemandBody {
    pub fn into_proto(self) -> dpb::SubmitDemandRequest {
        dpb::SubmitDemandRequest {
            request_id: self.request_id,
            enterprise_id: self.enterprise_id,
            title: self.title,
            description: self.description,
            industry_chain: self.industry_chain,
            contract_type: self.contract_type.to_proto(),
            budget_min_fen: self.budget_min_fen,
            budget_max_fen: self.budget_max_fen,
            region_code: self.region_code,
            deadline: Some(timestamp(self.deadline)),
        }
    }
}

/// One move of a demand from one status to another.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChange {
    pub from_status: Option<DemandStatus>,
    pub to_status: Option<DemandStatus>,
    /// The person or the event type that moved it.
    pub actor: String,
    pub note: String,
    pub change_time: Option<DateTime<Utc>>,
}

/// A technology demand (技术需求).
#[derive(Debug, Serialize, ToSchema)]
pub struct Demand {
    pub id: String,
    pub enterprise_id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: Option<ContractType>,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
    pub deadline: Option<DateTime<Utc>>,
    pub status: Option<DemandStatus>,
    pub history: Vec<StatusChange>,
    pub create_time: Option<DateTime<Utc>>,
    pub update_time: Option<DateTime<Utc>>,
}

impl From<dpb::Demand> for Demand {
    fn from(d: dpb::Demand) -> Self {
        Self {
            id: d.id,
            enterprise_id: d.enterprise_id,
            title: d.title,
            description: d.description,
            industry_chain: d.industry_chain,
            contract_type: ContractType::from_proto(d.contract_type),
            budget_min_fen: d.budget_min_fen,
            budget_max_fen: d.budget_max_fen,
            region_code: d.region_code,
            deadline: time(d.deadline),
            status: DemandStatus::from_proto(d.status),
            history: d
                .history
                .into_iter()
                .map(|h| StatusChange {
                    from_status: DemandStatus::from_proto(h.from_status),
                    to_status: DemandStatus::from_proto(h.to_status),
                    actor: h.actor,
                    note: h.note,
                    change_time: time(h.change_time),
                })
                .collect(),
            create_time: time(d.create_time),
            update_time: time(d.update_time),
        }
    }
}

/// Filters and paging of the demand listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDemandsQuery {
    /// Only demands in this status.
    pub status: Option<DemandStatus>,
    /// Only this enterprise's demands (an enterprise sees only its own anyway).
    pub enterprise_id: Option<String>,
    pub industry_chain: Option<String>,
    /// At most 500 (more is cut to 500); 0 or absent: 50.
    #[param(minimum = 0)]
    pub page_size: Option<i32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// A page of demands, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DemandPage {
    pub demands: Vec<Demand>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// Withdraws a demand before it is contracted.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct WithdrawBody {
    #[serde(default)]
    pub reason: String,
}

// ---- pairings and contracts --------------------------------------------------------------

/// Paging of a demand's pairings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most 500 (more is cut to 500); 0 or absent: 50.
    #[param(minimum = 0)]
    pub page_size: Option<i32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

/// A demand paired with an achievement, scored and explained.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pairing {
    pub id: String,
    pub demand_id: String,
    pub achievement_id: String,
    pub score: f64,
    /// 1 is best.
    pub rank: i32,
    /// Why: matched terms, fits and misfits, in Chinese.
    pub reasons: Vec<String>,
    pub status: Option<PairingStatus>,
    pub enterprise_id: String,
    pub create_time: Option<DateTime<Utc>>,
    pub update_time: Option<DateTime<Utc>>,
    /// When the enterprise accepted it: a contract on it is signed at or after this time.
    pub accept_time: Option<DateTime<Utc>>,
}

impl From<mpb::Pairing> for Pairing {
    fn from(p: mpb::Pairing) -> Self {
        Self {
            id: p.id,
            demand_id: p.demand_id,
            achievement_id: p.achievement_id,
            score: if p.score.is_finite() { p.score } else { 0.0 },
            rank: p.rank,
            reasons: p.reasons,
            status: PairingStatus::from_proto(p.status),
            enterprise_id: p.enterprise_id,
            create_time: time(p.create_time),
            update_time: time(p.update_time),
            accept_time: time(p.accept_time),
        }
    }
}

/// A page of a demand's pairings, best first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairingPage {
    pub pairings: Vec<Pairing>,
    pub next_page_token: String,
}

/// The demand's enterprise accepts (docking) or rejects a proposed pairing.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RespondBody {
    pub accept: bool,
    #[serde(default)]
    pub note: String,
}

/// Records a technology contract signed for an accepted pairing; idempotent on `request_id`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignContractBody {
    pub request_id: String,
    pub pairing_id: String,
    /// The contract's registration number, e.g. `鄂技合字2026-0001`.
    pub contract_no: String,
    pub contract_type: ContractType,
    pub amount_fen: i64,
    /// Not before the pairing's `accept_time`, not in the future (a few minutes of clock skew
    /// allowed).
    pub signed_at: DateTime<Utc>,
}

impl SignContractBody {
    pub fn into_proto(self) -> mpb::SignContractRequest {
        mpb::SignContractRequest {
            request_id: self.request_id,
            pairing_id: self.pairing_id,
            contract_no: self.contract_no,
            contract_type: self.contract_type.to_proto(),
            amount_fen: self.amount_fen,
            signed_at: Some(timestamp(self.signed_at)),
        }
    }
}

/// A signed technology contract (技术合同).
#[derive(Debug, Serialize, ToSchema)]
pub struct Contract {
    pub id: String,
    pub pairing_id: String,
    pub demand_id: String,
    pub achievement_id: String,
    pub enterprise_id: String,
    /// The supplying institution.
    pub supplier: String,
    pub contract_no: String,
    pub contract_type: Option<ContractType>,
    pub amount_fen: i64,
    pub signed_at: Option<DateTime<Utc>>,
    pub region_code: String,
    pub industry_chain: String,
    pub create_time: Option<DateTime<Utc>>,
}

impl From<mpb::Contract> for Contract {
    fn from(c: mpb::Contract) -> Self {
        Self {
            id: c.id,
            pairing_id: c.pairing_id,
            demand_id: c.demand_id,
            achievement_id: c.achievement_id,
            enterprise_id: c.enterprise_id,
            supplier: c.supplier,
            contract_no: c.contract_no,
            contract_type: ContractType::from_proto(c.contract_type),
            amount_fen: c.amount_fen,
            signed_at: time(c.signed_at),
            region_code: c.region_code,
            industry_chain: c.industry_chain,
            create_time: time(c.create_time),
        }
    }
}

// ---- payments and applications -----------------------------------------------------------

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
        }
    }
}

/// Filters and paging of the application listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListApplicationsQuery {
    pub status: Option<ApplicationStatus>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_proto_values() {
        for s in DemandStatus::ALL.map(|(s, _)| s) {
            assert_eq!(DemandStatus::from_proto(s.to_proto()), Some(s));
        }
        for s in ApplicationStatus::ALL.map(|(s, _)| s) {
            assert_eq!(ApplicationStatus::from_proto(s.to_proto()), Some(s));
        }
        for t in [
            ContractType::Development,
            ContractType::Transfer,
            ContractType::License,
            ContractType::Consulting,
            ContractType::Service,
        ] {
            assert_eq!(ContractType::from_proto(t.to_proto()), Some(t));
        }
        assert_eq!(ContractType::from_proto(0), None);
        assert_eq!(DemandStatus::from_proto(99), None);
    }

    #[test]
    fn times_round_trip_and_bad_nanos_are_none() {
        let t = DateTime::parse_from_rfc3339("2026-11-24T08:30:00.5Z")
            .unwrap()
            .to_utc();
        assert_eq!(time(Some(timestamp(t))), Some(t));
        assert_eq!(
            time(Some(Timestamp {
                seconds: 0,
                nanos: -1
            })),
            None
        );
        assert_eq!(time(None), None);
    }

    #[test]
    fn json_enums_are_snake_case() {
        assert_eq!(
            serde_json::to_string(&ApplicationStatus::PendingReview).unwrap(),
            "\"pending_review\""
        );
        let body: RespondBody = serde_json::from_str(r#"{"accept":true}"#).unwrap();
        assert!(body.accept && body.note.is_empty());
    }
}
