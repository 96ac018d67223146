//! The sky net's pairings of a demand, with its reasons as the matching service gives them
//! (rank, score, why), the achievement each names, and what the enterprise may do next:
//! accept or decline a proposal, sign a contract on an accepted one, pay on its contract.

use super::{Enterprise, posted};
use crate::AppState;
use crate::money::yuan;
use crate::pages::layout::{contract_type, pairing_status};
use crate::pages::{Session, see_other, service_error};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::{StreamExt, stream};
use kechuang_proto::matching::{self as mpb, PairingStatus};
use maud::{Markup, html};
use serde::Deserialize;

/// An answer to a proposed pairing.
#[derive(Deserialize)]
pub struct RespondForm {
    csrf: Option<String>,
    /// `accept` or `decline`.
    #[serde(default)]
    answer: String,
    /// Why it was declined (optional; kept as the sky net's label).
    reason: Option<String>,
    /// On an acceptance, the technology broker (技术经纪人) who brokered the deal, by their
    /// sign-in name (optional; the pairing then records them as its facilitator instead of the
    /// technology manager who verified the demand).
    broker: Option<String>,
}

/// A pairing with what it names.
pub struct Row {
    pub pairing: mpb::Pairing,
    pub achievement: Option<mpb::Achievement>,
    pub contract: Option<mpb::Contract>,
}

/// The demand's pairings, best first, each with its achievement and contract.
pub async fn of_demand(
    state: &AppState,
    token: &str,
    demand_id: &str,
) -> Result<Vec<Row>, ApiError> {
    let request = mpb::ListPairingsRequest {
        demand_id: demand_id.to_string(),
        page_size: 50,
        page_token: String::new(),
    };
    let pairings = state
        .upstream
        .matching
        .clone()
        .list_pairings(authed(request, token)?)
        .await?
        .into_inner()
        .pairings;
    let rows = pairings.into_iter().map(|p| async move {
        let mut catalog = state.upstream.catalog.clone();
        let request = mpb::GetAchievementRequest {
            achievement_id: p.achievement_id.clone(),
        };
        let achievement = match authed(request, token) {
            Ok(r) => catalog
                .get_achievement(r)
                .await
                .ok()
                .map(|a| a.into_inner()),
            Err(_) => None,
        };
        let contract = match p.contract_id.as_str() {
            "" => None,
            id => state.upstream.contract(token, id).await.ok(),
        };
        Row {
            pairing: p,
            achievement,
            contract,
        }
    });
    Ok(stream::iter(rows).buffered(8).collect().await)
}

fn next_step(session: &Session, row: &Row) -> Markup {
    let p = &row.pairing;
    let status = PairingStatus::try_from(p.status).unwrap_or(PairingStatus::Unspecified);
    html! {
        @match (status, &row.contract) {
            (PairingStatus::Proposed, _) => {
                form.inline method="post" action={"/portal/pairings/" (p.id) "/respond"} {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="answer" value="accept";
                    label for={"broker-" (p.id)} { "技术经纪人（可选）Broker (optional)" }
                    input id={"broker-" (p.id)} type="text" name="broker" maxlength="200"
                        placeholder="经纪人登录名 broker's sign-in name";
                    button name="accept" type="submit" { "采纳 Accept" }
                }
                form.inline method="post" action={"/portal/pairings/" (p.id) "/respond"} {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="answer" value="decline";
                    label for={"reason-" (p.id)} { "婉拒理由 Why decline" }
                    input id={"reason-" (p.id)} type="text" name="reason" maxlength="500";
                    button.reject name="decline" type="submit" { "婉拒 Decline" }
                }
            }
            (PairingStatus::Accepted, None) => {
                (facilitator(p))
                a.sign href={"/portal/pairings/" (p.id) "/contract"} { "签订合同 Sign a contract →" }
            }
            (_, Some(c)) => {
                (facilitator(p))
                div.contract data-contract=(c.id) {
                    "合同 " strong { (c.contract_no) } " · " (contract_type(c.contract_type)) " · " (yuan(c.amount_fen))
                    br;
                    a.pay href={"/portal/contracts/" (c.id) "/payment"} { "记录付款 Record a payment →" }
                    " · " a href="/portal/subsidies" { "补贴申请 Subsidies" }
                }
            }
            _ => { span.muted { "—" } }
        }
    }
}

/// Who facilitated an accepted pairing (nothing when nobody is recorded).
fn facilitator(p: &mpb::Pairing) -> Markup {
    let role = match p.facilitator_role.as_str() {
        "broker" => "技术经纪人 broker",
        "tech_manager" => "技术经理人 tech manager",
        _ => "",
    };
    html! {
        @if !p.facilitator.is_empty() {
            div.facilitator data-facilitator=(p.facilitator) data-facilitator-role=(p.facilitator_role) {
                "促成人 Facilitator: " strong { (p.facilitator) } " · " (role)
            }
        }
    }
}

pub fn pairing_rows(session: &Session, rows: &[Row]) -> Markup {
    html! {
        table #pairings {
            thead { tr { th.num { "名次 Rank" } th { "成果 Achievement" } th.num { "得分 Score" } th { "理由 Why" } th { "状态 Status" } th { "下一步 Next" } } }
            tbody {
                @for row in rows {
                    @let p = &row.pairing;
                    tr data-pairing=(p.id) data-status=(pairing_status(p.status).0) {
                        td.num { (p.rank) }
                        td {
                            @if let Some(a) = &row.achievement {
                                strong { (a.title) } br;
                                span.muted { (a.institution) " · TRL " (a.trl) " · 报价 " (yuan(a.asking_price_fen)) }
                            } @else { span.mono { (p.achievement_id) } }
                        }
                        td.num.score { (format!("{:.3}", p.score)) }
                        td { ul.reasons { @for r in &p.reasons { li { (r) } } } }
                        td { span class={"pill " (pairing_status(p.status).0)} { (pairing_status(p.status).1) } }
                        td { (next_step(session, row)) }
                    }
                }
                @if rows.is_empty() {
                    tr { td colspan="6" .muted #no-pairings { "还没有推荐：需求审核通过后，天网会推送配对（本页会自动显示，或刷新）。No pairings yet: they come once the demand is verified (they appear here live, or on reload)." } }
                }
            }
        }
    }
}

/// Accept (the accept button) or decline (the decline button, with an optional reason).
pub async fn respond(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RespondForm>,
) -> Response {
    let e: Enterprise = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let accept = match f.answer.as_str() {
        "accept" => true,
        "decline" => false,
        _ => {
            let err = ApiError::invalid("answer", "must be accept or decline");
            return service_error(&e.session, err);
        }
    };
    let answer = async {
        let request = mpb::RespondToPairingRequest {
            pairing_id: id.clone(),
            accept,
            note: f.reason.clone().unwrap_or_default(),
            // Passed as given: matching trims it, and refuses it on a decline or naming oneself.
            broker: f.broker.clone().unwrap_or_default(),
        };
        let mut matching = state.upstream.matching.clone();
        Ok::<_, ApiError>(
            matching
                .respond_to_pairing(authed(request, &e.session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    match answer {
        Ok(p) => {
            let done = if accept { "accepted" } else { "declined" };
            see_other(&format!("/portal/demands/{}?done={done}", p.demand_id))
        }
        Err(err) => service_error(&e.session, err),
    }
}
