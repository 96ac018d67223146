//! Enterprises and their demands.

use super::{ContractType, DemandStatus, time, timestamp};
use chrono::{DateTime, Utc};
use kechuang_proto::demand as dpb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

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
