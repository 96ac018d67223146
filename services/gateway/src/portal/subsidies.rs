//! My subsidy applications (补贴申请): each payment's application with its computation under
//! the policy, as the finance office's queue shows it, and where it stands.

use super::{Nav, require, view};
use crate::AppState;
use crate::api::types::time;
use crate::money::yuan;
use crate::pages::layout::{application_status, local_opt, status_pill};
use crate::pages::refused;
use crate::pages::summaries::{contract_summary, four_eyes, policy_summary};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use kechuang_proto::subsidy as spb;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct SubsidiesQuery {
    page_token: Option<String>,
    done: Option<String>,
    id: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SubsidiesQuery>,
) -> Response {
    let e = match require(&state, &headers).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let token = &e.session.token;
    let listed = async {
        let request = spb::ListApplicationsRequest {
            page_size: 50,
            page_token: q.page_token.clone().unwrap_or_default(),
            status: 0,
            enterprise_id: e.id.clone(),
            // An enterprise is shown its subsidies only.
            kind: 0,
        };
        let mut subsidy = state.upstream.subsidy.clone();
        Ok::<_, ApiError>(
            subsidy
                .list_applications(authed(request, token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let body = match listed {
        Err(err) => refused("无法读取补贴申请 Cannot list your applications", &err),
        Ok(listing) => {
            let (policies, contracts) = futures::join!(
                state.upstream.policies(token),
                state.upstream.contracts(token, &listing.applications)
            );
            // Policies are the finance office's to list; without them the id is shown.
            let policies = policies.unwrap_or_default();
            html! {
                table #applications {
                    thead { tr {
                        th { "申请 Application" } th { "合同 Contract" } th.num { "实付 Paid" } th.num { "补贴 Subsidy" }
                        th { "政策与计算 Policy & computation" } th { "审批 Approvals" }
                    } }
                    tbody {
                        @for a in &listing.applications {
                            tr data-application=(a.id) data-status=(application_status(a.status).0) {
                                td { span.mono { (a.id) } br; (status_pill(a.status)) br; span.muted { (local_opt(time(a.create_time))) }
                                    @if !a.status_reason.is_empty() { div.muted.reason { (a.status_reason) } } }
                                td { (contract_summary(contracts.get(&a.contract_id), &a.contract_id)) }
                                td.num { (yuan(a.payment_amount_fen)) }
                                td.num.subsidy { strong { (yuan(a.amount_fen)) } }
                                td {
                                    (policy_summary(policies.get(&a.policy_id), &a.policy_id))
                                    details open { summary.muted { "计算过程 how it was computed" } ul.steps.computation { @for step in &a.computation { li { (step) } } } }
                                }
                                td { (four_eyes(a)) }
                            }
                        }
                        @if listing.applications.is_empty() {
                            tr { td colspan="6" .muted #empty { "还没有补贴申请：在已签合同上记录付款即生成。None yet: record a payment on a signed contract." } }
                        }
                    }
                }
                @if !listing.next_page_token.is_empty() {
                    p { a href={"/portal/subsidies?page_token=" (listing.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
    };
    let body = html! {
        h1 { "补贴申请 Subsidy applications" }
        @if q.done.as_deref() == Some("paid") {
            div.flash #flash { "付款已记录，补贴申请已生成：" span.mono { (q.id.as_deref().unwrap_or("")) } "。Payment recorded; the application goes to the finance office." }
        }
        (body)
    };
    view("补贴申请 Subsidies", &e.session, Nav::Subsidies, body)
}
