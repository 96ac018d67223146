//! Rows as the public messages and event payloads.

use crate::domain::Status;
use crate::store::{ChangeRow, DemandRow, EnterpriseRow};
use kechuang_platform::error::Error;
use kechuang_platform::events::timestamp;
use kechuang_proto::common::ContractType;
use kechuang_proto::demand::{Demand, DemandStatus, Enterprise, StatusChange};
use kechuang_proto::events::DemandDetails;

pub fn enterprise(row: &EnterpriseRow) -> Enterprise {
    Enterprise {
        id: row.id.clone(),
        name: row.name.clone(),
        credit_code: row.credit_code.clone(),
        region_code: row.region_code.clone(),
        industry_chain: row.industry_chain.clone(),
        create_time: Some(timestamp(row.created_at)),
        registered_by: row.registered_by.clone(),
    }
}

fn wire_status(name: Option<&str>) -> DemandStatus {
    name.and_then(Status::parse)
        .map_or(DemandStatus::Unspecified, Status::to_wire)
}

pub fn change(row: &ChangeRow) -> StatusChange {
    StatusChange {
        from_status: wire_status(row.from_status.as_deref()) as i32,
        to_status: wire_status(Some(&row.to_status)) as i32,
        actor: row.actor.clone(),
        cause_event_id: row
            .cause_event_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        note: row.note.clone(),
        change_time: Some(timestamp(row.changed_at)),
    }
}

/// A demand with its history (empty in listings).
pub fn demand(row: &DemandRow, history: &[ChangeRow]) -> Result<Demand, Error> {
    Ok(Demand {
        id: row.id.to_string(),
        enterprise_id: row.enterprise_id.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        industry_chain: row.industry_chain.clone(),
        contract_type: contract_type(row) as i32,
        budget_min_fen: row.budget_min_fen,
        budget_max_fen: row.budget_max_fen,
        region_code: row.region_code.clone(),
        deadline: Some(timestamp(row.deadline)),
        status: row.status()?.to_wire() as i32,
        history: history.iter().map(change).collect(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    })
}

fn contract_type(row: &DemandRow) -> ContractType {
    ContractType::try_from(row.contract_type).unwrap_or(ContractType::Unspecified)
}

/// What other services need to know about a demand.
pub fn details(row: &DemandRow) -> DemandDetails {
    DemandDetails {
        demand_id: row.id.to_string(),
        enterprise_id: row.enterprise_id.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        industry_chain: row.industry_chain.clone(),
        contract_type: contract_type(row) as i32,
        budget_min_fen: row.budget_min_fen,
        budget_max_fen: row.budget_max_fen,
        region_code: row.region_code.clone(),
        deadline: Some(timestamp(row.deadline)),
    }
}
