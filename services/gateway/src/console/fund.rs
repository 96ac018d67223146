//! The fund dashboard (资金看板): balances, disbursements over time and by industry chain,
//! the waitlist, a low-balance warning and whether the ledger reconciles.

use super::chart;
use super::layout::page_response;
use super::layout::{Nav, ZONE, enterprise, local, local_opt};
use super::{Session, posted_session, refused, require_session, service_error};
use crate::AppState;
use crate::api::types::time;
use crate::money::{hundredths, yuan};
use crate::pages::layout::urlencode;
use crate::pages::see_other;
use crate::stats::{Disbursement, series};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Utc;
use kechuang_platform::Role;
use kechuang_proto::fund as fpb;
use kechuang_proto::matching::Contract;
use kechuang_proto::subsidy::{self as spb, ApplicationStatus};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::HashMap;

/// Applications read at most for one chart.
const APPLICATION_LIMIT: usize = 100_000;
const DEFAULT_FUND: &str = kechuang_vocabulary::DEFAULT_FUND_ID;

#[derive(Deserialize, Default)]
pub struct FundQuery {
    fund: Option<String>,
    done: Option<String>,
}

/// Who may create funds and put money into them: the roles the fund ledger lets write.
pub(super) const FUND_WRITERS: &[Role] = &[Role::FinanceOfficer, Role::FinanceApprover];

/// The top-up form: the treasury's money arrives with a document number, which the ledger
/// keeps unique so the same allocation cannot be booked twice.
#[derive(Deserialize)]
pub struct TopUpForm {
    csrf: Option<String>,
    fund: String,
    amount: String,
    reference: String,
}

/// Every application of `status` (newest first), up to `limit`; and whether it stopped early.
pub async fn applications(
    state: &AppState,
    token: &str,
    status: ApplicationStatus,
    limit: usize,
) -> Result<(Vec<spb::SubsidyApplication>, bool), ApiError> {
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = spb::ListApplicationsRequest {
            page_size: 500,
            page_token,
            status: status as i32,
            enterprise_id: String::new(),
            // Subsidies and brokers' rewards alike.
            kind: 0,
        };
        let page = state
            .upstream
            .subsidy
            .clone()
            .list_applications(authed(request, token)?)
            .await?
            .into_inner();
        out.extend(page.applications);
        if page.next_page_token.is_empty() {
            return Ok((out, false));
        }
        if out.len() >= limit {
            return Ok((out, true));
        }
        page_token = page.next_page_token;
    }
}

/// What the dashboard shows of one fund, each part read on its own (one failing read shows
/// its error in place; the rest of the page still renders).
struct Dashboard {
    fund_id: String,
    fund: Result<fpb::Fund, ApiError>,
    reconcile: Result<fpb::ReconcileReport, ApiError>,
    /// This fund's disbursed subsidies (newest first) and whether the listing stopped early.
    disbursed: Result<(Vec<spb::SubsidyApplication>, bool), ApiError>,
    /// This fund's waitlist, in the order of approval.
    waitlisted: Result<Vec<spb::SubsidyApplication>, ApiError>,
    contracts: HashMap<String, Contract>,
    names: HashMap<String, String>,
}

impl Dashboard {
    async fn read(state: &AppState, token: &str, fund_id: String) -> Dashboard {
        let fund = async {
            let request = authed(
                fpb::GetFundRequest {
                    fund_id: fund_id.clone(),
                },
                token,
            )?;
            Ok::<_, ApiError>(
                state
                    .upstream
                    .fund
                    .clone()
                    .get_fund(request)
                    .await?
                    .into_inner(),
            )
        };
        let reconcile = async {
            let request = authed(
                fpb::ReconcileRequest {
                    fund_id: fund_id.clone(),
                },
                token,
            )?;
            Ok::<_, ApiError>(
                state
                    .upstream
                    .fund
                    .clone()
                    .reconcile(request)
                    .await?
                    .into_inner(),
            )
        };
        let (fund, reconcile, disbursed, waitlisted) = futures::join!(
            fund,
            reconcile,
            applications(
                state,
                token,
                ApplicationStatus::Disbursed,
                APPLICATION_LIMIT
            ),
            applications(state, token, ApplicationStatus::Waitlisted, 1_000),
        );
        let of_fund = |apps: Vec<spb::SubsidyApplication>| -> Vec<spb::SubsidyApplication> {
            apps.into_iter().filter(|a| a.fund_id == fund_id).collect()
        };
        let disbursed = disbursed.map(|(apps, truncated)| (of_fund(apps), truncated));
        let waitlisted = waitlisted.map(|(apps, _)| of_fund(apps));
        let mine: &[spb::SubsidyApplication] = disbursed.as_ref().map_or(&[], |(a, _)| a);
        let waiting: &[spb::SubsidyApplication] = waitlisted.as_deref().unwrap_or(&[]);
        let shown = mine
            .iter()
            .take(10)
            .chain(waiting.iter().rev().take(50))
            .map(|a| a.enterprise_id.as_str());
        let (contracts, names) = futures::join!(
            state.upstream.contracts(token, mine),
            state.upstream.enterprise_names(token, shown)
        );
        Dashboard {
            fund_id,
            fund,
            reconcile,
            disbursed,
            waitlisted,
            contracts,
            names,
        }
    }

