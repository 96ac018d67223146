//! Where each role is sent (`/` and after signing in), and the refusal of a page meant for
//! another role: a clear page with a 403, never a crash or an empty page.

use super::layout::{role_label, role_labels, shell};
use super::{Session, error_page, require_session};
use crate::AppState;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_platform::Role;
use kechuang_platform::auth::Roles;
use maud::html;

/// A person's own pages: the first of their roles' areas in this order (a finance officer who
/// is also an enterprise user lands in the console; the others are a link away).
pub fn home_for(roles: Roles) -> &'static str {
    if roles.has(Role::FinanceOfficer)
        || roles.has(Role::FinanceApprover)
        || roles.has(Role::Auditor)
    {
        "/console/queue"
    } else if roles.has(Role::Registrar) {
        "/console/registrations"
    } else if roles.has(Role::TechManager) {
        "/desk"
    } else if roles.has(Role::Enterprise) {
        "/portal"
    } else if roles.has(Role::Supplier) {
        "/supplier"
    } else {
        // Services, registrars and brokers have no pages: a page says what they may use
        // instead.
        "/welcome"
    }
}

/// `/`: the signed-in person's pages, or the login page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers).await {
        Ok(s) => see_other(home_for(s.caller.roles)),
        Err(r) => *r,
    }
}

pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_string())]).into_response()
}

/// For roles without pages of their own: what they may use.
pub async fn welcome(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match require_session(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let body = html! {
        h1 { "欢迎 Welcome" }
        div.card #welcome data-role=(session.caller.roles.to_string()) {
            p { "您以 " (role_labels(session.caller.roles)) " 身份登录。You are signed in as " (session.caller.roles) "." }
            p { "此角色没有网页：请使用 gRPC 接口或 " a href="/openapi.json" { "HTTP API" } "。This role has no pages: use the gRPC APIs or the HTTP API." }
            @if session.caller.has(Role::Broker) {
                p #broker-note { "技术经纪人由企业在接受配对时指定（填写您的登录名 " code { (session.caller.subject) } "）；该配对及其合同记您为促成人。A broker is named by the enterprise when it accepts a pairing (by your sign-in name above); the pairing and the contract signed on it record you as the deal's facilitator." }
            }
        }
    };
    shell("欢迎 Welcome", Some(&session), &[], body).into_response()
}

/// The session of a page for `roles`: the login page without one, a 403 page for a person
/// in another role (with a link to their own pages).
pub async fn require_role(
    state: &AppState,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Session, Box<Response>> {
    let session = require_session(state, headers).await?;
    if session.caller.has_any(roles) {
        return Ok(session);
    }
    let meant: Vec<&str> = roles.iter().map(|r| role_label(*r)).collect();
    let message = format!(
        "此页面供 {} 使用；您以 {} 身份登录，您的页面在 {}。This page is for {}; you are signed in as {}: your pages are at {}.",
        meant.join("、"),
        role_labels(session.caller.roles),
        home_for(session.caller.roles),
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        session.caller.roles,
        home_for(session.caller.roles),
    );
    Err(Box::new(error_page(
        Some(&session),
        StatusCode::FORBIDDEN,
        "无权访问 Not your page",
        &message,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_home() {
        let one = |r| home_for(Roles::of(r));
        for role in Role::ALL {
            assert!(one(role).starts_with('/'), "{role:?}");
        }
        assert_eq!(one(Role::Enterprise), "/portal");
        assert_eq!(one(Role::TechManager), "/desk");
        assert_eq!(one(Role::FinanceApprover), "/console/queue");
        assert_eq!(one(Role::Auditor), "/console/queue");
        assert_eq!(one(Role::Supplier), "/supplier");
        // A broker has no pages: the welcome page says what they may use.
        assert_eq!(one(Role::Broker), "/welcome");
        assert_eq!(one(Role::Registrar), "/console/registrations");
        assert_eq!(
            home_for(Roles::of(Role::Enterprise).with(Role::TechManager)),
            "/desk"
        );
    }
}
