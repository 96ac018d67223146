//! The enterprises' portal (`/portal`): their record, their demands with each one's timeline,
//! the sky net's pairings with its reasons (accept or decline), the contract of an accepted
//! pairing, payments on it, and the subsidy applications those payments made. Every call
//! carries the enterprise's own token, so the services show it only its own; a page of
//! another enterprise's demand answers like an unknown one.
//!
//! Pages work without script; `/portal/live.js` (the only script, same-origin, allowed by
//! the portal's content security policy and nothing else) adds pairings as they are
//! proposed, from the server-sent events of `/portal/live`.

mod contracts;
mod demand_form;
mod demands;
mod live;
mod pairings;
mod profile;
mod subsidies;

use crate::AppState;
use crate::pages::layout::{Link, shell_with_script};
use crate::pages::{Session, check_csrf, error_page, harden, require_role};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kechuang_platform::Role;
use maud::Markup;
pub use profile::chain_options;

/// The console's policy (`pages::NO_SCRIPT`), plus one same-origin script and the event
/// stream it reads; never inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/portal", get(profile::page))
        .route("/portal/enterprise", post(profile::register))
        .route(
            "/portal/demands",
            get(demands::list).post(demand_form::submit),
        )
        .route("/portal/demands/new", get(demand_form::form))
        .route("/portal/demands/{id}", get(demands::page))
        .route("/portal/pairings/{id}/respond", post(pairings::respond))
        .route(
            "/portal/pairings/{id}/contract",
            get(contracts::sign_form).post(contracts::sign),
        )
        .route(
            "/portal/contracts/{id}/payment",
            get(contracts::payment_form).post(contracts::pay),
        )
        .route("/portal/subsidies", get(subsidies::page))
        .route("/portal/live", get(live::events))
        .route("/portal/live.js", get(live::script));
    harden(pages, CSP)
}

/// The portal's pages, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Profile,
    Demands,
    NewDemand,
    Subsidies,
    None,
}

pub fn view(title: &str, session: &Session, nav: Nav, body: Markup) -> Response {
    let link = |target: Nav, href, label| Link {
        href,
        label,
        on: nav == target,
    };
    let links = [
        link(Nav::Profile, "/portal", "企业信息 Profile"),
        link(Nav::Demands, "/portal/demands", "我的需求 My demands"),
        link(Nav::NewDemand, "/portal/demands/new", "提交需求 New demand"),
        link(Nav::Subsidies, "/portal/subsidies", "补贴申请 Subsidies"),
    ];
    shell_with_script(title, Some(session), &links, Some(live::SCRIPT_PATH), body).into_response()
}

/// A signed-in enterprise: its session and the enterprise its token acts for.
pub struct Enterprise {
    pub session: Session,
    pub id: String,
}

/// The enterprise of a portal page, or the answer that refuses it (login, another role's
/// 403, or a token naming no enterprise).
pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<Enterprise, Box<Response>> {
    let session = require_role(state, headers, &[Role::Enterprise]).await?;
    match session.caller.enterprise_id.clone() {
        Some(id) if !id.is_empty() => Ok(Enterprise { session, id }),
        _ => Err(Box::new(error_page(
            Some(&session),
            StatusCode::FORBIDDEN,
            "令牌未指明企业 No enterprise",
            "您的令牌没有指明企业（统一社会信用代码）：请用 kechuang token --role enterprise --enterprise 代码 重新生成。Your token names no enterprise.",
        ))),
    }
}

/// The enterprise of a portal form's POST, which carries the session's CSRF token.
pub async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Enterprise, Box<Response>> {
    let e = require(state, headers).await?;
    check_csrf(state, &e.session, csrf)?;
    Ok(e)
}
