//! Policies (政策包): maker–checker in the console. A finance officer proposes a version; a
//! finance approver who is another person puts it in force or rejects it. The page lists the
//! proposals waiting, the versions in force and the history; the subsidy service decides.

use super::layout::page_response;
use super::layout::{Nav, local_opt};
use super::policy_form::ProposeForm;
use super::{DecisionForm, Session, posted_session, refused, require_session, service_error};
use crate::AppState;
use crate::api::types::time;
use crate::money::yuan;
use crate::pages::layout::urlencode;
use crate::pages::summaries::policy_summary;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_platform::Role;
use kechuang_platform::auth::same_person;
use kechuang_proto::subsidy::{self as spb, Policy, PolicyStatus};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct PoliciesQuery {
    /// `proposed`, `approved` or `rejected` after an action, with the policy's id.
    done: Option<String>,
    id: Option<String>,
}

/// The status's CSS class and its label.
pub fn status_label(status: i32) -> (&'static str, &'static str) {
    match PolicyStatus::try_from(status).unwrap_or(PolicyStatus::Unspecified) {
        PolicyStatus::Proposed => ("pending_review", "待复核 proposed"),
        PolicyStatus::InForce => ("disbursed", "生效 in force"),
        PolicyStatus::Rejected => ("rejected", "已驳回 rejected"),
        PolicyStatus::Superseded => ("superseded", "已被取代 superseded"),
        PolicyStatus::Unspecified => ("unspecified", "未知 unknown"),
    }
}

fn pill(status: i32) -> Markup {
    let (class, label) = status_label(status);
    html! { span class={"pill " (class)} data-policy-status=(class) { (label) } }
}

/// The terms beyond the summary: four eyes and scope.
fn terms(p: &Policy) -> Markup {
    html! {
        (policy_summary(Some(p), &p.id))
        div.muted {
            @if p.kind == kechuang_proto::subsidy::PolicyKind::BrokerReward as i32 {
                "经纪人奖励 broker reward（每单上限即单合同上限，每人年上限即企业年上限 per-deal and per-broker caps）；"
            }
            "四眼门槛 four eyes above " (yuan(p.four_eyes_threshold_fen))
            @if !p.region_prefixes.is_empty() { "；地区 " (p.region_prefixes.join("、")) }
            @if !p.industry_chains.is_empty() { "；产业链 " (p.industry_chains.join("、")) }
            "；生效 from " (local_opt(time(p.valid_from)))
            "；申领期 claim within " (p.claim_window_days) " 天 days"
            @if p.subsidise_unregistered {
                "；亦补贴未登记合同（按实付全额）also unregistered contracts, on the whole payment"
            } @else {
                "；仅补贴已登记合同（按认定技术交易额）registered contracts only, on the certified amount"
            }
        }
    }
}

/// Approve and reject, for an approver who did not propose it; what the others see instead.
pub fn decision(session: &Session, p: &Policy) -> Markup {
    if p.status != PolicyStatus::Proposed as i32 {
        return html! {};
    }
    if !session.caller.has(Role::FinanceApprover) {
        return html! { span.muted.readonly { "待审批人复核 waiting for an approver" } };
    }
    if same_person(&session.caller.subject, &p.proposed_by) {
        return html! { div.muted.waiting { "您提出的政策须由另一位审批人复核 Your proposal waits for another person" } };
    }
    html! {
        form.inline method="post" action={"/console/policies/" (p.id) "/approve"} {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="text" name="note" placeholder="复核意见 note" maxlength="500";
            button name="approve" type="submit" { "批准生效 Approve" }
        }
        form.inline method="post" action={"/console/policies/" (p.id) "/reject"} {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="text" name="reason" placeholder="驳回理由 reason" required minlength="2" maxlength="500";
            button.reject name="reject" type="submit" { "驳回 Reject" }
        }
    }
}

