//! The finance office's console: server-rendered pages over the services' gRPC APIs, signed
//! in by pasting a token (kept in an HttpOnly, SameSite=Strict cookie), every form carrying
//! a CSRF token. Pages show what the caller's role may do; the services enforce it.

mod application;
mod audit;
pub mod chart;
mod fund;
mod funnel;
pub mod layout;
mod login;
mod policies;
mod policy_form;
mod queue;

use crate::AppState;
use crate::status::ApiError;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kechuang_platform::Caller;
use layout::{Nav, page};
use maud::{Markup, html};

pub const SESSION_COOKIE: &str = "kc_session";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/queue") }))
        .route("/console", get(|| async { Redirect::to("/console/queue") }))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
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
        .route("/console/funnel", get(funnel::page))
        .route("/console/audit", get(audit::page))
        .layer(axum::middleware::map_response(harden))
}

/// No framing, no scripts, forms only to ourselves, nothing cached.
async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A signed-in person.
pub struct Session {
    pub token: String,
    pub caller: Caller,
    /// The CSRF token the session's forms carry.
    pub csrf: String,
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session of the request's cookie, if its token is (still) valid.
pub fn session(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let caller = state.auth.verify(token).ok()?;
    Some(Session {
        token: token.to_string(),
        csrf: state.csrf.token(token),
        caller,
    })
}

/// The session, or the answer that sends the browser to the login page.
pub fn require_session(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    session(state, headers).ok_or_else(|| {
        Box::new((StatusCode::SEE_OTHER, [(LOCATION, "/console/login")]).into_response())
    })
}

/// The session of a form's POST: signed in, and the form carries the session's CSRF token.
pub fn posted_session(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Box<Response>> {
    let session = require_session(state, headers)?;
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

/// Refuses a POST whose CSRF token is not its session's (before any service is asked).
pub fn check_csrf(
    state: &AppState,
    session: &Session,
    presented: Option<&str>,
) -> Result<(), Box<Response>> {
    match presented {
        Some(t) if state.csrf.verify(&session.token, t) => Ok(()),
        _ => Err(Box::new(error_page(
            Some(session),
            StatusCode::FORBIDDEN,
            "请求被拒绝 Request refused",
            "表单的 CSRF 令牌缺失或无效：请从控制台页面重新提交。The form's CSRF token is missing or invalid; submit it again from the console page.",
        ))),
    }
}

/// A page that says what went wrong, with the HTTP status of the failure.
pub fn error_page(
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let body = html! {
        h1 { (title) }
        div.error #error data-status=(status.as_u16()) {
            strong { "HTTP " (status.as_u16()) } " · " (message)
        }
        p { a href="/console/queue" { "返回审批队列 Back to the queue" } }
    };
    (status, page(title, session, Nav::None, body)).into_response()
}

/// A service's refusal or failure, shown as a page.
pub fn service_error(session: &Session, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::FORBIDDEN => "无权操作 Not permitted",
        StatusCode::UNAUTHORIZED => "需要重新登录 Sign in again",
        StatusCode::NOT_FOUND => "未找到 Not found",
        StatusCode::CONFLICT => "状态冲突 Conflict",
        StatusCode::BAD_REQUEST => "输入有误 Bad input",
        _ => "服务错误 Service error",
    };
    let mut message = format!(
        "服务答复 The service answered {}: {}",
        e.body.code, e.body.error
    );
    for v in &e.body.field_violations {
        message.push_str(&format!(" [{}: {}]", v.field, v.description));
    }
    error_page(Some(session), e.status, title, &message)
}

/// A section that could not be loaded (e.g. the role may not read it): said in place.
pub fn refused(what: &str, e: &ApiError) -> Markup {
    html! {
        div.error data-status=(e.status.as_u16()) {
            (what) "：" (e.body.code) " · " (e.body.error)
        }
    }
}

pub async fn not_found() -> Response {
    error_page(
        None,
        StatusCode::NOT_FOUND,
        "未找到 Not found",
        "没有这个页面 No such page.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; kc_session=tok.en.x; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok.en.x"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
