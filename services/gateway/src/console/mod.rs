//! The finance office's console: server-rendered pages over the services' gRPC APIs, signed
//! in by pasting a token into a server-side session (an opaque HttpOnly, SameSite=Strict
//! cookie, see [`crate::sessions`]), every form carrying a CSRF token. Pages show what the
//! caller's role may do; the services enforce it.

mod application;
mod audit;
mod audit_details;
pub mod chart;
mod fund;
mod funnel;
pub mod layout;
mod login;
mod policies;
mod policy_form;
mod queue;

use crate::AppState;
use crate::sessions::SessionSecret;
use crate::status::ApiError;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kechuang_platform::Caller;
use layout::{Nav, page};
use maud::{Markup, html};

/// The session cookie's name over plain HTTP (development).
pub const SESSION_COOKIE: &str = "kc_session";
/// Its name when `Secure`: the `__Host-` prefix makes browsers refuse it unless it is Secure,
/// host-only and for `/`, so a sibling subdomain cannot plant or overwrite it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-kc_session";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/queue") }))
        .route("/console", get(|| async { Redirect::to("/console/queue") }))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/logout/everywhere", post(login::logout_everywhere))
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
    /// Their bearer token, which every call to a service carries.
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

/// The session secret the request's cookie carries, if it looks like one.
pub fn session_secret(headers: &HeaderMap) -> Option<SessionSecret> {
    [SECURE_SESSION_COOKIE, SESSION_COOKIE]
        .into_iter()
        .find_map(|name| cookie(headers, name).and_then(SessionSecret::parse))
}

/// Whether the request came over TLS as far as the gateway can tell: a TLS proxy in front
/// says so in `X-Forwarded-Proto` (a client lying about it only makes its own cookie
/// HTTPS-only).
pub fn came_over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("https")
        })
}

/// The `Set-Cookie` value that hands `secret` to the browser (for the browser's session only:
/// closing it signs out too).
pub fn session_cookie(state: &AppState, headers: &HeaderMap, secret: &SessionSecret) -> String {
    if state.sessions.policy().secure_cookies || came_over_tls(headers) {
        format!(
            "{SECURE_SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Secure",
            secret.encode()
        )
    } else {
        format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            secret.encode()
        )
    }
}

/// The `Set-Cookie` values that drop both session cookies.
pub fn dropped_session_cookies() -> [String; 2] {
    [
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        format!("{SECURE_SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Secure; Max-Age=0"),
    ]
}

/// The live session of the request's cookie (its token still valid), if any; an error page
/// when the session store cannot be asked.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(secret) = session_secret(headers) else {
        return Ok(None);
    };
    let token = match state.sessions.resume(&secret).await {
        Ok(Some(token)) => token,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "console: the session store does not answer");
            return Err(error_page(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时无法登录 Sessions unavailable",
                "会话存储暂时无法访问，请稍后重试。The session store does not answer; try again shortly.",
            ));
        }
    };
    let Ok(caller) = state.auth.verify(&token) else {
        return Ok(None);
    };
    Ok(Some(Session {
        csrf: state.csrf.token(&session_binding(&secret)),
        token,
        caller,
    }))
}

/// What a session's CSRF tokens are bound to: its id, never the secret itself.
pub fn session_binding(secret: &SessionSecret) -> String {
    format!("session:{}", URL_SAFE_NO_PAD.encode(secret.id()))
}

/// The session, or the answer that sends the browser to the login page.
pub async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Session, Box<Response>> {
    match session(state, headers).await {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Box::new(
            (StatusCode::SEE_OTHER, [(LOCATION, "/console/login")]).into_response(),
        )),
        Err(page) => Err(Box::new(page)),
    }
}

/// The session of a form's POST: signed in, and the form carries the session's CSRF token.
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

/// Refuses a POST whose CSRF token is not its session's (before any service is asked).
pub fn check_csrf(
    state: &AppState,
    session: &Session,
    presented: Option<&str>,
) -> Result<(), Box<Response>> {
    match presented {
        Some(t) if state.csrf.matches(&session.csrf, t) => Ok(()),
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