    fn chain_of(&self, a: &spb::SubsidyApplication) -> Option<&str> {
        self.contracts
            .get(&a.contract_id)
            .map(|c| c.industry_chain.as_str())
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FundQuery>,
) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let fund_id = q
        .fund
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_FUND.to_string());
    let d = Dashboard::read(&state, session.token.as_str(), fund_id).await;
    let body = html! {
        h1 { "资金看板 Fund dashboard" }
        form.inline method="get" action="/console/fund" {
            label { "基金 Fund " } input type="text" name="fund" value=(d.fund_id);
            button type="submit" { "查看 Show" }
        }
        @if q.done.as_deref() == Some("topped-up") {
            div.flash #flash data-done="topped-up" { "已注资，可用余额已增加。Topped up: the available balance grew." }
        }
        @if q.done.as_deref() == Some("created") {
            div.flash #flash data-done="created" { "基金已新建，请注资。The fund was created: top it up." }
        }
        (balances(&session, &d.fund))
        (reconciliation(&d.reconcile))
        (disbursements(&d))
        (waitlist(&d))
        (super::new_fund::form(&session))
        p.muted { "更新于 Updated " (local(Utc::now())) " " (ZONE) }
    };
    page_response(&session, "资金看板 Fund", Nav::Fund, body)
}

/// The balances, and the top-up form for the roles that may top up.
fn balances(session: &Session, fund: &Result<fpb::Fund, ApiError>) -> Markup {
    html! {
        @match fund {
            Err(e) => { (refused("无法读取基金 Cannot read the fund", e)) }
            Ok(f) => {
                @if f.available_fen < f.low_balance_fen {
                    div.warn #low-balance {
                        strong { "余额不足 Low balance: " }
                        "可用 " (yuan(f.available_fen)) " 低于预警线 below the warning line of " (yuan(f.low_balance_fen)) "。请注资 Top the fund up."
                    }
                }
                h2 { (f.name) " " span.mono.muted { (f.id) } }
                div.grid {
                    div.card.stat { div.k { "可用 Available" } div.v #available { (yuan(f.available_fen)) } }
                    div.card.stat { div.k { "预留 Reserved" } div.v #reserved { (yuan(f.reserved_fen)) } }
                    div.card.stat { div.k { "已拨付 Disbursed" } div.v #disbursed { (yuan(f.disbursed_fen)) } }
                    div.card.stat { div.k { "累计注资 Total" } div.v { (yuan(f.total_fen)) } }
                }
                div.card { (chart::fund_bar(f.available_fen, f.reserved_fen, f.disbursed_fen)) }
                @if session.caller.has_any(FUND_WRITERS) {
                    form.card #top-up method="post" action="/console/fund/top-up" {
                        h2 { "注资 Top up" }
                        input type="hidden" name="csrf" value=(session.csrf);
                        input type="hidden" name="fund" value=(f.id);
                        label for="top-up-amount" { "金额（元）Amount (yuan)" }
                        input #top-up-amount type="text" name="amount" inputmode="decimal" required aria-required="true";
                        label for="top-up-reference" { "拨款文号 Reference (e.g. 财预〔2026〕8号, once only)" }
                        input #top-up-reference type="text" name="reference" required aria-required="true" maxlength="200";
                        button #top-up-submit type="submit" { "注资 Top up" }
                    }
                }
            }
        }
    }
}

fn reconciliation(report: &Result<fpb::ReconcileReport, ApiError>) -> Markup {
    html! {
        @match report {
            Err(e) => { (refused("对账 Reconcile", e)) }
            Ok(r) if r.violations.is_empty() => {
                p.ok #reconcile { "✔ 账本平衡 The ledger reconciles: " (r.checks.len()) " 项检查 checks, " (r.transfer_count) " 笔转账 transfers" }
            }
            Ok(r) => {
                div.error #reconcile { "账本异常 The ledger does not reconcile:" ul { @for v in &r.violations { li { (v) } } } }
            }
        }
    }
}

/// The charts (over time, by industry chain) and the latest ten disbursements.
fn disbursements(d: &Dashboard) -> Markup {
    let (mine, truncated) = match &d.disbursed {
        Err(e) => return refused("无法读取拨付 Cannot list disbursements", e),
        Ok((mine, truncated)) => (mine, *truncated),
    };
    let points: Vec<Disbursement> = mine
        .iter()
        .filter_map(|a| {
            Some(Disbursement {
                at: time(a.update_time)?,
                industry_chain: d.chain_of(a).unwrap_or("未知 unknown").to_string(),
                amount_fen: a.amount_fen,
            })
        })
        .collect();
    let s = series(&points);
    html! {
        div.card {
            h2 { "拨付趋势 Disbursements over time" span.muted { " （" (mine.len()) " 笔 subsidies）" } }
            @if points.is_empty() { p.muted { "尚无拨付 Nothing disbursed yet" } } @else { (chart::disbursements_over_time(&s)) }
        }
        div.card {
            h2 { "按产业链 By industry chain" }
            @if points.is_empty() { p.muted { "—" } } @else { (chart::by_chain(&s.chain_totals())) }
            @if truncated { p.muted { "只统计了最近的 " (APPLICATION_LIMIT) " 笔。Only the latest subsidies are charted." } }
        }
        div.card {
            h2 { "最近拨付 Latest disbursements" }
            table #latest {
                thead { tr { th { "时间 Time (" (ZONE) ")" } th { "申请 Application" } th { "企业 Enterprise" } th { "产业链 Chain" } th.num { "金额 Amount" } th { "银行流水 Payout" } } }
                tbody {
                    @for a in mine.iter().take(10) {
                        tr data-application=(a.id) {
                            td { (local_opt(time(a.update_time))) }
                            td { a href={"/console/applications/" (a.id)} { (a.id) } }
                            td { (enterprise(&d.names, &a.enterprise_id)) }
                            td { (d.chain_of(a).unwrap_or("—")) }
                            td.num { (yuan(a.amount_fen)) }
                            td.mono { (a.payout_reference) }
                        }
                    }
                }
            }
        }
    }
}

