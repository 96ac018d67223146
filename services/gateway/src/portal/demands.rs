//! My demands (我的需求): the list with each one's status, and a demand's page: what was asked,
//! its timeline (every status change, who made it and why), and the sky net's pairings.

use super::pairings::{self, pairing_rows};
use super::{Nav, require, view};
use crate::AppState;
use crate::api::types::time;
use crate::money::yuan;
use crate::pages::layout::{contract_type, demand_pill, demand_status, local_opt};
use crate::pages::{error_page, refused};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kechuang_proto::demand as dpb;
use kechuang_vocabulary::region_name;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    page_token: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let e = match require(&state, &headers).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let listed = async {
        let request = dpb::ListDemandsRequest {
            page_size: 50,
            page_token: q.page_token.unwrap_or_default(),
            enterprise_id: e.id.clone(),
            ..Default::default()
        };
        let mut demand = state.upstream.demand.clone();
        Ok::<_, ApiError>(
            demand
                .list_demands(authed(request, &e.session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let body = match listed {
        Err(err) => refused("无法读取需求 Cannot list your demands", &err),
        Ok(page) => html! {
            table #demands {
                thead { tr { th { "需求 Demand" } th { "状态 Status" } th { "产业链 Chain" } th.num { "预算 Budget" } th { "提交 Submitted" } th { "更新 Updated" } } }
                tbody {
                    @for d in &page.demands {
                        tr data-demand=(d.id) data-status=(demand_status(d.status).0) {
                            td { a href={"/portal/demands/" (d.id)} { (d.title) } }
                            td { (demand_pill(d.status)) }
                            td { (d.industry_chain) }
                            td.num { (yuan(d.budget_min_fen)) " – " (yuan(d.budget_max_fen)) }
                            td { (local_opt(time(d.create_time))) }
                            td { (local_opt(time(d.update_time))) }
                        }
                    }
                    @if page.demands.is_empty() {
                        tr { td colspan="6" .muted #empty { "还没有需求。No demands yet: " a href="/portal/demands/new" { "提交一条 submit one" } } }
                    }
                }
            }
            @if !page.next_page_token.is_empty() {
                p { a href={"/portal/demands?page_token=" (page.next_page_token)} { "下一页 Next page →" } }
            }
        },
    };
    let body = html! {
        h1 { "我的需求 My demands" }
        div #live aria-live="polite" data-since=(super::live::since()) {}
        (body)
    };
    view("我的需求 My demands", &e.session, Nav::Demands, body)
}

/// Why a demand the sky net has not seen has no pairings.
fn before_matching(status: i32) -> &'static str {
    if status == dpb::DemandStatus::Rejected as i32 {
        "需求已驳回，没有推荐。The demand was rejected: no pairings."
    } else {
        "技术经理人审核通过后，天网开始匹配。Pairings come once a technology manager has verified the demand."
    }
}

/// Every status change, oldest first.
fn timeline(d: &dpb::Demand) -> Markup {
    html! {
        ol.timeline #timeline {
            @for c in &d.history {
                li.done data-to=(demand_status(c.to_status).0) {
                    span.when { (local_opt(time(c.change_time))) }
                    strong { (demand_status(c.to_status).1) }
                    @if !c.actor.is_empty() { " · " (c.actor) }
                    @if !c.note.is_empty() { div.muted { (c.note) } }
                }
            }
        }
    }
}

fn details(d: &dpb::Demand) -> Markup {
    html! {
        div.card #demand data-demand=(d.id) data-status=(demand_status(d.status).0) {
            p { (demand_pill(d.status)) " " span.mono.muted { (d.id) } }
            p { (d.description) }
            p.muted {
                (d.industry_chain) " · " (contract_type(d.contract_type))
                " · 预算 " (yuan(d.budget_min_fen)) " – " (yuan(d.budget_max_fen))
                " · " (region_name(&d.region_code).unwrap_or("")) " " (d.region_code)
                " · 截止 deadline " (local_opt(time(d.deadline)))
            }
        }
    }
}

fn flash(done: Option<&str>) -> Option<Markup> {
    let said = match done? {
        "submitted" => {
            "需求已提交，等待技术经理人审核。Submitted: a technology manager verifies it next."
        }
        "accepted" => "已采纳配对，可签订合同。Accepted: you may sign a contract on it.",
        "declined" => "已婉拒配对。Declined.",
        "signed" => "合同已签订，可记录付款。Signed: record payments on it.",
        "paid" => "付款已记录，补贴申请已生成。Payment recorded: a subsidy application was made.",
        _ => return None,
    };
    Some(html! { div.flash #flash { (said) } })
}

#[derive(Deserialize, Default)]
pub struct DoneQuery {
    done: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let state = &state;
    let done = q.done.as_deref();
    let e = match require(state, &headers).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let token = &e.session.token;
    let got = async {
        let mut demand = state.upstream.demand.clone();
        let request = dpb::GetDemandRequest {
            demand_id: id.clone(),
        };
        Ok::<_, ApiError>(
            demand
                .get_demand(authed(request, token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let d = match got {
        Ok(d) => d,
        // Another enterprise's demand answers NOT_FOUND, like an unknown one: so does the page.
        Err(err) => return crate::pages::service_error(&e.session, err),
    };
    if d.enterprise_id != e.id {
        return error_page(
            Some(&e.session),
            axum::http::StatusCode::NOT_FOUND,
            "未找到 Not found",
            "没有这条需求。No such demand.",
        );
    }
    // The sky net learns of a demand when it is verified: before that (or when it was
    // rejected) there is nothing to ask it, and just after it may not have heard yet.
    let pairings = match dpb::DemandStatus::try_from(d.status) {
        Ok(dpb::DemandStatus::Submitted | dpb::DemandStatus::Rejected) => None,
        _ => Some(pairings::of_demand(state, token, &d.id).await),
    };
    let body = html! {
        h1 { (d.title) }
        @if let Some(f) = flash(done) { (f) }
        div #live aria-live="polite" data-since=(super::live::since()) {}
        (details(&d))
        h2 { "时间线 Timeline" }
        (timeline(&d))
        h2 { "天网推荐 Pairings" }
        @match &pairings {
            None => { p.muted #no-pairings { (before_matching(d.status)) } }
            Some(Err(err)) if err.status == StatusCode::NOT_FOUND => {
                p.muted #no-pairings { "天网正在匹配，推荐会出现在这里。The sky net is matching; pairings appear here." }
            }
            Some(Err(err)) => { (refused("无法读取配对 Cannot list pairings", err)) }
            Some(Ok(rows)) => { (pairing_rows(&e.session, rows)) }
        }
    };
    view(&d.title, &e.session, Nav::Demands, body)
}
