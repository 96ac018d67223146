//! Reverse matching (匹配需求): the open demands the sky net paired with my achievements, the
//! pairing's score, its rank among the demand's pairings, and its reasons, as matching gives
//! them. The enterprise answers the pairing in its portal; this page shows where a supplier's
//! work is wanted.

use super::{Nav, require, view};
use crate::AppState;
use crate::api::types::time;
use crate::money::yuan;
use crate::pages::layout::{contract_type, local_opt, pairing_status};
use crate::pages::refused;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kechuang_proto::matching as mpb;
use kechuang_vocabulary::region_name;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct MatchesQuery {
    #[serde(default)]
    achievement_id: String,
    #[serde(default)]
    page_token: String,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<MatchesQuery>,
) -> Response {
    let session = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let listed = async {
        let request = mpb::ListMatchingDemandsRequest {
            page_size: 50,
            page_token: q.page_token.clone(),
            achievement_id: q.achievement_id.clone(),
        };
        let mut catalog = state.upstream.catalog.clone();
        Ok::<_, ApiError>(
            catalog
                .list_matching_demands(authed(request, &session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let body = html! {
        h1 { "匹配我的成果的需求 Open demands matching my achievements" }
        p.muted { "天网把已审核、尚未签约的需求与您的成果配对；理由由匹配引擎给出。The sky net pairs verified, not yet contracted demands with your achievements; the reasons are the engine's." }
        @if !q.achievement_id.is_empty() { p { "仅显示一项成果 One achievement only · " a href="/supplier/demands" { "全部 All" } } }
        @match &listed {
            Err(e) => { (refused("无法读取匹配 Cannot list matches", e)) }
            Ok(page) => {
                @for m in &page.demands {
                    @let p = m.pairing.clone().unwrap_or_default();
                    @let (class, label) = pairing_status(p.status);
                    div.card.match data-demand=(p.demand_id) data-achievement=(p.achievement_id) {
                        h2 { (m.title) }
                        p { (m.description) }
                        dl.details {
                            dt { "我的成果 My achievement" } dd { (m.achievement_title) }
                            dt { "评分 Score" } dd { (format!("{:.3}", p.score)) " · 第 " (p.rank) " 名 rank " (p.rank) " · " span.pill.(class) { (label) } }
                            dt { "产业链 Chain" } dd { (m.industry_chain) }
                            dt { "合同类型 Contract type" } dd { (contract_type(m.contract_type)) }
                            dt { "预算 Budget" } dd { (yuan(m.budget_min_fen)) " – " (yuan(m.budget_max_fen)) }
                            dt { "地区 Region" } dd { (region_name(&m.region_code).unwrap_or("")) " " span.mono { (m.region_code) } }
                            dt { "截止 Deadline" } dd { (local_opt(time(m.deadline))) }
                        }
                        h3 { "匹配理由 Why" }
                        ul.reasons { @for r in &p.reasons { li { (r) } } }
                    }
                }
                @if page.demands.is_empty() { p.muted #none { "暂无匹配的需求。No open demand is paired with your achievements yet." } }
                @if !page.next_page_token.is_empty() {
                    p { a href={"/supplier/demands?achievement_id=" (q.achievement_id) "&page_token=" (page.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
    };
    view("匹配需求 Matching demands", &session, Nav::Demands, body)
}