/// The proposal form, for finance officers.
pub fn propose_form(session: &Session) -> Markup {
    if !session.caller.has(Role::FinanceOfficer) {
        return html! {};
    }
    let request_id = crate::pages::forms::request_id("console");
    let check = |name: &str, label: &str, on: bool| {
        html! { label { input type="checkbox" name=(name) checked[on]; " " (label) } " " }
    };
    html! {
        h2 { "提出新政策 Propose a policy" }
        form.card #propose method="post" action="/console/policies" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="request_id" value=(request_id);
            p { label { "类别 Kind"
                select name="kind" {
                    option value="subsidy" selected { "企业补贴 subsidy for enterprises" }
                    option value="broker_reward" { "技术经理人/经纪人奖励 reward for the deal's broker（上限：每单、每人每年 caps: per deal, per broker a year）" }
                } } }
            p { label { "名称 Name（同名即新版本 same name: a new version）" input type="text" name="name" required; } }
            p { label { "资金 Fund" input type="text" name="fund_id" value=(kechuang_vocabulary::DEFAULT_FUND_ID) required; } }
            p { label { "分档：每行“起点（元） 比例（%）” Tiers: one per line, “from (yuan) ratio (%)”"
                textarea name="tiers" rows="3" required { "0 10" } } }
            p { label { "每合同上限（元）Per-contract cap (yuan)" input type="text" name="per_contract_cap_yuan" required; } }
            p { label { "每企业年上限（元）Annual cap per enterprise (yuan)" input type="text" name="per_enterprise_annual_cap_yuan" required; } }
            p { label { "四眼门槛（元）Four eyes above (yuan)" input type="text" name="four_eyes_threshold_yuan" required; } }
            p { "合同类型 Contract types: "
                (check("ct_development", "技术开发", true)) (check("ct_transfer", "技术转让", true))
                (check("ct_license", "技术许可", true)) (check("ct_consulting", "技术咨询", false))
                (check("ct_service", "技术服务", false)) }
            p { label { "地区前缀 Region prefixes（逗号分隔，空为全部）" input type="text" name="region_prefixes" value="42"; } }
            p { label { "产业链 Industry chains（逗号分隔，空为全部）" input type="text" name="industry_chains"; } }
            p { label { "生效日 Valid from (YYYY-MM-DD)" input type="text" name="valid_from" required; } }
            p { label { "失效日 Valid to（可空 optional）" input type="text" name="valid_to"; } }
            p { label { "申领期（天）Claim window (days)：支付后多少天内可申领 a payment may be claimed this long after it was made" input type="text" name="claim_window_days" value="365"; } }
            p { (check("subsidise_unregistered", "亦补贴未登记的技术合同（按实付全额）Also subsidise contracts not registered, on the whole payment", false))
                span.muted { " 不勾选：只补贴经技术合同认定登记的合同，以认定的技术交易额为上限（按比例）。Unticked: registered contracts only, up to the certified technical amount (pro rata)." } }
            button name="propose" type="submit" { "提交复核 Propose" }
            span.muted { " 提交后为“待复核”，须另一位审批人批准才生效。A proposal is in force only once another person approves it." }
        }
    }
}

