//! Demands waiting for verification (待审核需求), oldest first so none waits longest: verify
//! one (with an optional note) or reject it (with the note the enterprise will read).

use super::{Nav, posted, require, view};
use crate::AppState;
use crate::api::types::time;
use crate::console::DecisionForm;
use crate::money::yuan;
use crate::pages::layout::urlencode;
use crate::pages::layout::{contract_type, demand_status, local_opt};
use crate::pages::{Session, refused, see_other, service_error};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kechuang_proto::demand::{self as dpb, DemandStatus};
use kechuang_vocabulary::region_name;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct DeskQuery {
    page_token: Option<String>,
    done: Option<String>,
    id: Option<String>,
}

fn decision(session: &Session, d: &dpb::Demand) -> Markup {
    html! {
        form.inline method="post" action={"/desk/demands/" (d.id) "/verify"} {
            input type="hidden" name="csrf" value=(session.csrf);
            label for={"note-" (d.id)} { "意见 Note" }
            input id={"note-" (d.id)} type="text" name="note" maxlength="500";
            button name="verify" type="submit" { "审核通过 Verify" }
        }
        form.inline method="post" action={"/desk/demands/" (d.id) "/reject"} {
            input type="hidden" name="csrf" value=(session.csrf);
            label for={"reason-" (d.id)} { "驳回理由 Why reject" }
            input id={"reason-" (d.id)} type="text" name="reason" required minlength="2" maxlength="500" aria-required="true";
            button.reject name="reject" type="submit" { "驳回 Reject" }
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DeskQuery>,
) -> Response {
    let session = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let listed = async {
        let request = dpb::ListDemandsRequest {
            page_size: 50,
            page_token: q.page_token.clone().unwrap_or_default(),
            status: DemandStatus::Submitted as i32,
            ..Default::default()
        };
        let mut demand = state.upstream.demand.clone();
        Ok::<_, ApiError>(
            demand
                .list_demands(authed(request, &session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let body = match listed {
        Err(e) => refused("无法读取需求 Cannot list demands", &e),
        Ok(mut page) => {
            // Listed newest first; the one waiting longest comes first here.
            page.demands.reverse();
            html! {
                table #to-verify {
                    thead { tr { th { "需求 Demand" } th { "企业 Enterprise" } th { "产业链 · 地区" } th.num { "预算 Budget" } th { "提交 Submitted" } th { "审核 Decide" } } }
                    tbody {
                        @for d in &page.demands {
                            tr data-demand=(d.id) data-status=(demand_status(d.status).0) {
                                td { strong { (d.title) } div.muted { (d.description) } div.muted { (contract_type(d.contract_type)) } }
                                td.mono { (d.enterprise_id) }
                                td { (d.industry_chain) br; (region_name(&d.region_code).unwrap_or("")) " " span.mono { (d.region_code) } }
                                td.num { (yuan(d.budget_min_fen)) br; "– " (yuan(d.budget_max_fen)) }
                                td { (local_opt(time(d.create_time))) }
                                td { (decision(&session, d)) }
                            }
                        }
                        @if page.demands.is_empty() {
                            tr { td colspan="6" .muted #empty { "没有待审核的需求。Nothing is waiting for verification." } }
                        }
                    }
                }
                @if !page.next_page_token.is_empty() {
                    p { a href={"/desk?page_token=" (page.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
    };
    let flash = match (q.done.as_deref(), q.id.as_deref()) {
        (Some("verified"), Some(id)) => Some(
            html! { div.flash #flash data-done="verified" { "已审核通过，天网开始匹配。Verified: the sky net matches it now. " span.mono { (id) } } },
        ),
        (Some("rejected"), Some(id)) => Some(
            html! { div.flash #flash data-done="rejected" { "已驳回，企业会看到您的理由。Rejected; the enterprise sees your note. " span.mono { (id) } } },
        ),
        _ => None,
    };
    let body = html! {
        h1 { "待审核需求 Demands to verify" }
        @if let Some(f) = flash { (f) }
        (body)
    };
    view("待审核需求 To verify", &session, Nav::Verify, body)
}

async fn decide(
    state: AppState,
    headers: HeaderMap,
    id: String,
    f: DecisionForm,
    approve: bool,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let note = if approve { f.note } else { f.reason };
    let answer = async {
        let request = dpb::VerifyDemandRequest {
            demand_id: id.clone(),
            approve,
            note: note.unwrap_or_default().trim().to_string(),
        };
        let mut demand = state.upstream.demand.clone();
        Ok::<_, ApiError>(
            demand
                .verify_demand(authed(request, &session.token)?)
                .await?,
        )
    }
    .await;
    match answer {
        Ok(_) => {
            tracing::info!(
                subject = session.caller.subject,
                demand = id,
                approve,
                "desk decision"
            );
            let done = if approve { "verified" } else { "rejected" };
            see_other(&format!("/desk?done={done}&id={}", urlencode(&id)))
        }
        Err(e) => service_error(&session, e),
    }
}

pub async fn verify(
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
