//! What every group of pages shares: the server-side session a person signs in to (an opaque
//! HttpOnly, SameSite=Strict cookie, see [`crate::sessions`]), the CSRF token every form
//! carries, the page shell, error pages, and where each role is sent. The console
//! (`/console`, finance office), the portal (`/portal`, enterprises) and the desk (`/desk`,
//! technology managers) are built on it; the services decide what each caller may do.

mod dev_sign_in;
mod errors;
pub mod forms;
mod home;
pub mod layout;
mod login;
mod sso;
pub mod summaries;

use crate::AppState;
use crate::sessions::SessionSecret;
use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use errors::{error_page, not_found, refused, service_error};
pub use home::{home_for, require_role, see_other};
use kechuang_platform::Caller;

/// The session cookie's name over plain HTTP (development).
pub const SESSION_COOKIE: &str = "kc_session";
/// Its name when `Secure`: the `__Host-` prefix makes browsers refuse it unless it is Secure,
/// host-only and for `/`, so a sibling subdomain cannot plant or overwrite it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-kc_session";

/// No framing, no scripts, forms only to ourselves, nothing cached.
pub const NO_SCRIPT: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Signing in and out (every role, one login page) and `/`, which sends a person to theirs.
pub fn router() -> Router<AppState> {
    harden(
        Router::new()
            .route("/", get(home::home))
            .route("/welcome", get(home::welcome))
            .route("/console/login", get(login::form).post(login::submit))
            .route("/console/login/dev", post(dev_sign_in::submit))
            .route("/login/oidc", get(sso::start))
            .route("/login/callback", get(sso::callback))
            .route("/console/logout", post(login::logout))
            .route("/console/logout/everywhere", post(login::logout_everywhere)),
        NO_SCRIPT,
    )
}

/// `router` with the content security policy `csp`, framing refused and nothing cached.
pub fn harden<S: Clone + Send + Sync + 'static>(router: Router<S>, csp: &'static str) -> Router<S> {
    router.layer(axum::middleware::map_response(
        move |mut response: Response| async move {
            let h = response.headers_mut();
            h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
            h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        },
    ))
}

/// A signed-in person.
pub struct Session {
    /// Their bearer token, which every call to a service carries.
    pub token: String,
    pub caller: Caller,
    /// The CSRF token the session's forms carry.
    pub csrf: String,
    /// What the identity provider calls them, if it said.
    pub display_name: Option<String>,
}

impl Session {
    /// The person as the header names them: the provider's name for them, else the subject.
    pub fn who(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.caller.subject)
    }
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

/// An access token closer than this to its expiry is renewed with the session's refresh
/// token (when the provider issued one): long enough for a page's calls to the services.
const RENEW_BEFORE: u64 = 60;

/// The live session of the request's cookie (its token valid, renewed when about to expire
/// or expired), if any; an error page when the session store cannot be asked.
pub async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, Response> {
    let Some(secret) = session_secret(headers) else {
        return Ok(None);
    };
    let resumed = match state.sessions.resume(&secret).await {
        Ok(Some(resumed)) => resumed,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "pages: the session store does not answer");
            return Err(error_page(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时无法登录 Sessions unavailable",
                "会话存储暂时无法访问，请稍后重试。The session store does not answer; try again shortly.",
            ));
        }
    };
    let verified = state
        .auth
        .verify_with_expiry(&resumed.token)
        .ok()
        .filter(|(c, _)| c.subject == resumed.subject);
    let fresh = |expires: u64| expires >= kechuang_platform::auth::unix_now() + RENEW_BEFORE;
    let (token, caller) = match verified {
        Some((caller, expires)) if fresh(expires) || resumed.refresh_token.is_none() => {
            (resumed.token, caller)
        }
        // About to expire, or expired: renewed, else the current one while it lasts.
        Some((caller, _)) => renew(state, &secret, &resumed.subject)
            .await
            .unwrap_or((resumed.token, caller)),
        None if resumed.refresh_token.is_some() => {
            match renew(state, &secret, &resumed.subject).await {
                Some(renewed) => renewed,
                None => return Ok(None),
            }
        }
        None => return Ok(None),
    };
    Ok(Some(Session {
        csrf: state.csrf.token(&session_binding(&secret)),
        token,
        caller,
        display_name: resumed.display_name,
    }))
}

/// Renews the access token of the session `secret` names with its refresh token: the new
/// token and who it names (the same person, or nothing changes).
///
/// One renewal of a session at a time: a provider that rotates refresh tokens takes a second
/// use of a spent one as theft and revokes the grant, and a page's requests come together.
/// The second finds the session renewed by the first. (Sessions share a few locks, so a slow
/// provider holds up the renewals of a stripe of sessions, not of everyone.)
async fn renew(
    state: &AppState,
    secret: &SessionSecret,
    subject: &str,
) -> Option<(String, Caller)> {
    static RENEWING: [tokio::sync::Mutex<()>; 64] =
        [const { tokio::sync::Mutex::const_new(()) }; 64];
    let oidc = state.oidc.as_ref()?;
    let stripe = usize::from(secret.id()[0]) % RENEWING.len();
    let _one_at_a_time = RENEWING[stripe].lock().await;
    let latest = state.sessions.resume(secret).await.ok()??;
    if let Ok((caller, expires)) = state.auth.verify_with_expiry(&latest.token)
        && caller.subject == subject
        && expires >= kechuang_platform::auth::unix_now() + RENEW_BEFORE
    {
        return Some((latest.token, caller));
    }
    let renewed = match oidc.refresh(latest.refresh_token.as_deref()?).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, subject, "pages: the provider did not renew a session's token");
            return None;
        }
    };
    let caller = match state.auth.verify(&renewed.access_token) {
        Ok(c) if c.subject == subject => c,
        Ok(_) => {
            tracing::warn!(
                subject,
                "pages: a renewed token names another person; not used"
            );
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, subject, "pages: a renewed token is not accepted");
            return None;
        }
    };
    match state
        .sessions
        .renew(
            secret,
            &renewed.access_token,
            renewed.refresh_token.as_deref(),
        )
        .await
    {
        Ok(true) => {
            tracing::info!(subject, "session renewed with the provider's refresh token");
            Some((renewed.access_token, caller))
        }
        Ok(false) => None,
        Err(e) => {
            tracing::error!(error = %e, "pages: cannot store a renewed token");
            None
        }
    }
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
            "表单的 CSRF 令牌缺失或无效：请从页面重新提交。The form's CSRF token is missing or invalid; submit it again from the page.",
        ))),
    }
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