/// Approved subsidies waiting for money, the oldest 50 shown.
fn waitlist(d: &Dashboard) -> Markup {
    html! {
        div.card {
            h2 { "候补名单 Waitlist" span.muted { " 资金不足时按批准先后排队，注资后依次预留 first come, first served when the fund is topped up" } }
            @match &d.waitlisted {
                Err(e) => { (refused("候补 Waitlist", e)) }
                Ok(waiting) => {
                    @let sum: i64 = waiting.iter().map(|a| a.amount_fen).sum();
                    p #waitlist-total { (waiting.len()) " 笔 applications · " (yuan(sum)) }
                    table #waitlist {
                        thead { tr { th { "申请 Application" } th { "企业 Enterprise" } th.num { "金额 Amount" } th { "自 Since (" (ZONE) ")" } } }
                        tbody {
                            @for a in waiting.iter().rev().take(50) {
                                tr { td { a href={"/console/applications/" (a.id)} { (a.id) } } td { (enterprise(&d.names, &a.enterprise_id)) } td.num { (yuan(a.amount_fen)) } td { (local_opt(time(a.update_time))) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Tops a fund up from the dashboard, then shows the dashboard again with the new balance.
pub async fn top_up(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<TopUpForm>,
) -> Response {
    let session = match posted_session(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let amount_fen = hundredths(&f.amount).ok_or_else(|| {
            ApiError::invalid(
                "amount_fen",
                "请填写金额（元）a yuan amount, at most two decimals",
            )
        })?;
        let request = fpb::TopUpRequest {
            fund_id: f.fund.trim().to_string(),
            amount_fen,
            reference: f.reference.trim().to_string(),
        };
        let mut fund = state.upstream.fund.clone();
        Ok::<_, ApiError>(
            fund.top_up(authed(request, &session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    after_writing(&session, answer, "topped-up")
}

/// What a fund form leads to: the fund's dashboard saying what was `done`, or the service's
/// refusal.
pub(super) fn after_writing(
    session: &Session,
    answer: Result<fpb::Fund, ApiError>,
    done: &str,
) -> Response {
    match answer {
        Ok(fund) => {
            tracing::info!(
                subject = session.caller.subject,
                fund = fund.id,
                done,
                "fund written"
            );
            see_other(&format!(
                "/console/fund?fund={}&done={done}",
                urlencode(&fund.id)
            ))
        }
        Err(e) => service_error(session, e),
    }
}