fn table(session: &Session, rows: &[&Policy], id: &str, empty: &str) -> Markup {
    html! {
        table id=(id) {
            thead { tr {
                th { "政策 Policy" } th { "状态 Status" } th { "条款 Terms" }
                th { "提出 Proposed" } th { "决定 Decided" } th { "操作 Action" }
            } }
            tbody {
                @for p in rows {
                    tr data-policy=(p.id) {
                        td { (p.name) " " span.muted { "v" (p.version) } br; span.mono { (p.id) } }
                        td { (pill(p.status)) @if !p.superseded_by.is_empty() { br; span.muted { "→ " (p.superseded_by) } } }
                        td { (terms(p)) }
                        td { (p.proposed_by) br; span.muted { (local_opt(time(p.create_time))) } }
                        td { (p.decided_by) br; span.muted { (local_opt(time(p.decided_at))) } @if !p.decision_note.is_empty() { div.muted { (p.decision_note) } } }
                        td { (decision(session, p)) }
                    }
                }
                @if rows.is_empty() { tr { td colspan="6" .muted { (empty) } } }
            }
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PoliciesQuery>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let listed = state.upstream.policies(&session.token).await;
    let body = match listed {
        Err(e) => refused("无法读取政策 Cannot list policies", &e),
        Ok(all) => {
            let mut all: Vec<Policy> = all.into_values().collect();
            all.sort_by(|a, b| (&a.name, b.version).cmp(&(&b.name, a.version)));
            let of = |s: PolicyStatus| {
                all.iter()
                    .filter(|p| p.status == s as i32)
                    .collect::<Vec<_>>()
            };
            let history: Vec<&Policy> = all
                .iter()
                .filter(|p| {
                    [
                        PolicyStatus::Rejected as i32,
                        PolicyStatus::Superseded as i32,
                    ]
                    .contains(&p.status)
                })
                .collect();
            html! {
                h2 { "待复核 Proposals" }
                (table(&session, &of(PolicyStatus::Proposed), "proposals", "没有待复核的政策。No proposal is waiting."))
                h2 { "生效中 In force" }
                (table(&session, &of(PolicyStatus::InForce), "in-force", "没有生效的政策。No policy is in force."))
                h2 { "历史 History" }
                (table(&session, &history, "history", "—"))
            }
        }
    };
    let flash = match (q.done.as_deref(), q.id.as_deref()) {
        (Some(done), Some(id)) => Some(html! {
            div.flash #flash data-done=(done) {
                @match done {
                    "proposed" => { "已提交，等待另一位审批人复核。Proposed; waiting for another person. " }
                    "approved" => { "已批准，政策生效。Approved: the policy is in force. " }
                    _ => { "已驳回。Rejected. " }
                }
                span.mono { (id) }
            }
        }),
        _ => None,
    };
    let body = html! {
        h1 { "政策包 Policies" }
        @if let Some(f) = flash { (f) }
        (body)
        (propose_form(&session))
    };
    page_response(&session, "政策包 Policies", Nav::Policies, body)
}

fn done(what: &str, id: &str) -> Response {
    let location = format!("/console/policies?done={what}&id={}", urlencode(id));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

pub async fn propose(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ProposeForm>,
) -> Response {
    let session = match posted_session(&state, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let request = form.request()?;
        let mut c = state.upstream.policy.clone();
        Ok::<_, ApiError>(
            c.create_policy(authed(request, &session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    match answer {
        Ok(p) => done("proposed", &p.id),
        Err(e) => service_error(&session, e),
    }
}

async fn decide(
    state: AppState,
    headers: HeaderMap,
    id: String,
    form: DecisionForm,
    approve: bool,
) -> Response {
    let session = match posted_session(&state, &headers, form.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let mut c = state.upstream.policy.clone();
    let answer = async {
        if approve {
            let request = spb::ApprovePolicyRequest {
                policy_id: id.clone(),
                note: form.note.unwrap_or_default(),
            };
            c.approve_policy(authed(request, &session.token)?).await?;
        } else {
            let request = spb::RejectPolicyRequest {
                policy_id: id.clone(),
                reason: form.reason.unwrap_or_default(),
            };
            c.reject_policy(authed(request, &session.token)?).await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match answer {
        Ok(()) => {
            tracing::info!(
                subject = session.caller.subject,
                policy = id,
                approve,
                "console policy decision"
            );
            done(if approve { "approved" } else { "rejected" }, &id)
        }
        Err(e) => service_error(&session, e),
    }
}

pub async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    decide(state, headers, id, f, true).await
}

pub async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    decide(state, headers, id, f, false).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_platform::Caller;

    fn session(role: Role, subject: &str) -> Session {
        Session {
            token: "t".into(),
            caller: Caller::new(role, subject),
            csrf: "csrf-token".into(),
            display_name: None,
        }
    }

    fn proposal() -> Policy {
        Policy {
            id: "pol-1".into(),
            name: "武汉市首购首用补贴".into(),
            version: 2,
            status: PolicyStatus::Proposed as i32,
            proposed_by: "王".into(),
            created_by: "王".into(),
            ..Default::default()
        }
    }

    #[test]
    fn only_an_approver_who_did_not_propose_gets_the_decision_forms() {
        let li = decision(&session(Role::FinanceApprover, "李"), &proposal()).into_string();
        assert!(li.contains("name=\"approve\"") && li.contains("name=\"reject\""));
        assert!(li.contains("action=\"/console/policies/pol-1/approve\""));
        assert!(
            li.contains("value=\"csrf-token\""),
            "forms carry the CSRF token"
        );
        // The proposer, even signed in as an approver and spelt otherwise, gets none.
        let own = decision(&session(Role::FinanceApprover, " 王 "), &proposal()).into_string();
        assert!(
            !own.contains("<form") && own.contains("another person"),
            "{own}"
        );
        for role in [Role::FinanceOfficer, Role::Auditor] {
            let html = decision(&session(role, "孙"), &proposal()).into_string();
            assert!(!html.contains("<form"), "{html}");
        }
        let in_force = Policy {
            status: PolicyStatus::InForce as i32,
            ..proposal()
        };
        assert!(
            decision(&session(Role::FinanceApprover, "李"), &in_force)
                .into_string()
                .is_empty()
        );
    }

    #[test]
    fn only_an_officer_gets_the_proposal_form() {
        let officer = propose_form(&session(Role::FinanceOfficer, "王")).into_string();
        assert!(
            officer.contains("action=\"/console/policies\"")
                && officer.contains("name=\"request_id\"")
        );
        assert!(officer.contains("value=\"csrf-token\""));
        for role in [Role::FinanceApprover, Role::Auditor] {
            assert!(propose_form(&session(role, "李")).into_string().is_empty());
        }
    }
}
