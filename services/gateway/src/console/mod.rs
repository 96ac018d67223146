//! The finance office's console: server-rendered pages over the services' gRPC APIs, for the
//! finance roles and auditors (another role is refused with a page saying so). Sessions,
//! CSRF and the page shell are the shared ones of [`crate::pages`]. Pages show what the
//! caller's role may do; the services enforce it.

mod application;
mod audit;
mod audit_details;
pub mod chart;
mod figures;
mod fund;
pub(crate) mod funnel;
pub mod layout;
mod new_fund;
mod policies;
mod policy_form;
pub(crate) mod queue;
mod registrations;

use crate::AppState;
use crate::pages::{NO_SCRIPT, harden};
pub use crate::pages::{
    Session, check_csrf, error_page, not_found, refused, require_role, service_error,
};
use axum::Router;
use axum::http::HeaderMap;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use kechuang_platform::Role;

/// Whom the console is for.
pub const ROLES: &[Role] = &[Role::FinanceOfficer, Role::FinanceApprover, Role::Auditor];
/// Whom the registration pages are for (technology-contract registration, 认定登记).
pub const REGISTRARS: &[Role] = &[Role::Registrar];
/// Who reads the monthly registration figures: registrars and the finance office.
pub const FIGURE_READERS: &[Role] = &[
    Role::Registrar,
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Auditor,
];

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        // Each person's own console page (a registrar's is not the queue); `/` knows which.
        .route("/console", get(|| async { Redirect::to("/") }))
        .route("/console/queue", get(queue::page))
        .route("/console/applications/{id}", get(application::page))
        .route("/console/applications/{id}/approve", post(queue::approve))
        .route("/console/applications/{id}/reject", post(queue::reject))
        .route(
            "/console/policies",
            get(policies::page).post(policies::propose),
        )
        .route("/console/policies/{id}/approve", post(policies::approve))
        .route("/console/policies/{id}/reject", post(policies::reject))
        .route("/console/fund", get(fund::page))
        .route("/console/fund/top-up", post(fund::top_up))
        .route("/console/fund/create", post(new_fund::create))
        .route("/console/funnel", get(funnel::page))
        .route("/console/audit", get(audit::page))
        .route("/console/registrations", get(registrations::page))
        .route(
            "/console/registrations/{id}/certify",
            post(registrations::certify),
        )
        .route(
            "/console/registrations/{id}/refuse",
            post(registrations::refuse),
        )
        .route("/console/figures", get(figures::page))
        .route("/console/figures.csv", get(figures::csv));
    harden(pages, NO_SCRIPT)
}

/// The session of a console page: signed in, in a console role.
pub async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Session, Box<Response>> {
    require_role(state, headers, ROLES).await
}

/// The session of a console form's POST: a console role, and the session's CSRF token.
pub async fn posted_session(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Box<Response>> {
    let session = require_session(state, headers).await?;
    check_csrf(state, &session, csrf)?;
    Ok(session)
}

/// An approve or reject form (applications and policies alike).
#[derive(serde::Deserialize)]
pub struct DecisionForm {
    pub csrf: Option<String>,
    pub note: Option<String>,
    pub reason: Option<String>,
}
