//! My achievements (我的成果): those I registered, newest first, withdrawn ones marked; the
//! form to register one; withdrawing one with a reason.

use super::form::{AchievementForm, render, unreadable};
use super::{Nav, posted, require, view};
use crate::AppState;
use crate::api::types::time;
use crate::money::yuan;
use crate::pages::forms::{Problems, request_id};
use crate::pages::layout::local_opt;
use crate::pages::{Session, refused, see_other, service_error};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kechuang_proto::matching as mpb;
use maud::html;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    page_token: Option<String>,
    done: Option<String>,
}

#[derive(Deserialize)]
pub struct WithdrawForm {
    csrf: Option<String>,
    #[serde(default)]
    reason: String,
}

pub async fn mine(
    state: &AppState,
    session: &Session,
    page_token: String,
) -> Result<mpb::ListAchievementsResponse, ApiError> {
    list(state, session, page_token, String::new()).await
}

/// The achievement `id` if `session`'s person registered it: matching lists only a
/// supplier's own, so another's is `None`, as an unknown one.
pub async fn my_achievement(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<Option<mpb::Achievement>, ApiError> {
    let page = list(state, session, String::new(), id.to_string()).await?;
    Ok(page.achievements.into_iter().next())
}

async fn list(
    state: &AppState,
    session: &Session,
    page_token: String,
    achievement_id: String,
) -> Result<mpb::ListAchievementsResponse, ApiError> {
    let request = mpb::ListAchievementsRequest {
        page_size: 50,
        page_token,
        registered_by: String::new(),
        achievement_id,
    };
    let mut catalog = state.upstream.catalog.clone();
    Ok(catalog
        .list_achievements(authed(request, &session.token)?)
        .await?
        .into_inner())
}

fn flash(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "registered" => Some("已登记。Registered."),
        "edited" => {
            Some("已保存为新版本，旧版本已撤回。Saved as a new version; the old one is withdrawn.")
        }
        "withdrawn" => Some("已撤回。Withdrawn."),
        _ => None,
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    match require(&state, &headers).await {
        Ok(s) => render_list(&state, &s, q, None).await,
        Err(r) => *r,
    }
}

/// The list; `refusal` is a withdrawal the service refused: (achievement id, why), shown
/// beside that achievement's reason field.
async fn render_list(
    state: &AppState,
    session: &Session,
    q: ListQuery,
    refusal: Option<(&str, &str)>,
) -> Response {
    let listed = mine(state, session, q.page_token.unwrap_or_default()).await;
    let body = html! {
        h1 { "我的成果 My achievements" }
        @if let Some(f) = flash(q.done.as_deref()) { div.flash #flash { (f) } }
        p { a href="/supplier/achievements" { "登记成果 Register one" } " · " a href="/supplier/import" { "批量导入 Import a file" } }
        @match &listed {
            Err(e) => { (refused("无法读取成果 Cannot list achievements", e)) }
            Ok(page) => {
                table #achievements {
                    thead { tr { th { "成果 Achievement" } th { "产业链 Chain" } th.num { "TRL" } th.num { "报价 Price" } th { "登记 Registered" } th { "操作 Actions" } } }
                    tbody {
                        @for a in &page.achievements {
                            tr data-achievement=(a.id) {
                                td { (a.title) br; span.muted { (a.institution) } }
                                td { (a.industry_chain) } td.num { (a.trl) } td.num { (yuan(a.asking_price_fen)) }
                                td { (local_opt(time(a.create_time))) }
                                td {
                                    @if a.withdraw_time.is_some() {
                                        span.pill.withdrawn { "已撤回 withdrawn" } " " span.muted { (a.withdraw_reason) }
                                    } @else {
                                        a href={"/supplier/demands?achievement_id=" (a.id)} { "匹配需求 Demands" } " · "
                                        a href={"/supplier/achievements/" (a.id) "/edit"} { "修改 Edit" }
                                        @let why = refusal.filter(|r| r.0 == a.id).map(|r| r.1);
                                        form.inline method="post" action={"/supplier/achievements/" (a.id) "/withdraw"} {
                                            input type="hidden" name="csrf" value=(session.csrf);
                                            label for={"reason-" (a.id)} { "撤回原因 Reason" }
                                            input id={"reason-" (a.id)} type="text" name="reason" required aria-invalid=[why.map(|_| "true")] aria-describedby=[why.map(|_| format!("reason-{}-error", a.id))];
                                            button.reject type="submit" { "撤回 Withdraw" }
                                        }
                                        @if let Some(why) = why { div.why id={"reason-" (a.id) "-error"} role="alert" { (why) } }
                                    }
                                }
                            }
                        }
                        @if page.achievements.is_empty() { tr { td colspan="6" .muted #empty { "您还没有登记成果。None yet." } } }
                    }
                }
                @if !page.next_page_token.is_empty() {
                    p { a href={"/supplier?page_token=" (page.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
    };
    view("我的成果 My achievements", session, Nav::Mine, body)
}

fn new_page(session: &Session, f: &AchievementForm, problems: &Problems) -> Response {
    let body = html! {
        h1 { "登记成果 Register an achievement" }
        p.muted { "登记后，天网会把它与已审核的需求匹配。Once registered, the sky net pairs it with verified demands." }
        (render(&session.csrf, "/supplier/achievements", "登记 Register", f, problems))
    };
    view("登记成果 Register", session, Nav::Register, body)
}

pub async fn new(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require(&state, &headers).await {
        Ok(s) => {
            let f = AchievementForm {
                request_id: request_id("achievement"),
                ..AchievementForm::default()
            };
            new_page(&s, &f, &Problems::default())
        }
        Err(r) => *r,
    }
}

pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<AchievementForm>,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let request = f
            .draft()
            .request(f.request_id.clone(), false)
            .map_err(unreadable)?;
        let mut catalog = state.upstream.catalog.clone();
        Ok::<_, ApiError>(
            catalog
                .register_achievement(authed(request, &session.token)?)
                .await?,
        )
    }
    .await;
    match answer {
        Ok(_) => see_other("/supplier?done=registered"),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let mut r = new_page(&session, &f, &Problems::of(&e));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Err(e) => service_error(&session, e),
    }
}

pub async fn withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<WithdrawForm>,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    match withdraw_one(&state, &session, &id, f.reason.trim()).await {
        Ok(_) => see_other("/supplier?done=withdrawn"),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let why = Problems::of(&e)
                .get("reason")
                .unwrap_or(&e.body.error)
                .to_string();
            let mut r =
                render_list(&state, &session, ListQuery::default(), Some((&id, &why))).await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Err(e) => service_error(&session, e),
    }
}

/// Withdraws `id` for `session`'s person: matching answers NOT_FOUND for another's.
pub async fn withdraw_one(
    state: &AppState,
    session: &Session,
    id: &str,
    reason: &str,
) -> Result<mpb::Achievement, ApiError> {
    let request = mpb::WithdrawAchievementRequest {
        achievement_id: id.to_string(),
        reason: reason.to_string(),
    };
    let mut catalog = state.upstream.catalog.clone();
    Ok(catalog
        .withdraw_achievement(authed(request, &session.token)?)
        .await?
        .into_inner())
}
