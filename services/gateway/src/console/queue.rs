//! The approval queue (审批队列): pending applications with their contract, amounts, policy
//! and computation, and the four-eyes state; approve or reject with a reason.

use super::layout::{Nav, ZONE, enterprise, local_opt, page_response, status_pill};
use super::{DecisionForm, Session, posted_session, refused, require_session, service_error};
use crate::AppState;
use crate::money::yuan;
use crate::pages::layout::urlencode;
use crate::pages::summaries::{contract_summary, four_eyes, policy_summary};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use kechuang_platform::Role;
use kechuang_proto::subsidy::{self as spb, ApplicationStatus};
use maud::{Markup, html};
use serde::Deserialize;

const PAGE_SIZE: i32 = 50;

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    page_token: Option<String>,
    /// `approved` or `rejected` after an action, with the application's id.
    done: Option<String>,
    id: Option<String>,
}

/// The approve and reject forms, only for a role that may approve and has not yet.
pub fn actions(session: &Session, a: &spb::SubsidyApplication) -> Markup {
    let pending = a.status == ApplicationStatus::PendingReview as i32;
    let rejectable = pending || a.status == ApplicationStatus::Waitlisted as i32;
    if !session.caller.has(Role::FinanceApprover) {
        return html! { span.muted.readonly { "只读 read-only" } };
    }
    let mine = a
        .approvals
        .iter()
        .any(|x| kechuang_platform::auth::same_person(&x.approver, &session.caller.subject));
    html! {
        @if pending && mine {
            div.muted.waiting { "您已批准，等待其他审批人 You approved; waiting for another approver" }
        } @else if pending {
            form.inline method="post" action={"/console/applications/" (a.id) "/approve"} {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="text" name="note" placeholder="意见 note" maxlength="500";
                button name="approve" type="submit" { "批准 Approve" }
            }
        }
        @if rejectable {
            form.inline method="post" action={"/console/applications/" (a.id) "/reject"} {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="text" name="reason" placeholder="驳回理由 reason" required minlength="2" maxlength="500";
                button.reject name="reject" type="submit" { "驳回 Reject" }
            }
        }
    }
}

