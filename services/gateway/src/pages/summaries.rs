//! How a policy, a contract and an application's four-eyes state read on a page: the same in
//! the finance console and the enterprise portal.

use super::layout::{contract_type, local_opt};
use crate::money::{percent_bps, yuan};
use kechuang_proto::matching::Contract;
use kechuang_proto::subsidy::{self as spb, ApplicationStatus, Policy};
use maud::{Markup, html};

pub fn policy_summary(policy: Option<&Policy>, policy_id: &str) -> Markup {
    match policy {
        Some(p) => html! {
            div { (p.name) " " span.muted { "v" (p.version) } }
            div.muted {
                @for (i, t) in p.tiers.iter().enumerate() {
                    @if i > 0 { "；" }
                    "≥" (yuan(t.from_cumulative_fen)) " " (percent_bps(t.ratio_bps))
                }
                @if p.per_contract_cap_fen > 0 { "；每合同上限 " (yuan(p.per_contract_cap_fen)) }
                @if p.per_enterprise_annual_cap_fen > 0 { "；每企业年上限 " (yuan(p.per_enterprise_annual_cap_fen)) }
            }
        },
        None if policy_id.is_empty() => html! { span.muted { "—" } },
        None => html! { span.mono { (policy_id) } },
    }
}

pub fn contract_summary(contract: Option<&Contract>, contract_id: &str) -> Markup {
    match contract {
        Some(c) => html! {
            div { (c.contract_no) " · " (contract_type(c.contract_type)) }
            div.muted { (c.supplier) " · " (c.industry_chain) " · 合同额 " (yuan(c.amount_fen)) }
        },
        None => html! { span.mono { (contract_id) } },
    }
}

/// Who approved, and how many more different approvers it needs.
pub fn four_eyes(a: &spb::SubsidyApplication) -> Markup {
    let have = a.approvals.len() as i32;
    let need = a.required_approvals.max(1);
    let missing = (need - have).max(0);
    html! {
        div.four-eyes data-approvals=(have) data-required=(need) {
            strong { (have) " / " (need) } " 已批准 approved"
            @for x in &a.approvals {
                div { "✔ " (x.approver) " " span.muted { (local_opt(crate::api::types::time(x.approve_time))) } }
            }
            @if a.status == ApplicationStatus::PendingReview as i32 {
                @if missing > 0 {
                    div.bad.still { "还需 " (missing) " 位审批人 still needs " (missing) " more approver" @if missing > 1 { "s" } }
                }
            }
        }
    }
}
