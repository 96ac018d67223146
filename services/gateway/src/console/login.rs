//! Signing in by pasting a token. The login form is protected by a double-submit nonce (a
//! cookie and a hidden field, HMAC-bound) so another site cannot sign a browser in.

use super::layout::{Nav, page, role_label};
use super::{SESSION_COOKIE, cookie, posted_session};
use crate::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::Deserialize;

const LOGIN_COOKIE: &str = "kc_login";

fn login_page(
    state: &AppState,
    nonce: &str,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = state.csrf.token(&format!("login:{nonce}"));
    let body = html! {
        h1 { "登录 Sign in" }
        div.card style="max-width:720px" {
            p { "粘贴您的访问令牌（" code { "kechuang token --role finance_approver --subject 姓名" } " 生成）。Paste your access token." }
            @if let Some(p) = problem { div.error #error { (p) } }
            form method="post" action="/console/login" {
                input type="hidden" name="csrf" value=(csrf);
                textarea #token name="token" rows="5" required placeholder="eyJhbGciOi..." {}
                p { button #signin type="submit" { "登录 Sign in" } }
            }
            p.muted { "角色 Roles: " (role_label(kechuang_platform::Role::FinanceApprover)) "、" (role_label(kechuang_platform::Role::FinanceOfficer)) "、" (role_label(kechuang_platform::Role::Auditor)) }
        }
    };
    (
        status,
        [(
            SET_COOKIE,
            format!("{LOGIN_COOKIE}={nonce}; Path=/console/login; HttpOnly; SameSite=Strict"),
        )],
        page("登录 Sign in", None, Nav::None, body),
    )
        .into_response()
}

fn fresh_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

pub async fn form(State(state): State<AppState>) -> Response {
    login_page(&state, &fresh_nonce(), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let nonce = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !state.csrf.verify(&format!("login:{nonce}"), &f.csrf) {
        return login_page(
            &state,
            &fresh_nonce(),
            Some("登录表单已过期，请重试。The form expired; try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let token = f.token.trim();
    let caller = match state.auth.verify(token) {
        Ok(c) => c,
        Err(e) => {
            return login_page(
                &state,
                &fresh_nonce(),
                Some(&format!("令牌无效 Invalid token: {e}")),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    tracing::info!(
        subject = caller.subject,
        role = caller.role.as_str(),
        "console sign-in"
    );
    // A JWT is base64url and dots: nothing to escape in a cookie.
    (
        StatusCode::SEE_OTHER,
        [
            (
                SET_COOKIE,
                format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"),
            ),
            (LOCATION, "/console/queue".to_string()),
        ],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    if let Err(r) = posted_session(&state, &headers, Some(&f.csrf)) {
        return *r;
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                SET_COOKIE,
                format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            ),
            (LOCATION, "/console/login".to_string()),
        ],
    )
        .into_response()
}
