//! Signing in by pasting a token, which starts a server-side session (see
//! [`crate::sessions`]); signing out ends it, here or everywhere. The login form is protected
//! by a double-submit nonce (a cookie and a hidden field, HMAC-bound) so another site cannot
//! sign a browser in.

use super::home::home_for;
use super::layout::{role_label, shell};
use super::{
    cookie, dropped_session_cookies, error_page, posted_session, session_cookie, session_secret,
};
use crate::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::Deserialize;

const LOGIN_COOKIE: &str = "kc_login";

/// The login page: the provider's button when one is configured, else (development) the
/// pasted-token form.
pub(super) fn login_page(state: &AppState, problem: Option<&str>, status: StatusCode) -> Response {
    let nonce = fresh_nonce();
    let csrf = state.csrf.token(&format!("login:{nonce}"));
    let body = html! {
        h1 { "登录 Sign in" }
        div.card style="max-width:720px" {
            @if let Some(p) = problem { div.error #error { (p) } }
            @if let Some(oidc) = &state.oidc {
                p { a.button #sso href="/login/oidc" { "使用 " (oidc.config.provider_name) " 登录 Sign in with " (oidc.config.provider_name) } }
            } @else {
                @if state.dev_issuer.is_some() { (super::dev_sign_in::people(&csrf)) }
                p.error { strong { "开发用 Development only: " } "没有配置身份提供方（KC_GATEWAY_OIDC_ISSUER），请粘贴访问令牌（" code { "kechuang token --role 角色 --subject 姓名" } " 生成）。No identity provider is configured; paste an access token. You are sent to your role's pages." }
                form method="post" action="/console/login" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="token" { "访问令牌 Access token" }
                    textarea #token name="token" rows="5" required placeholder="eyJhbGciOi..." {}
                    p { button #signin type="submit" { "登录 Sign in" } }
                }
            }
            p.muted { "角色 Roles: "
                @for (i, role) in kechuang_platform::Role::ALL.iter().filter(|r| **r != kechuang_platform::Role::Service).enumerate() {
                    @if i > 0 { "、" }
                    (role_label(*role)) " → " code { (home_for(kechuang_platform::auth::Roles::of(*role))) }
                }
            }
        }
    };
    (
        status,
        [(
            SET_COOKIE,
            format!("{LOGIN_COOKIE}={nonce}; Path=/console/login; HttpOnly; SameSite=Strict"),
        )],
        shell("登录 Sign in", None, &[], body),
    )
        .into_response()
}

fn fresh_nonce() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

pub async fn form(State(state): State<AppState>) -> Response {
    login_page(&state, None, StatusCode::OK)
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
    if state.oidc.is_some() {
        // With a provider configured, only the provider signs people in.
        return login_page(
            &state,
            Some("请使用身份提供方登录。Sign in with the identity provider."),
            StatusCode::FORBIDDEN,
        );
    }
    if let Err(page) = check_login_form(&state, &headers, &f.csrf) {
        return *page;
    }
    sign_in_with(&state, &headers, f.token.trim()).await
}

/// Refuses a login form that does not carry the CSRF token of this browser's login nonce.
pub(super) fn check_login_form(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(), Box<Response>> {
    let nonce = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    if nonce.is_empty() || !state.csrf.verify(&format!("login:{nonce}"), csrf) {
        return Err(Box::new(login_page(
            state,
            Some("登录表单已过期，请重试。The form expired; try again."),
            StatusCode::FORBIDDEN,
        )));
    }
    Ok(())
}

/// Verifies `token` and starts a session with it: to the person's pages.
pub(super) async fn sign_in_with(state: &AppState, headers: &HeaderMap, token: &str) -> Response {
    let (caller, expires) = match state.auth.verify_with_expiry(token) {
        Ok(verified) => verified,
        Err(e) => {
            return login_page(
                state,
                Some(&format!("令牌无效 Invalid token: {e}")),
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    let secret = match state.sessions.begin(&caller, token, expires).await {
        Ok(secret) => secret,
        Err(e) => {
            tracing::error!(error = %e, "console: cannot store a session");
            return error_page(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时无法登录 Sessions unavailable",
                "会话存储暂时无法访问，请稍后重试。The session store does not answer; try again shortly.",
            );
        }
    };
    tracing::info!(
        subject = caller.subject,
        roles = %caller.roles,
        "sign-in"
    );
    let mut response =
        (StatusCode::SEE_OTHER, [(LOCATION, home_for(caller.roles))]).into_response();
    append_cookie(&mut response, &session_cookie(state, headers, &secret));
    // The nonce has done its work.
    append_cookie(
        &mut response,
        &format!("{LOGIN_COOKIE}=; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

pub(super) fn append_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(SET_COOKIE, v);
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends this browser's session: its cookie no longer resumes anything, whoever holds a copy.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let session = match posted_session(&state, &headers, Some(&f.csrf)).await {
        Ok(session) => session,
        Err(r) => return *r,
    };
    let Some(secret) = session_secret(&headers) else {
        return signed_out(&state).await;
    };
    if let Err(e) = state.sessions.end(&secret).await {
        tracing::error!(error = %e, "console: cannot end a session");
        return error_page(
            Some(&session),
            StatusCode::SERVICE_UNAVAILABLE,
            "未能退出 Not signed out",
            "会话存储暂时无法访问，会话仍然有效，请重试。The session store does not answer; the session is still live: try again.",
        );
    }
    tracing::info!(subject = session.caller.subject, "sign-out");
    signed_out(&state).await
}

/// Ends every session of the signed-in person, on every browser (a lost laptop, a shared desk).
pub async fn logout_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let session = match posted_session(&state, &headers, Some(&f.csrf)).await {
        Ok(session) => session,
        Err(r) => return *r,
    };
    match state.sessions.end_all_of(&session.caller.subject).await {
        Ok(ended) => {
            tracing::info!(
                subject = session.caller.subject,
                ended,
                "sign-out everywhere"
            );
            signed_out(&state).await
        }
        Err(e) => {
            tracing::error!(error = %e, "console: cannot end sessions");
            error_page(
                Some(&session),
                StatusCode::SERVICE_UNAVAILABLE,
                "未能退出 Not signed out",
                "会话存储暂时无法访问，会话仍然有效，请重试。The session store does not answer; the sessions are still live: try again.",
            )
        }
    }
}

/// To the login page, both session cookies dropped; by way of the provider's end-session
/// endpoint when it has one, so that its own session ends too (RP-initiated logout).
async fn signed_out(state: &AppState) -> Response {
    let provider = match &state.oidc {
        Some(oidc) => {
            let back = reqwest::Url::parse(&oidc.config.redirect_url)
                .and_then(|u| u.join("/console/login"))
                .map(String::from);
            match back {
                Ok(back) => oidc.end_session_url(&back).await,
                Err(_) => None,
            }
        }
        None => None,
    };
    let mut response = match provider {
        // A page that moves on, not a redirect: a redirect after a form's POST to another
        // site is refused by the pages' `form-action 'self'`.
        Some(url) => {
            let body = html! {
                h1 { "已退出 Signed out" }
                p { a #provider-logout href=(url) { "退出身份提供方 Sign out at the identity provider" } }
            };
            (
                StatusCode::OK,
                [(
                    axum::http::HeaderName::from_static("refresh"),
                    format!("0;url={url}"),
                )],
                shell("已退出 Signed out", None, &[], body),
            )
                .into_response()
        }
        None => (StatusCode::SEE_OTHER, [(LOCATION, "/console/login")]).into_response(),
    };
    for c in dropped_session_cookies() {
        append_cookie(&mut response, &c);
    }
    response
}
