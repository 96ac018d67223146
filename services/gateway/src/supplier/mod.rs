//! The suppliers' pages (`/supplier`, 高校院所, role `supplier`): my achievements (register,
//! edit, withdraw with a reason), bulk import from a CSV or XLSX file with every bad row listed,
//! and reverse matching: the open demands the sky net paired with my achievements, with its
//! reasons. Server-rendered, no script, every form with the session's CSRF token; matching's
//! CatalogService decides what a supplier may do (another's achievement is not found).

mod achievements;
mod draft;
mod edit;
mod form;
mod import;
mod matches;
mod sheet;

use crate::AppState;
use crate::pages::layout::{Link, shell};
use crate::pages::{NO_SCRIPT, Session, check_csrf, harden, require_role};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kechuang_platform::Role;
use maud::Markup;

pub use import::{MAX_IMPORT_BYTES, MAX_IMPORT_ROWS};

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/supplier", get(achievements::page))
        .route(
            "/supplier/achievements",
            get(achievements::new).post(achievements::register),
        )
        .route(
            "/supplier/achievements/{id}/edit",
            get(edit::page).post(edit::save),
        )
        .route(
            "/supplier/achievements/{id}/withdraw",
            post(achievements::withdraw),
        )
        .route(
            "/supplier/import",
            get(import::page)
                .post(import::upload)
                // The file plus the form's few fields; a bigger body is refused with 413.
                .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES + 64 * 1024)),
        )
        .route("/supplier/import/template.csv", get(import::template))
        .route("/supplier/demands", get(matches::page));
    harden(pages, NO_SCRIPT)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Mine,
    Register,
    Import,
    Demands,
}

pub fn view(title: &str, session: &Session, nav: Nav, body: Markup) -> Response {
    let link = |target: Nav, href, label| Link {
        href,
        label,
        on: nav == target,
    };
    let links = [
        link(Nav::Mine, "/supplier", "我的成果 My achievements"),
        link(Nav::Register, "/supplier/achievements", "登记成果 Register"),
        link(Nav::Import, "/supplier/import", "批量导入 Import"),
        link(
            Nav::Demands,
            "/supplier/demands",
            "匹配需求 Matching demands",
        ),
    ];
    shell(title, Some(session), &links, body).into_response()
}

pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    require_role(state, headers, &[Role::Supplier]).await
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
