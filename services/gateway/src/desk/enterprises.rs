//! The enterprises I registered (我登记的企业): those a manager visited and put on the
//! platform (地网), newest first, and the form to register another.

use super::{Nav, posted, require, view};
use crate::AppState;
use crate::api::types::time;
use crate::pages::forms::{Problems, field, invalid};
use crate::pages::layout::local_opt;
use crate::pages::{Session, refused, see_other, service_error};
use crate::portal::chain_options;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kechuang_proto::demand as dpb;
use kechuang_vocabulary::region_name;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    page_token: Option<String>,
    done: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct RegisterForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    credit_code: String,
    #[serde(default)]
    region_code: String,
    #[serde(default)]
    industry_chain: String,
}

/// The enterprises `session`'s person registered (a page of them).
pub async fn mine(
    state: &AppState,
    session: &Session,
    page_token: String,
) -> Result<dpb::ListEnterprisesResponse, ApiError> {
    let request = dpb::ListEnterprisesRequest {
        page_size: 100,
        page_token,
        registered_by: session.caller.subject.clone(),
    };
    let mut demand = state.upstream.demand.clone();
    Ok(demand
        .list_enterprises(authed(request, &session.token)?)
        .await?
        .into_inner())
}

fn form(session: &Session, f: &RegisterForm, problems: &Problems) -> Markup {
    let text = |name: &str, label: &str, value: &str| {
        let (bad, why) = invalid(name, problems);
        field(
            name,
            label,
            problems,
            html! {
                input id=(name) type="text" name=(name) value=(value) aria-invalid=[bad] aria-describedby=[why];
            },
        )
    };
    let (bad, why) = invalid("industry_chain", problems);
    html! {
        h2 { "登记走访的企业 Register an enterprise you visited" }
        form.card #register method="post" action="/desk/enterprises" novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            div.cols {
                (text("name", "企业名称 Name", &f.name))
                (text("credit_code", "统一社会信用代码 Credit code (18)", &f.credit_code))
                (text("region_code", "行政区划代码 Region code (6)", &f.region_code))
                (field("industry_chain", "产业链 Industry chain", problems, html! {
                    select #industry_chain name="industry_chain" aria-invalid=[bad] aria-describedby=[why] { (chain_options(&f.industry_chain)) }
                }))
            }
            button #register-enterprise type="submit" { "登记 Register" }
        }
    }
}

async fn render(
    state: &AppState,
    session: &Session,
    q: ListQuery,
    f: &RegisterForm,
    problems: &Problems,
) -> Response {
    let listed = mine(state, session, q.page_token.unwrap_or_default()).await;
    let body = html! {
        h1 { "我登记的企业 Enterprises I registered" }
        @if q.done.as_deref() == Some("registered") { div.flash #flash { "已登记。Registered." } }
        @match &listed {
            Err(e) => { (refused("无法读取企业 Cannot list enterprises", e)) }
            Ok(page) => {
                table #enterprises {
                    thead { tr { th { "企业 Enterprise" } th { "信用代码 Credit code" } th { "地区 Region" } th { "产业链 Chain" } th { "登记 Registered" } } }
                    tbody {
                        @for e in &page.enterprises {
                            tr data-enterprise=(e.id) {
                                td { (e.name) } td.mono { (e.credit_code) }
                                td { (region_name(&e.region_code).unwrap_or("")) " " span.mono { (e.region_code) } }
                                td { (e.industry_chain) } td { (local_opt(time(e.create_time))) }
                            }
                        }
                        @if page.enterprises.is_empty() { tr { td colspan="5" .muted #empty { "您还没有登记企业。None yet." } } }
                    }
                }
                @if !page.next_page_token.is_empty() {
                    p { a href={"/desk/enterprises?page_token=" (page.next_page_token)} { "下一页 Next page →" } }
                }
            }
        }
        (form(session, f, problems))
    };
    view(
        "我登记的企业 My enterprises",
        session,
        Nav::Enterprises,
        body,
    )
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    match require(&state, &headers).await {
        Ok(s) => {
            render(
                &state,
                &s,
                q,
                &RegisterForm::default(),
                &Problems::default(),
            )
            .await
        }
        Err(r) => *r,
    }
}

pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let request = dpb::RegisterEnterpriseRequest {
            name: f.name.trim().to_string(),
            credit_code: f.credit_code.trim().to_string(),
            region_code: f.region_code.trim().to_string(),
            industry_chain: f.industry_chain.clone(),
        };
        let mut demand = state.upstream.demand.clone();
        Ok::<_, ApiError>(
            demand
                .register_enterprise(authed(request, &session.token)?)
                .await?,
        )
    }
    .await;
    match answer {
        Ok(_) => see_other("/desk/enterprises?done=registered"),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            let mut r = render(
                &state,
                &session,
                ListQuery::default(),
                &f,
                &Problems::of(&e),
            )
            .await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Err(e) => service_error(&session, e),
    }
}
