//! Editing an achievement (修改成果). The catalog never edits a registered achievement: the
//! pairings, contracts and `kc.achievement.registered` event that name it stay true to what
//! was offered. So an edit registers the new text as a new achievement and withdraws the old
//! one ("由新版本取代 superseded"): only my own (matching lists only a supplier's own: another's
//! is not found), checked first (`validate_only`, so a bad field withdraws nothing), then the
//! old one withdrawn, then the new one registered under the form's request id (a resubmitted
//! form registers once).

use super::achievements::{my_achievement, withdraw_one};
use super::draft::Draft;
use super::form::{AchievementForm, render, unreadable};
use super::{Nav, posted, require, view};
use crate::AppState;
use crate::pages::forms::{Problems, request_id};
use crate::pages::{Session, error_page, see_other, service_error};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;

fn edit_page(session: &Session, id: &str, f: &AchievementForm, problems: &Problems) -> Response {
    let body = html! {
        h1 { "修改成果 Edit an achievement" }
        p.muted { "保存后登记为新成果，原成果撤回（已有的匹配与合同不变）。Saving registers the new text as a new achievement and withdraws this one (its pairings and contracts stand)." }
        (render(&session.csrf, &format!("/supplier/achievements/{id}/edit"), "保存 Save", f, problems))
    };
    view("修改成果 Edit", session, Nav::Mine, body)
}

/// Another's achievement answers exactly as an unknown one.
fn not_yours(session: &Session) -> Response {
    error_page(
        Some(session),
        StatusCode::NOT_FOUND,
        "未找到 Not found",
        "您登记的成果中没有这一项。None of your achievements has this id.",
    )
}

fn already_withdrawn(session: &Session) -> Response {
    error_page(
        Some(session),
        StatusCode::CONFLICT,
        "已撤回 Withdrawn",
        "此成果已撤回，不能修改；请登记新成果。This achievement is withdrawn and cannot be edited; register a new one.",
    )
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let session = match require(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match my_achievement(&state, &session, &id).await {
        Ok(None) => not_yours(&session),
        Ok(Some(a)) if a.withdraw_time.is_some() => already_withdrawn(&session),
        Ok(Some(a)) => {
            let f = AchievementForm {
                request_id: request_id("achievement"),
                ..AchievementForm::of(&Draft::of(&a))
            };
            edit_page(&session, &id, &f, &Problems::default())
        }
        Err(e) => service_error(&session, e),
    }
}

pub async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<AchievementForm>,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match my_achievement(&state, &session, &id).await {
        Ok(None) => return not_yours(&session),
        Ok(Some(a)) if a.withdraw_time.is_some() => return already_withdrawn(&session),
        Ok(Some(_)) => {}
        Err(e) => return service_error(&session, e),
    }
    let draft = f.draft();
    let mut catalog = state.upstream.catalog.clone();
    let checked = async {
        let check = draft.request(String::new(), true).map_err(unreadable)?;
        catalog
            .register_achievement(authed(check, &session.token)?)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match checked {
        Ok(()) => {}
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let mut r = edit_page(&session, &id, &f, &Problems::of(&e));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
        Err(e) => return service_error(&session, e),
    }
    if let Err(e) = withdraw_one(&state, &session, &id, "由新版本取代 superseded by an edit").await
    {
        return service_error(&session, e);
    }
    let registered = async {
        let request = draft
            .request(f.request_id.clone(), false)
            .map_err(unreadable)?;
        Ok::<_, ApiError>(
            catalog
                .register_achievement(authed(request, &session.token)?)
                .await?,
        )
    }
    .await;
    match registered {
        Ok(_) => see_other("/supplier?done=edited"),
        Err(e) => service_error(&session, e),
    }
}
