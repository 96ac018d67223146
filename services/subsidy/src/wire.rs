//! Rows and domain values as the public API shows them: every conversion to protobuf here.

use crate::domain::policy::Policy;
use crate::store::applications::{Application, ApprovalRow, Payment};
use crate::store::registrations::Registration;
use chrono::{DateTime, Utc};
use kechuang_platform::events::timestamp;
use kechuang_proto::subsidy as pb;

pub fn policy(p: &Policy) -> pb::Policy {
    pb::Policy {
        id: p.id.clone(),
        name: p.name.clone(),
        fund_id: p.fund_id.clone(),
        tiers: p
            .tiers
            .iter()
            .map(|t| pb::PolicyTier {
                from_cumulative_fen: t.from_cumulative_fen,
                ratio_bps: t.ratio_bps,
            })
            .collect(),
        per_contract_cap_fen: p.per_contract_cap_fen,
        per_enterprise_annual_cap_fen: p.per_enterprise_annual_cap_fen,
        contract_types: p.contract_types.iter().map(|t| *t as i32).collect(),
        region_prefixes: p.region_prefixes.clone(),
        industry_chains: p.industry_chains.clone(),
        valid_from: Some(timestamp(p.valid_from)),
        valid_to: p.valid_to.map(timestamp),
        four_eyes_threshold_fen: p.four_eyes_threshold_fen,
        version: p.version,
        created_by: p.created_by.clone(),
        create_time: Some(timestamp(p.created_at)),
        status: p.status.to_proto() as i32,
        proposed_by: p.created_by.clone(),
        decided_by: p.decided_by.clone(),
        decided_at: p.decided_at.map(timestamp),
        decision_note: p.decision_note.clone(),
        superseded_by: p.superseded_by.clone(),
        superseded_at: p.superseded_at.map(timestamp),
        claim_window_days: p.claim_window_days,
        subsidise_unregistered: p.subsidise_unregistered,
        kind: p.kind.to_policy_proto() as i32,
    }
}

pub fn application(a: &Application, approvals: &[ApprovalRow]) -> pb::SubsidyApplication {
    pb::SubsidyApplication {
        id: a.id.clone(),
        contract_id: a.contract_id.clone(),
        enterprise_id: a.enterprise_id.clone(),
        payment_id: a.payment_id.clone(),
        policy_id: a.policy_id.clone().unwrap_or_default(),
        amount_fen: a.amount_fen,
        status: a.status().to_proto() as i32,
        approvals: approvals
            .iter()
            .filter(|x| x.application_id == a.id)
            .map(|x| pb::Approval {
                approver: x.approver.clone(),
                note: x.note.clone(),
                approve_time: Some(timestamp(x.approved_at)),
            })
            .collect(),
        required_approvals: a.required_approvals,
        status_reason: a.status_reason.clone(),
        computation: a.computation.clone(),
        fund_id: a.fund_id.clone().unwrap_or_default(),
        create_time: Some(timestamp(a.created_at)),
        update_time: Some(timestamp(a.updated_at)),
        payout_reference: a.payout_reference.clone(),
        payment_amount_fen: a.payment_amount_fen,
        eligible_base_fen: a.eligible_base_fen,
        kind: a.kind().to_application_proto() as i32,
        payee: a.payee.clone(),
    }
}

pub fn payment(p: &Payment, application_id: &str) -> pb::Payment {
    pb::Payment {
        id: p.id.clone(),
        contract_id: p.contract_id.clone(),
        enterprise_id: p.enterprise_id.clone(),
        amount_fen: p.amount_fen,
        paid_at: Some(timestamp(p.paid_at)),
        bank_reference: p.bank_reference.clone(),
        application_id: application_id.to_string(),
        create_time: Some(timestamp(p.created_at)),
    }
}

/// A registration as the registrar sees it, its status as it stands at `now`.
pub fn registration(r: &Registration, now: DateTime<Utc>) -> pb::Registration {
    pb::Registration {
        contract_id: r.contract_id.clone(),
        status: crate::domain::registration::status(r.state(), r.deadline, now) as i32,
        registration_no: r.registration_no.clone().unwrap_or_default(),
        contract_type: r.contract_type.unwrap_or_default(),
        certified_amount_fen: r.certified_amount_fen.unwrap_or_default(),
        registrar: r.registrar.clone(),
        note: r.note.clone(),
        refusal_reason: r.refusal_reason.clone(),
        create_time: Some(timestamp(r.created_at)),
        decide_time: r.decided_at.map(timestamp),
        deadline: Some(timestamp(r.deadline)),
        contract_no: r.contract_no.clone(),
        enterprise_id: r.enterprise_id.clone(),
        supplier: r.supplier.clone(),
        declared_contract_type: r.declared_contract_type,
        contract_amount_fen: r.contract_amount_fen,
        signed_at: Some(timestamp(r.signed_at)),
        region_code: r.region_code.clone(),
        industry_chain: r.industry_chain.clone(),
    }
}
