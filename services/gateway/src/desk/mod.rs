//! The technology managers' desk (`/desk`, 地网): demands waiting for verification (verify,
//! or reject with a note), the enterprises I registered (and registering one I visited), and
//! my district's funnel. Server-rendered, no script, every form with the session's CSRF token;
//! demand-intake decides what a manager may do.

mod enterprises;
mod funnel;
mod verify;

use crate::AppState;
use crate::pages::layout::{Link, shell};
use crate::pages::{NO_SCRIPT, Session, check_csrf, harden, require_role};
use axum::Router;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kechuang_platform::Role;
use maud::Markup;

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/desk", get(verify::page))
        .route("/desk/demands/{id}/verify", post(verify::verify))
        .route("/desk/demands/{id}/reject", post(verify::reject))
        .route(
            "/desk/enterprises",
            get(enterprises::page).post(enterprises::register),
        )
        .route("/desk/funnel", get(funnel::page));
    harden(pages, NO_SCRIPT)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Verify,
    Enterprises,
    Funnel,
}

pub fn view(title: &str, session: &Session, nav: Nav, body: Markup) -> Response {
    let link = |target: Nav, href, label| Link {
        href,
        label,
        on: nav == target,
    };
    let links = [
        link(Nav::Verify, "/desk", "待审核需求 To verify"),
        link(
            Nav::Enterprises,
            "/desk/enterprises",
            "我登记的企业 My enterprises",
        ),
        link(Nav::Funnel, "/desk/funnel", "本区漏斗 My district"),
    ];
    shell(title, Some(session), &links, body).into_response()
}

pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    require_role(state, headers, &[Role::TechManager]).await
}

pub async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Box<Response>> {
    let session = require(state, headers).await?;
    check_csrf(state, &session, csrf)?;
    Ok(session)
}
