//! Signing in with the OpenID Connect provider (see [`crate::oidc`]): `/login/oidc` sends the
//! browser there, `/login/callback` takes it back and starts a server-side session whose
//! bearer token is the access token the provider issued (the services verify it against the
//! provider's key set, as the gateway does here first).

use super::home::home_for;
use super::layout::shell;
use super::login::{append_cookie, login_page};
use super::{came_over_tls, cookie, error_page, session_cookie};
use crate::AppState;
use crate::oidc::{Error, PENDING_FOR};
use crate::sessions::Particulars;
use axum::extract::{Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

/// The pending sign-in's cookie. `SameSite=Lax`, not `Strict`: it must come back on the
/// provider's top-level redirect to the callback.
const PENDING_COOKIE: &str = "kc_oidc";
const REFRESH: HeaderName = HeaderName::from_static("refresh");

fn pending_cookie(headers: &HeaderMap, value: &str, max_age: u64) -> String {
    let secure = if came_over_tls(headers) {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{PENDING_COOKIE}={value}; Path=/login; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    )
}

pub async fn start(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return super::not_found().await.into_response();
    };
    match oidc.start(&state.csrf).await {
        Ok((url, pending)) => (
            StatusCode::SEE_OTHER,
            [
                (LOCATION, url),
                (
                    SET_COOKIE,
                    pending_cookie(&headers, &pending, PENDING_FOR.as_secs()),
                ),
            ],
        )
            .into_response(),
        Err(e) => refused(&state, StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return super::not_found().await.into_response();
    };
    if let Some(error) = q.error {
        // Only the error code, and only if it looks like one: the query is anyone's to write,
        // and the login page must not become a place to print an attacker's words.
        let code =
            if error.len() <= 40 && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                error
            } else {
                "error".into()
            };
        tracing::info!(code, "the identity provider refused a sign-in");
        return refused(
            &state,
            StatusCode::FORBIDDEN,
            &format!("身份提供方拒绝登录 The identity provider refused the sign-in ({code})."),
        );
    }
    let pending = cookie(&headers, PENDING_COOKIE).unwrap_or_default();
    let signed_in = match oidc.finish(&state.csrf, pending, &q.state, &q.code).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in with the identity provider refused");
            let status = match e {
                Error::Provider(_) => StatusCode::BAD_GATEWAY,
                Error::Pending | Error::Refused(_) => StatusCode::FORBIDDEN,
            };
            return refused(&state, status, &e.to_string());
        }
    };
    // The services will verify this token; verifying it here first turns a misconfigured
    // provider (no `aud`, no roles claim) into a clear page instead of refusals later.
    let (caller, expires) = match state.auth.verify_with_expiry(&signed_in.access_token) {
        Ok(v) if v.0.subject == signed_in.subject => v,
        Ok(_) => {
            return refused(
                &state,
                StatusCode::FORBIDDEN,
                "访问令牌与身份令牌不是同一人 The access token names another person than the ID token",
            );
        }
        Err(e) => {
            return refused(
                &state,
                StatusCode::FORBIDDEN,
                &format!(
                    "身份提供方的访问令牌不被接受 The provider's access token is not accepted: {e}"
                ),
            );
        }
    };
    let particulars = Particulars {
        display_name: signed_in.display_name,
        refresh_token: signed_in.refresh_token,
    };
    let secret = match state
        .sessions
        .begin_with(&caller, &signed_in.access_token, expires, &particulars)
        .await
    {
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
    tracing::info!(subject = caller.subject, roles = %caller.roles, "sign-in (OpenID Connect)");
    // A page, not a redirect: the session cookie is SameSite=Strict, and a browser would not
    // send it on a redirect in a chain that started at the provider's site. The refresh from
    // this (our own) page (a `Refresh` header) is same-site.
    let home = home_for(caller.roles);
    let body = html! {
        h1 { "已登录 Signed in" }
        p { a #continue href=(home) { "继续 Continue" } }
    };
    let mut response = (
        StatusCode::OK,
        [(REFRESH, format!("0;url={home}"))],
        shell("已登录 Signed in", None, &[], body),
    )
        .into_response();
    append_cookie(&mut response, &session_cookie(&state, &headers, &secret));
    append_cookie(&mut response, &pending_cookie(&headers, "", 0));
    response
}

fn refused(state: &AppState, status: StatusCode, problem: &str) -> Response {
    login_page(state, Some(problem), status)
}
