//! Payments and subsidy applications (金网, subsidy).

use super::Errors;
use super::extract::{Bearer, Id, JsonBody, Params};
use super::types::*;
use crate::AppState;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Json;
use axum::extract::State;
use kechuang_proto::subsidy as spb;

#[utoipa::path(post, path = "/api/v1/payments", tag = "subsidy",
    request_body = RecordPaymentBody,
    responses((status = 200, description = "The recorded payment and the application it created", body = Payment), Errors),
    security(("bearer" = [])))]
pub async fn record_payment(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(b): JsonBody<RecordPaymentBody>,
) -> Result<Json<Payment>, ApiError> {
    let p = s
        .upstream
        .subsidy
        .clone()
        .record_payment(authed(b.into_proto(), &token)?)
        .await?;
    Ok(Json(p.into_inner().into()))
}

#[utoipa::path(get, path = "/api/v1/applications", tag = "subsidy",
    params(ListApplicationsQuery),
    responses((status = 200, description = "A page of subsidy applications", body = ApplicationPage), Errors),
    security(("bearer" = [])))]
pub async fn list_applications(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Params(q): Params<ListApplicationsQuery>,
) -> Result<Json<ApplicationPage>, ApiError> {
    let request = spb::ListApplicationsRequest {
        page_size: q.page_size.unwrap_or(0),
        page_token: q.page_token.unwrap_or_default(),
        status: q.status.map(ApplicationStatus::to_proto).unwrap_or(0),
        enterprise_id: q.enterprise_id.unwrap_or_default(),
        // Absent: every kind the caller may see (an enterprise: its subsidies).
        kind: q.kind.map(ApplicationKind::to_proto).unwrap_or(0),
    };
    let page = s
        .upstream
        .subsidy
        .clone()
        .list_applications(authed(request, &token)?)
        .await?
        .into_inner();
    Ok(Json(ApplicationPage {
        applications: page
            .applications
            .into_iter()
            .map(Application::from)
            .collect(),
        next_page_token: page.next_page_token,
    }))
}

#[utoipa::path(get, path = "/api/v1/applications/{application_id}", tag = "subsidy",
    params(("application_id" = String, Path)),
    responses((status = 200, description = "The application: amount, computation, approvals", body = Application), Errors),
    security(("bearer" = [])))]
pub async fn get_application(
    State(s): State<AppState>,
    Bearer(token): Bearer,
    Id(id): Id,
) -> Result<Json<Application>, ApiError> {
    let request = spb::GetApplicationRequest { id };
    let a = s
        .upstream
        .subsidy
        .clone()
        .get_application(authed(request, &token)?)
        .await?;
    Ok(Json(a.into_inner().into()))
}
