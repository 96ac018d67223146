//! Where each role is sent (`/` and after signing in), and the refusal of a page meant for
//! another role: a clear page with a 403, never a crash or an empty page.

use super::layout::{role_label, shell};
use super::{Session, error_page, require_session};
use crate::AppState;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_platform::Role;
use maud::html;

/// A role's own pages.
pub fn home_for(role: Role) -> &'static str {
    match role {
        Role::FinanceOfficer | Role::FinanceApprover | Role::Auditor => "/console/queue",
        Role::Enterprise => "/portal",
        Role::TechManager => "/desk",
        // No pages yet: a page says what they may use instead.
        Role::Supplier | Role::Service => "/welcome",
    }
}

/// `/`: the signed-in person's pages, or the login page.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require_session(&state, &headers).await {
        Ok(s) => see_other(home_for(s.caller.role)),
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
        div.card #welcome data-role=(session.caller.role.as_str()) {
            p { "您以 " (role_label(session.caller.role)) " 身份登录。You are signed in as " (session.caller.role.as_str()) "." }
            @match session.caller.role {
                Role::Supplier => {
                    p { "高校院所的成果发布页面尚未开放：请通过 gRPC 接口 " code { "kechuang.matching.v1.CatalogService" } " 发布或批量导入成果。"
                        "Achievement owners' pages are not open yet: publish or import achievements through the CatalogService gRPC API." }
                }
                _ => {
                    p { "此角色没有网页：请使用 gRPC 接口或 " a href="/openapi.json" { "HTTP API" } "。This role has no pages: use the gRPC APIs or the HTTP API." }
                }
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
    if roles.contains(&session.caller.role) {
        return Ok(session);
    }
    let meant: Vec<&str> = roles.iter().map(|r| role_label(*r)).collect();
    let message = format!(
        "此页面供 {} 使用；您以 {} 身份登录，您的页面在 {}。This page is for {}; you are signed in as {}: your pages are at {}.",
        meant.join("、"),
        role_label(session.caller.role),
        home_for(session.caller.role),
        roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        session.caller.role.as_str(),
        home_for(session.caller.role),
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
        for role in Role::ALL {
            assert!(home_for(role).starts_with('/'), "{role:?}");
        }
        assert_eq!(home_for(Role::Enterprise), "/portal");
        assert_eq!(home_for(Role::TechManager), "/desk");
        assert_eq!(home_for(Role::FinanceApprover), "/console/queue");
        assert_eq!(home_for(Role::Auditor), "/console/queue");
        assert_eq!(home_for(Role::Supplier), "/welcome");
    }
}
