//! Rows as the public API shows them: one conversion per resource, below both the gRPC
//! services (`api`) and the change follower (`sync`).

use crate::store::{AchievementRow, ContractRow, PairingRow};
use kechuang_platform::events::timestamp;
use kechuang_proto::events::ContractSigned;
use kechuang_proto::matching::{Achievement, Contract, Pairing};

pub fn achievement_proto(row: &AchievementRow) -> Achievement {
    Achievement {
        id: row.id.clone(),
        institution: row.institution.clone(),
        title: row.title.clone(),
        r#abstract: row.r#abstract.clone(),
        keywords: row.keywords.clone(),
        industry_chain: row.industry_chain.clone(),
        trl: row.trl,
        transfer_modes: row.transfer_modes.clone(),
        asking_price_fen: row.asking_price_fen,
        region_code: row.region_code.clone(),
        create_time: Some(timestamp(row.created_at)),
        withdraw_time: row.withdrawn_at.map(timestamp),
        withdraw_reason: row.withdrawn_reason.clone(),
    }
}

pub fn pairing_proto(row: &PairingRow) -> Pairing {
    Pairing {
        id: row.id.clone(),
        demand_id: row.demand_id.clone(),
        achievement_id: row.achievement_id.clone(),
        score: row.score,
        rank: row.rank,
        reasons: row.reasons.clone(),
        status: row.status,
        enterprise_id: row.enterprise_id.clone(),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
        accept_time: row.accepted_at.map(timestamp),
        contract_id: row.contract_id.clone().unwrap_or_default(),
    }
}

pub fn contract_proto(row: &ContractRow) -> Contract {
    Contract {
        id: row.id.clone(),
        pairing_id: row.pairing_id.clone(),
        demand_id: row.demand_id.clone(),
        achievement_id: row.achievement_id.clone(),
        enterprise_id: row.enterprise_id.clone(),
        supplier: row.supplier.clone(),
        contract_no: row.contract_no.clone(),
        contract_type: row.contract_type,
        amount_fen: row.amount_fen,
        signed_at: Some(timestamp(row.signed_at)),
        region_code: row.region_code.clone(),
        industry_chain: row.industry_chain.clone(),
        create_time: Some(timestamp(row.created_at)),
    }
}

/// The `kc.contract.signed` payload of a stored contract.
pub fn contract_signed(row: &ContractRow) -> ContractSigned {
    ContractSigned {
        contract_id: row.id.clone(),
        pairing_id: row.pairing_id.clone(),
        demand_id: row.demand_id.clone(),
        achievement_id: row.achievement_id.clone(),
        enterprise_id: row.enterprise_id.clone(),
        supplier: row.supplier.clone(),
        contract_no: row.contract_no.clone(),
        contract_type: row.contract_type,
        amount_fen: row.amount_fen,
        signed_at: Some(timestamp(row.signed_at)),
        region_code: row.region_code.clone(),
        industry_chain: row.industry_chain.clone(),
        supplier_region_code: row.supplier_region_code.clone(),
        // Matching's side of issue 24 item 3 records who brokered the deal; until it lands,
        // nobody (and the subsidy service rewards nobody).
        facilitator: String::new(),
        facilitator_role: String::new(),
    }
}
