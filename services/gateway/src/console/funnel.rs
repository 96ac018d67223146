//! The supply-chain funnel (供需漏斗): demands submitted → verified → matched → docking →
//! contracted → completed, and the matching rate of each district (Hubei's are held to 80 %).

use super::layout::{Nav, ZONE, local, page_response};
use super::{refused, require_session};
use crate::AppState;
use crate::money::ratio;
use crate::stats::{DemandFacts, Funnel, HUBEI_MATCHING_TARGET, STAGES, by_region, funnel};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use maud::{Markup, html};

/// Demands read at most (Hubei's sky net holds about 15,000).
const DEMAND_LIMIT: usize = 100_000;

/// The facts of every demand the caller may list, and whether the scan stopped early.
pub(crate) async fn demands(
    state: &AppState,
    token: &str,
) -> Result<(Vec<DemandFacts>, bool), ApiError> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = dpb::ListDemandsRequest {
            page_size: 500,
            page_token,
            ..Default::default()
        };
        let page = state
            .upstream
            .demand
            .clone()
            .list_demands(authed(request, token)?)
            .await?
            .into_inner();
        out.extend(page.demands.iter().map(DemandFacts::from));
        if page.next_page_token.is_empty() {
            return Ok((out, false));
        }
        if out.len() >= DEMAND_LIMIT {
            return Ok((out, true));
        }
        page_token = page.next_page_token;
    }
}

pub(crate) fn rate(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.1}%")).unwrap_or_else(|| "—".into())
}

pub(crate) fn funnel_bars(f: &Funnel) -> Markup {
    let top = f.reached[0].max(1) as f64;
    html! {
        table #funnel {
            thead { tr { th { "阶段 Stage" } th.num { "需求数 Demands" } th.num { "占提交 of submitted" } th { "" } } }
            tbody {
                @for (i, (_, label)) in STAGES.iter().enumerate() {
                    tr data-stage=(i) {
                        td { (label) }
                        td.num { (f.reached[i]) }
                        td.num { (rate(ratio(f.reached[i], f.reached[0]))) }
                        td style="width:50%" {
                            div style={"height:14px;background:#2f6db5;border-radius:2px;width:" (format!("{:.1}", f.reached[i] as f64 * 100.0 / top)) "%"} {}
                        }
                    }
                }
            }
        }
        p.muted { "驳回 rejected " (f.rejected) " · 撤回 withdrawn " (f.withdrawn) " · 每条需求计入其到达过的每个阶段 a demand counts for every stage it reached" }
    }
}

/// What enterprises did with the sky net's pairings, by the rank they were shown at.
async fn outcomes(state: &AppState, token: &str) -> Result<mpb::PairingOutcomes, ApiError> {
    Ok(state
        .upstream
        .matching
        .clone()
        .get_pairing_outcomes(authed(mpb::GetPairingOutcomesRequest {}, token)?)
        .await?
        .into_inner())
}

fn acceptance_table(o: &mpb::PairingOutcomes) -> Markup {
    let accepted: i64 = o.ranks.iter().map(|r| r.accepted).sum();
    html! {
        table #acceptance {
            thead { tr {
                th.num { "名次 Rank" } th.num { "推荐 Proposed" } th.num { "已答复 Answered" }
                th.num { "采纳 Accepted" } th.num { "签约 Contracted" } th.num { "采纳率 Acceptance" }
            } }
            tbody {
                @for r in &o.ranks {
                    tr data-rank=(r.rank) {
                        td.num { (r.rank) }
                        td.num { (r.proposed) }
                        td.num { (r.answered) }
                        td.num.accepted { (r.accepted) }
                        td.num { (r.contracted) }
                        td.num { (rate(ratio(r.accepted as usize, r.answered as usize))) }
                    }
                }
            }
        }
        p.muted {
            "共采纳 accepted in all " span #accepted-total { (accepted) }
            " · 已答复需求 demands answered " (o.answered_demands)
            " · 最佳采纳名次倒数均值 MRR of the best accepted pairing " (format!("{:.3}", o.accepted_mrr))
            " · 企业的每次答复都记为天网的标签 every answer is kept as a label for the sky net (evaluate --from-db)"
        }
    }
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let listed = demands(&state, &session.token).await;
    let answered = outcomes(&state, &session.token).await;
    let body = html! {
        h1 { "供需漏斗 Supply-chain funnel" }
        @match &listed {
            Err(e) => { (refused("无法读取需求 Cannot list demands", e)) }
            Ok((facts, truncated)) => {
                @let f = funnel(facts);
                div.grid {
                    div.card.stat { div.k { "需求 Demands" } div.v { (f.reached[0]) } }
                    div.card.stat { div.k { "匹配率 Matching rate" } div.v #matching-rate { (rate(f.matching_rate())) } div.muted { "进入对接 / 已审核 docking / verified" } }
                    div.card.stat { div.k { "已签约 Contracted" } div.v { (f.reached[4]) } }
                    div.card.stat { div.k { "已完成 Completed" } div.v { (f.reached[5]) } }
                }
                div.card { (funnel_bars(&f)) }
                @if *truncated { p.muted { "只统计了最新的 " (DEMAND_LIMIT) " 条需求。Only the latest demands are counted." } }
                @let regions = by_region(facts);
                @let below = regions.iter().filter(|r| r.below_target).count();
                div.card {
                    h2 { "各区县匹配率 Matching rate by district" span.muted { " 湖北各区县目标 ≥ " (HUBEI_MATCHING_TARGET) "% (Hubei districts are held to ≥ 80 %)" } }
                    @if below > 0 { div.warn #below-target { (below) " 个湖北区县低于目标 Hubei districts below target" } }
                    table #regions {
                        thead { tr { th { "区划 Region" } th.num { "已审核 Verified" } th.num { "已匹配 Matched" } th.num { "已签约 Contracted" } th.num { "匹配率 Rate" } } }
                        tbody {
                            @for r in &regions {
                                tr data-region=(r.region_code) {
                                    td { (kechuang_vocabulary::region_name(&r.region_code).unwrap_or("")) " " span.mono.muted { (r.region_code) } }
                                    td.num { (r.funnel.verified()) }
                                    td.num { (r.funnel.matched()) }
                                    td.num { (r.funnel.reached[4]) }
                                    td.num class=[r.below_target.then_some("bad")] { (rate(r.funnel.matching_rate())) @if r.below_target { " ⚠" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { "天网推荐的采纳情况 Pairings answered, by the rank they were shown at" }
            @match &answered {
                Err(e) => { (refused("无法读取推荐结果 Cannot read the pairings' outcomes", e)) }
                Ok(o) => { (acceptance_table(o)) }
            }
        }
        p.muted { "更新于 Updated " (local(Utc::now())) " " (ZONE) }
    };
    page_response(&session, "供需漏斗 Funnel", Nav::Funnel, body)
}
