//! Enterprises and demands (地网, demand-intake).

use super::Errors;
use super::extract::{Bearer, Id, JsonBody, Params};
use super::types::*;
use crate::AppState;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Json;
use axum::extract::State;
use kechuang_proto::demand as dpb;

#[utoipa::path(post, path = "/api/v1/enterprises", tag = "demands",
    request_body = RegisterEnterpriseBody,
    responses((status = 200, description = "The registered enterprise", body = Enterprise), Errors),
    security(("bearer" = [])))]
pub async fn register_enterprise(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(b): JsonBody<RegisterEnterpriseBody>,
) -> Result<Json<Enterprise>, ApiError> {
    let request = dpb::RegisterEnterpriseRequest {
        name: b.name,
        credit_code: b.credit_code,
        region_code: b.region_code,
        industry_chain: b.industry_chain,
    };
    let e = s
        .upstream
        .demand
        .clone()
        .register_enterprise(authed(request, &token)?)
        .await?;
    Ok(Json(e.into_inner().into()))
}

#[utoipa::path(get, path = "/api/v1/enterprises/{enterprise_id}", tag = "demands",
    params(("enterprise_id" = String, Path, description = "The unified social credit code")),
    responses((status = 200, description = "The enterprise", body = Enterprise), Errors),
    security(("bearer" = [])))]
pub async fn get_enterprise(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(enterprise_id): Id,
) -> Result<Json<Enterprise>, ApiError> {
    let request = dpb::GetEnterpriseRequest { enterprise_id };
    let e = s
        .upstream
        .demand
        .clone()
        .get_enterprise(authed(request, &token)?)
        .await?;
    Ok(Json(e.into_inner().into()))
}

#[utoipa::path(post, path = "/api/v1/demands", tag = "demands",
    request_body = SubmitDemandBody,
    responses((status = 200, description = "The submitted demand (the same one again for a repeated request_id)", body = Demand), Errors),
    security(("bearer" = [])))]
pub async fn submit_demand(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(b): JsonBody<SubmitDemandBody>,
) -> Result<Json<Demand>, ApiError> {
    let d = s
        .upstream
        .demand
        .clone()
        .submit_demand(authed(b.into_proto(), &token)?)
        .await?;
    Ok(Json(d.into_inner().into()))
}

#[utoipa::path(get, path = "/api/v1/demands", tag = "demands",
    params(ListDemandsQuery),
    responses((status = 200, description = "A page of demands, newest first", body = DemandPage), Errors),
    security(("bearer" = [])))]
pub async fn list_demands(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Params(q): Params<ListDemandsQuery>,
) -> Result<Json<DemandPage>, ApiError> {
    let request = dpb::ListDemandsRequest {
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
        status: q.status.map(DemandStatus::to_proto).unwrap_or(0),
        enterprise_id: q.enterprise_id.unwrap_or_default(),
        industry_chain: q.industry_chain.unwrap_or_default(),
    };
    let page = s
        .upstream
        .demand
        .clone()
        .list_demands(authed(request, &token)?)
        .await?
        .into_inner();
    Ok(Json(DemandPage {
        demands: page.demands.into_iter().map(Demand::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

#[utoipa::path(get, path = "/api/v1/demands/{demand_id}", tag = "demands",
    params(("demand_id" = String, Path)),
    responses((status = 200, description = "The demand with its status history", body = Demand), Errors),
    security(("bearer" = [])))]
pub async fn get_demand(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(demand_id): Id,
) -> Result<Json<Demand>, ApiError> {
    let request = dpb::GetDemandRequest { demand_id };
    let d = s
        .upstream
        .demand
        .clone()
        .get_demand(authed(request, &token)?)
        .await?;
    Ok(Json(d.into_inner().into()))
}

#[utoipa::path(post, path = "/api/v1/demands/{demand_id}/withdraw", tag = "demands",
    params(("demand_id" = String, Path)),
    request_body = WithdrawBody,
    responses((status = 200, description = "The withdrawn demand", body = Demand), Errors),
    security(("bearer" = [])))]
pub async fn withdraw_demand(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(demand_id): Id,
    JsonBody(b): JsonBody<WithdrawBody>,
) -> Result<Json<Demand>, ApiError> {
    let request = dpb::WithdrawDemandRequest {
        demand_id,
        reason: b.reason,
    };
    let d = s
        .upstream
        .demand
        .clone()
        .withdraw_demand(authed(request, &token)?)
        .await?;
    Ok(Json(d.into_inner().into()))
}
