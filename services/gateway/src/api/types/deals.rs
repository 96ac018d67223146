//! Pairings, and the contracts signed on them.

use super::{ContractType, PairingStatus, time, timestamp};
use chrono::{DateTime, Utc};
use kechuang_proto::matching as mpb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
    /// Who facilitated the deal, recorded on acceptance (empty before, and when unknown): the
    /// broker the enterprise named, else the technology manager who verified the demand.
    pub facilitator: String,
    /// `broker` or `tech_manager`; empty when `facilitator` is.
    pub facilitator_role: String,
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
            facilitator: p.facilitator,
            facilitator_role: p.facilitator_role,
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
    /// Only when accepting (optional): the sign-in name (token subject) of the technology
    /// broker (技术经纪人) who brokered the deal, recorded as its facilitator. Not the caller.
    #[serde(default)]
    pub broker: String,
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
    /// Who facilitated the deal (the pairing's facilitator when it was signed).
    pub facilitator: String,
    /// `broker` or `tech_manager`; empty when `facilitator` is.
    pub facilitator_role: String,
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
            facilitator: c.facilitator,
            facilitator_role: c.facilitator_role,
        }
    }
}
