//! One application (申请详情): its timeline from the contract and the payment to the
//! disbursement, and the ledger transfers behind it.

use super::layout::page_response;
use super::layout::{Nav, ZONE, application_status, enterprise, local, local_opt, status_pill};
use super::queue::actions;
use super::{refused, require_session, service_error};
use crate::AppState;
use crate::api::types::time;
use crate::money::yuan;
use crate::pages::summaries::{contract_summary, four_eyes, policy_summary};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use kechuang_proto::fund::{self as fpb, Transfer, TransferKind, TransferStatus};
use kechuang_proto::subsidy::{self as spb, ApplicationStatus as A};
use maud::{Markup, html};

/// Transfers read at most, looking for one application's (the ledger lists a fund's
/// transfers oldest first and offers no filter by reference).
const TRANSFER_SCAN_LIMIT: usize = 50_000;

/// The fund's transfers whose reference is `reference`, and whether the scan stopped early.
pub async fn transfers_of(
    state: &AppState,
    token: &str,
    fund_id: &str,
    reference: &str,
) -> Result<(Vec<Transfer>, bool), ApiError> {
    let mut found = Vec::new();
    let (mut page_token, mut seen) = (String::new(), 0usize);
    loop {
        let request = fpb::ListTransfersRequest {
            fund_id: fund_id.to_string(),
            page_size: 500,
            page_token,
        };
        let page = state
            .upstream
            .fund
            .clone()
            .list_transfers(authed(request, token)?)
            .await?
            .into_inner();
        seen += page.transfers.len();
        found.extend(
            page.transfers
                .into_iter()
                .filter(|t| t.reference == reference),
        );
        if page.next_page_token.is_empty() {
            return Ok((found, false));
        }
        if seen >= TRANSFER_SCAN_LIMIT {
            return Ok((found, true));
        }
        page_token = page.next_page_token;
    }
}

pub fn transfer_kind(kind: i32) -> &'static str {
    match TransferKind::try_from(kind).unwrap_or(TransferKind::Unspecified) {
        TransferKind::TopUp => "注资 top-up",
        TransferKind::Reserve => "预留 reserve",
        TransferKind::Post => "拨付 post",
        TransferKind::Void => "作废 void",
        TransferKind::Unspecified => "—",
    }
}

pub fn transfer_status(status: i32) -> &'static str {
    match TransferStatus::try_from(status).unwrap_or(TransferStatus::Unspecified) {
        TransferStatus::Pending => "待定 pending",
        TransferStatus::Posted => "已过账 posted",
        TransferStatus::Voided => "已作废 voided",
        TransferStatus::Unspecified => "",
    }
}

struct Step {
    at: Option<DateTime<Utc>>,
    title: String,
    detail: Markup,
}

