//! Pairings and contracts (天网, matching).

use super::Errors;
use super::extract::{Bearer, Id, JsonBody, Params};
use super::types::*;
use crate::AppState;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Json;
use axum::extract::State;
use kechuang_proto::matching as mpb;

#[utoipa::path(get, path = "/api/v1/demands/{demand_id}/pairings", tag = "matching",
    params(("demand_id" = String, Path), PageQuery),
    responses((status = 200, description = "The demand's pairings, best first", body = PairingPage), Errors),
    security(("bearer" = [])))]
pub async fn list_pairings(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(demand_id): Id,
    Params(q): Params<PageQuery>,
) -> Result<Json<PairingPage>, ApiError> {
    let request = mpb::ListPairingsRequest {
        demand_id,
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
    };
    let page = s
        .upstream
        .matching
        .clone()
        .list_pairings(authed(request, &token)?)
        .await?
        .into_inner();
    Ok(Json(PairingPage {
        pairings: page.pairings.into_iter().map(Pairing::from).collect(),
        next_page_token: page.next_page_token,
    }))
}

#[utoipa::path(post, path = "/api/v1/pairings/{pairing_id}/respond", tag = "matching",
    params(("pairing_id" = String, Path)),
    request_body = RespondBody,
    responses((status = 200, description = "The pairing, accepted (docking) or rejected", body = Pairing), Errors),
    security(("bearer" = [])))]
pub async fn respond_to_pairing(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(pairing_id): Id,
    JsonBody(b): JsonBody<RespondBody>,
) -> Result<Json<Pairing>, ApiError> {
    let request = mpb::RespondToPairingRequest {
        pairing_id,
        accept: b.accept,
        note: b.note,
        broker: b.broker,
    };
    let p = s
        .upstream
        .matching
        .clone()
        .respond_to_pairing(authed(request, &token)?)
        .await?;
    Ok(Json(p.into_inner().into()))
}

#[utoipa::path(post, path = "/api/v1/contracts", tag = "matching",
    request_body = SignContractBody,
    responses((status = 200, description = "The signed contract (the same one again for a repeated request_id)", body = Contract), Errors),
    security(("bearer" = [])))]
pub async fn sign_contract(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(b): JsonBody<SignContractBody>,
) -> Result<Json<Contract>, ApiError> {
    let c = s
        .upstream
        .matching
        .clone()
        .sign_contract(authed(b.into_proto(), &token)?)
        .await?;
    Ok(Json(c.into_inner().into()))
}

#[utoipa::path(get, path = "/api/v1/contracts/{contract_id}", tag = "matching",
    params(("contract_id" = String, Path)),
    responses((status = 200, description = "The contract", body = Contract), Errors),
    security(("bearer" = [])))]
pub async fn get_contract(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(contract_id): Id,
) -> Result<Json<Contract>, ApiError> {
    let request = mpb::GetContractRequest { contract_id };
    let c = s
        .upstream
        .matching
        .clone()
        .get_contract(authed(request, &token)?)
        .await?;
    Ok(Json(c.into_inner().into()))
}
