//! My district's funnel (本区漏斗): the console's funnel ([`crate::stats`]) over the demands
//! of one district. A manager's district is not in their token: it is the district of most of
//! the enterprises they registered, and any other can be chosen.

use super::enterprises::mine;
use super::{Nav, require, view};
use crate::AppState;
use crate::console::funnel::{demands, funnel_bars, rate};
use crate::pages::refused;
use crate::stats::{HUBEI_MATCHING_TARGET, funnel};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kechuang_vocabulary::{HUBEI_PREFIX, region_name};
use maud::html;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize, Default)]
pub struct FunnelQuery {
    region: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FunnelQuery>,
) -> Response {
    let session = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let chosen = q
        .region
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let region = match chosen {
        Some(r) => Some(r),
        None => {
            let mine = mine(&state, &session, String::new())
                .await
                .map(|p| p.enterprises)
                .unwrap_or_default();
            let mut counts: HashMap<String, usize> = HashMap::new();
            for e in mine {
                *counts.entry(e.region_code).or_default() += 1;
            }
            counts
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))
                .map(|(r, _)| r)
        }
    };
    let listed = demands(&state, &session.token).await;
    let body = html! {
        h1 { "本区漏斗 My district's funnel" }
        form.inline method="get" action="/desk/funnel" {
            label for="region" { "区划代码 District code" }
            input #region type="text" name="region" value=(region.as_deref().unwrap_or("")) inputmode="numeric" pattern="[0-9]{6}";
            button type="submit" { "查看 Show" }
        }
        @match (&region, &listed) {
            (None, _) => { p.muted #no-district { "您还没有登记企业，请输入区划代码。Register an enterprise, or type a district code." } }
            (_, Err(e)) => { (refused("无法读取需求 Cannot list demands", e)) }
            (Some(region), Ok((facts, _))) => {
                @let here: Vec<_> = facts.iter().filter(|f| &f.region_code == region).collect();
                @let f = funnel(here.iter().copied());
                @let below = region.starts_with(HUBEI_PREFIX) && f.matching_rate().is_some_and(|r| r < HUBEI_MATCHING_TARGET);
                h2 #district data-region=(region) { (region_name(region).unwrap_or("")) " " span.mono { (region) } }
                div.grid {
                    div.card.stat { div.k { "需求 Demands" } div.v #district-demands { (f.reached[0]) } }
                    div.card.stat { div.k { "已审核 Verified" } div.v { (f.verified()) } }
                    div.card.stat { div.k { "匹配率 Matching rate" } div.v #district-rate class=[below.then_some("bad")] { (rate(f.matching_rate())) } div.muted { "进入对接 / 已审核 docking / verified" } }
                    div.card.stat { div.k { "已签约 Contracted" } div.v { (f.reached[4]) } }
                }
                @if below { div.warn #below-target { "低于湖北 " (HUBEI_MATCHING_TARGET) "% 的目标 Below Hubei's target" } }
                div.card { (funnel_bars(&f)) }
            }
        }
    };
    view("本区漏斗 My district", &session, Nav::Funnel, body)
}
