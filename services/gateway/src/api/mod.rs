//! The enterprises' HTTP/JSON API: the demand, pairing, contract and payment calls of the
//! gRPC APIs, with the caller's bearer token passed through. Described at `/openapi.json`.

mod catalog;
mod demands;
pub mod extract;
mod matching;
mod openapi;
mod subsidy;
pub mod types;

use crate::AppState;
use crate::status::{ApiError, ErrorBody};
use axum::Router;
use axum::routing::{get, post};
pub use openapi::ApiDoc;
use utoipa::openapi::{RefOr, Response as OaResponse, ResponseBuilder, ResponsesBuilder};
use utoipa::{IntoResponses, OpenApi, ToSchema};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/enterprises", post(demands::register_enterprise))
        .route(
            "/api/v1/enterprises/{enterprise_id}",
            get(demands::get_enterprise),
        )
        .route(
            "/api/v1/demands",
            post(demands::submit_demand).get(demands::list_demands),
        )
        .route("/api/v1/demands/{demand_id}", get(demands::get_demand))
        .route(
            "/api/v1/demands/{demand_id}/withdraw",
            post(demands::withdraw_demand),
        )
        .route(
            "/api/v1/demands/{demand_id}/pairings",
            get(matching::list_pairings),
        )
        .route(
            "/api/v1/pairings/{pairing_id}/respond",
            post(matching::respond_to_pairing),
        )
        .route(
            "/api/v1/achievements/{achievement_id}",
            get(catalog::get_achievement),
        )
        .route("/api/v1/contracts", post(matching::sign_contract))
        .route(
            "/api/v1/contracts/{contract_id}",
            get(matching::get_contract),
        )
        .route("/api/v1/payments", post(subsidy::record_payment))
        .route("/api/v1/applications", get(subsidy::list_applications))
        .route(
            "/api/v1/applications/{application_id}",
            get(subsidy::get_application),
        )
        .route("/openapi.json", get(openapi_json))
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

/// Any unknown path under the API.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such resource; see /openapi.json")
}

/// The error answers every operation may give, documented once.
pub struct Errors;

impl IntoResponses for Errors {
    fn responses() -> std::collections::BTreeMap<String, RefOr<OaResponse>> {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name(
                            ErrorBody::name(),
                        )))
                        .build(),
                )
                .build()
        };
        ResponsesBuilder::new()
            .response("400", error("Bad input: malformed JSON, a wrong type or a broken rule; `field_violations` names each field"))
            .response("401", error("No bearer token, or one the platform does not accept"))
            .response("403", error("The token's role may not do this"))
            .response("404", error("No such resource, or one the caller may not see"))
            .response("409", error("Conflict: already exists, or not in a state that allows this"))
            .response("429", error("Too many writes: the caller's write rate is spent (`Retry-After` says in how many seconds to try again), or a service is at its limit of requests in flight"))
            .response("503", error("A service is unavailable, or the gateway is at its limit of requests in flight (`Retry-After`) or ran out of time"))
            .build()
            .into()
    }
}