async fn flash(state: &AppState, session: &Session, q: &QueueQuery) -> Option<Markup> {
    let (done, id) = (q.done.as_deref()?, q.id.as_deref()?);
    let a = state
        .upstream
        .subsidy
        .clone()
        .get_application(
            authed(
                spb::GetApplicationRequest { id: id.to_string() },
                &session.token,
            )
            .ok()?,
        )
        .await
        .ok()?
        .into_inner();
    let missing = (a.required_approvals - a.approvals.len() as i32).max(0);
    Some(html! {
        div.flash #flash data-status=(super::layout::application_status(a.status).0) {
            @match done {
                "approved" if missing > 0 => {
                    "已记录您的批准（" (a.approvals.len()) "/" (a.required_approvals) "），等待第二位审批人。"
                    "Your approval is recorded; waiting for the second approver. "
                }
                "approved" => { "审批完成，资金预留与拨付进行中。Approved: the fund reserves and pays out. " }
                _ => { "已驳回。Rejected. " }
            }
            a href={"/console/applications/" (a.id)} { (a.id) }
        }
    })
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let flash = flash(&state, &session, &q).await;
    let listed = async {
        let request = spb::ListApplicationsRequest {
            page_size: PAGE_SIZE,
            page_token: q.page_token.clone().unwrap_or_default(),
            status: ApplicationStatus::PendingReview as i32,
            enterprise_id: String::new(),
            // Subsidies and brokers' rewards alike: both wait for review.
            kind: 0,
        };
        let page = state
            .upstream
            .subsidy
            .clone()
            .list_applications(authed(request, &session.token)?)
            .await?;
        Ok::<_, ApiError>(page.into_inner())
    }
    .await;
    let body = match listed {
        Err(e) => refused("无法读取申请 Cannot list applications", &e),
        Ok(listing) => {
            let (policies, contracts, names) = futures::join!(
                state.upstream.policies(&session.token),
                state
                    .upstream
                    .contracts(&session.token, &listing.applications),
                state.upstream.enterprise_names(
                    &session.token,
                    listing
                        .applications
                        .iter()
                        .map(|a| a.enterprise_id.as_str())
                )
            );
            let policies = policies.unwrap_or_default();
            html! {
                table #queue {
                    thead { tr {
                        th { "申请 Application" } th { "企业 Enterprise" } th { "合同 Contract" }
                        th.num { "实付 Paid" } th.num { "补贴 Subsidy" } th { "政策与计算 Policy & computation" }
                        th { "四眼 Four eyes" } th { "操作 Action" }
                    } }
                    tbody {
                        @for a in &listing.applications {
                            tr data-application=(a.id) {
                                td { a href={"/console/applications/" (a.id)} { (a.id) } br; (status_pill(a.status)) br; span.muted { (local_opt(crate::api::types::time(a.create_time))) " " (ZONE) } }
                                td { (enterprise(&names, &a.enterprise_id)) }
                                td { (contract_summary(contracts.get(&a.contract_id), &a.contract_id)) }
                                td.num { (yuan(a.payment_amount_fen)) }
                                td.num.subsidy {
                                    strong { (yuan(a.amount_fen)) }
                                    @if a.kind == kechuang_proto::common::ApplicationKind::BrokerReward as i32 {
                                        br; span.muted.reward { "经纪人奖励 broker's reward → " (a.payee) }
                                    }
                                }
                                td {
                                    (policy_summary(policies.get(&a.policy_id), &a.policy_id))
                                    details { summary.muted { "计算过程 how it was computed" } ul.steps { @for step in &a.computation { li { (step) } } } }
                                }
                                td { (four_eyes(a)) }
                                td { (actions(&session, a)) }
                            }
                        }
                        @if listing.applications.is_empty() {
                            tr { td colspan="8" .muted #empty { "没有待审批的申请。Nothing is waiting for review." } }
                        }
                    }
                }
                @if !listing.next_page_token.is_empty() {
                    p { a href={"/console/queue?page_token=" (listing.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
    };
    let body = html! {
        h1 { "审批队列 Approval queue" }
        @if let Some(f) = flash { (f) }
        (body)
    };
    page_response(&session, "审批队列 Queue", Nav::Queue, body)
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
    let mut subsidy = state.upstream.subsidy.clone();
    let answer = async {
        if approve {
            let request = spb::ApproveApplicationRequest {
                id: id.clone(),
                note: form.note.unwrap_or_default(),
            };
            subsidy
                .approve_application(authed(request, &session.token)?)
                .await?;
        } else {
            let request = spb::RejectApplicationRequest {
                id: id.clone(),
                reason: form.reason.unwrap_or_default(),
            };
            subsidy
                .reject_application(authed(request, &session.token)?)
                .await?;
        }
        Ok::<_, ApiError>(())
    }
    .await;
    match answer {
        Ok(()) => {
            tracing::info!(
                subject = session.caller.subject,
                application = id,
                approve,
                "console decision"
            );
            let done = if approve { "approved" } else { "rejected" };
            let location = format!("/console/queue?done={done}&id={}", urlencode(&id));
            (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
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

    fn pending(approvers: &[&str], required: i32) -> spb::SubsidyApplication {
        spb::SubsidyApplication {
            id: "app-1".into(),
            status: ApplicationStatus::PendingReview as i32,
            required_approvals: required,
            approvals: approvers
                .iter()
                .map(|a| spb::Approval {
                    approver: a.to_string(),
                    ..Default::default()
                })
                .collect(),
            amount_fen: 20_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn only_an_approver_who_has_not_approved_gets_the_approve_button() {
        let a = pending(&["李"], 2);
        let auditor = actions(&session(Role::Auditor, "孙"), &a).into_string();
        assert!(!auditor.contains("name=\"approve\"") && !auditor.contains("<form"));
        assert!(auditor.contains("read-only"));
        let officer = actions(&session(Role::FinanceOfficer, "王"), &a).into_string();
        assert!(!officer.contains("<form"));
        let li = actions(&session(Role::FinanceApprover, "李"), &a).into_string();
        assert!(!li.contains("name=\"approve\""), "{li}");
        assert!(li.contains("waiting for another approver"));
        let zhao = actions(&session(Role::FinanceApprover, "赵"), &a).into_string();
        assert!(zhao.contains("name=\"approve\"") && zhao.contains("name=\"reject\""));
        assert!(
            zhao.contains("value=\"csrf-token\""),
            "forms carry the CSRF token"
        );
        assert!(zhao.contains("action=\"/console/applications/app-1/approve\""));
    }

    #[test]
    fn four_eyes_says_who_approved_and_who_still_must() {
        let html = four_eyes(&pending(&["李"], 2)).into_string();
        assert!(html.contains("data-approvals=\"1\"") && html.contains("data-required=\"2\""));
        assert!(html.contains("李") && html.contains("still needs 1 more approver"));
        let done = four_eyes(&spb::SubsidyApplication {
            status: ApplicationStatus::Disbursed as i32,
            ..pending(&["李", "赵"], 2)
        })
        .into_string();
        assert!(!done.contains("still needs"));
    }

    #[test]
    fn ids_are_percent_encoded_in_redirects() {
        assert_eq!(urlencode("app-1_x.y~z"), "app-1_x.y~z");
        assert_eq!(urlencode("a/b?c&d"), "a%2Fb%3Fc%26d");
        assert_eq!(urlencode("申"), "%E7%94%B3");
    }
}