fn timeline(
    a: &spb::SubsidyApplication,
    contract: Option<&kechuang_proto::matching::Contract>,
    transfers: &[Transfer],
) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(c) = contract {
        steps.push(Step {
            at: time(c.signed_at),
            title: "合同签订 Contract signed".into(),
            detail: html! { (c.contract_no) " · " (yuan(c.amount_fen)) },
        });
    }
    steps.push(Step {
        at: time(a.create_time),
        title: "付款登记，申请生成 Payment recorded, application computed".into(),
        detail: html! { "实付 paid " (yuan(a.payment_amount_fen)) " → 补贴 subsidy " strong { (yuan(a.amount_fen)) } " · 需 " (a.required_approvals) " 位审批人" },
    });
    for x in &a.approvals {
        steps.push(Step {
            at: time(x.approve_time),
            title: format!("批准 Approved by {}", x.approver),
            detail: html! { @if !x.note.is_empty() { "“" (x.note) "”" } },
        });
    }
    for t in transfers {
        steps.push(Step {
            at: time(t.create_time),
            title: format!("账本 Ledger: {}", transfer_kind(t.kind)),
            detail: html! { (t.debit_account) " → " (t.credit_account) " · " (yuan(t.amount_fen)) },
        });
    }
    let status = A::try_from(a.status).unwrap_or(A::Unspecified);
    let last = match status {
        A::Disbursed => Some((
            "已拨付 Disbursed",
            format!("银行流水 payout reference {}", a.payout_reference),
        )),
        A::Rejected => Some(("已驳回 Rejected", a.status_reason.clone())),
        A::Ineligible => Some(("不符合条件 Ineligible", a.status_reason.clone())),
        A::Waitlisted => Some((
            "候补：资金不足 Waitlisted: the fund is short",
            a.status_reason.clone(),
        )),
        A::DisbursementFailed => Some(("拨付失败 Disbursement failed", a.status_reason.clone())),
        _ => None,
    };
    if let Some((title, detail)) = last {
        steps.push(Step {
            at: time(a.update_time),
            title: title.into(),
            detail: html! { (detail) },
        });
    }
    steps.sort_by_key(|s| s.at);
    steps
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let got = async {
        let r = state
            .upstream
            .subsidy
            .clone()
            .get_application(authed(
                spb::GetApplicationRequest { id: id.clone() },
                &session.token,
            )?)
            .await?;
        Ok::<_, ApiError>(r.into_inner())
    }
    .await;
    let a = match got {
        Ok(a) => a,
        Err(e) => return service_error(&session, e),
    };
    let contract = state
        .upstream
        .contract(&session.token, &a.contract_id)
        .await;
    let (policies, names) = futures::join!(
        state.upstream.policies(&session.token),
        state
            .upstream
            .enterprise_names(&session.token, [a.enterprise_id.as_str()])
    );
    let policies = policies.unwrap_or_default();
    let transfers = if a.fund_id.is_empty() {
        Ok((Vec::new(), false))
    } else {
        transfers_of(&state, &session.token, &a.fund_id, &a.id).await
    };
    let no_transfers = Vec::new();
    let shown: &[Transfer] = transfers
        .as_ref()
        .map(|(t, _)| t.as_slice())
        .unwrap_or(&no_transfers);
    let steps = timeline(&a, contract.as_ref().ok(), shown);
    let (status_class, _) = application_status(a.status);
    let body = html! {
        h1 { "申请 Application " span.mono { (a.id) } " " (status_pill(a.status)) }
        div.grid {
            div.card.stat { div.k { "实付 Paid" } div.v { (yuan(a.payment_amount_fen)) } }
            div.card.stat { div.k { "补贴 Subsidy" } div.v #amount { (yuan(a.amount_fen)) } }
            div.card.stat { div.k { "企业 Enterprise" } div #enterprise { (enterprise(&names, &a.enterprise_id)) } }
            div.card.stat { div.k { "基金 Fund" } div { a href={"/console/fund?fund=" (a.fund_id)} { (a.fund_id) } } }
        }
        div.card {
            h2 { "合同与政策 Contract and policy" }
            (contract_summary(contract.as_ref().ok(), &a.contract_id))
            @if let Err(e) = &contract { (refused("合同 Contract", e)) }
            div style="margin-top:8px" { (policy_summary(policies.get(&a.policy_id), &a.policy_id)) }
            ul.steps { @for step in &a.computation { li { (step) } } }
            @if !a.status_reason.is_empty() { p { "原因 Reason: " (a.status_reason) } }
        }
        div.card {
            h2 { "审批 Review" }
            (four_eyes(&a))
            (actions(&session, &a))
        }
        div.card {
            h2 { "时间线 Timeline" span.muted { " (" (ZONE) ")" } }
            ol.timeline #timeline data-status=(status_class) {
                @for s in &steps {
                    li.done { span.when { (local_opt(s.at)) } strong { (s.title) } " " span.muted { (s.detail) } }
                }
            }
        }
        div.card {
            h2 { "账本转账 Ledger transfers" }
            @match &transfers {
                Err(e) => { (refused("无法读取账本 Cannot read the ledger", e)) }
                Ok((list, truncated)) => {
                    table #transfers {
                        thead { tr { th { "时间 Time (" (ZONE) ")" } th { "类型 Kind" } th { "借 Debit → 贷 Credit" } th.num { "金额 Amount" } th { "状态 Status" } th { "转账 Transfer" } } }
                        tbody {
                            @for t in list {
                                tr { td { (local_opt(time(t.create_time))) } td { (transfer_kind(t.kind)) } td.mono { (t.debit_account) " → " (t.credit_account) } td.num { (yuan(t.amount_fen)) } td { (transfer_status(t.status)) } td.mono { (t.id) } }
                            }
                            @if list.is_empty() { tr { td colspan="6" .muted { "尚无转账 No transfers yet" } } }
                        }
                    }
                    @if *truncated { p.muted { "只检查了最早的 " (TRANSFER_SCAN_LIMIT) " 笔转账。Only the first transfers were searched." } }
                }
            }
        }
        p.muted { "更新于 Updated " (local(Utc::now())) " " (ZONE) }
    };
    page_response(&session, "申请 Application", Nav::Queue, body)
}
