//! The enterprise's record (企业信息), and its registration when the platform does not know
//! it yet (an enterprise's id is its credit code, which its token already names).

use super::{Nav, posted, require, view};
use crate::AppState;
use crate::pages::forms::{Problems, field, invalid};
use crate::pages::layout::local_opt;
use crate::pages::{refused, service_error};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_proto::demand as dpb;
use kechuang_vocabulary::{INDUSTRY_CHAINS, region_name};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct RegisterForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    region_code: String,
    #[serde(default)]
    industry_chain: String,
}

pub fn chain_options(selected: &str) -> Markup {
    html! {
        option value="" { "— 请选择 choose —" }
        @for c in INDUSTRY_CHAINS { option value=(c) selected[*c == selected] { (c) } }
    }
}

fn register_form(csrf: &str, f: &RegisterForm, problems: &Problems) -> Markup {
    html! {
        h2 { "登记企业 Register your enterprise" }
        p { "平台还没有贵企业的记录。登记后即可提交技术需求。The platform does not know your enterprise yet; register it to submit demands." }
        form.card #register method="post" action="/portal/enterprise" {
            input type="hidden" name="csrf" value=(csrf);
            @let (bad, why) = invalid("name", problems);
            (field("name", "企业名称 Name", problems, html! { input #name type="text" name="name" value=(f.name) required maxlength="200" aria-invalid=[bad] aria-describedby=[why]; }))
            @let (bad, why) = invalid("region_code", problems);
            (field("region_code", "行政区划代码 Region code (6 digits, e.g. 420100 武汉市)", problems, html! { input #region_code type="text" name="region_code" value=(f.region_code) required inputmode="numeric" pattern="[0-9]{6}" aria-invalid=[bad] aria-describedby=[why]; }))
            @let (bad, why) = invalid("industry_chain", problems);
            (field("industry_chain", "产业链 Industry chain", problems, html! { select #industry_chain name="industry_chain" required aria-invalid=[bad] aria-describedby=[why] { (chain_options(&f.industry_chain)) } }))
            button #register-submit type="submit" { "登记 Register" }
        }
    }
}

fn record(e: &dpb::Enterprise) -> Markup {
    html! {
        table #enterprise data-enterprise=(e.id) {
            tbody {
                tr { th { "企业名称 Name" } td #enterprise-name { (e.name) } }
                tr { th { "统一社会信用代码 Credit code" } td.mono { (e.credit_code) } }
                tr { th { "行政区划 Region" } td { (region_name(&e.region_code).unwrap_or("")) " " span.mono { (e.region_code) } } }
                tr { th { "产业链 Industry chain" } td { (e.industry_chain) } }
                tr { th { "登记 Registered" } td { (local_opt(crate::api::types::time(e.create_time))) " · " (e.registered_by) } }
            }
        }
        p { a href="/portal/demands/new" { "提交技术需求 Submit a demand →" } " · " a href="/portal/demands" { "我的需求 My demands →" } }
    }
}

async fn enterprise(state: &AppState, token: &str, id: &str) -> Result<dpb::Enterprise, ApiError> {
    let request = dpb::GetEnterpriseRequest {
        enterprise_id: id.to_string(),
    };
    Ok(state
        .upstream
        .demand
        .clone()
        .get_enterprise(authed(request, token)?)
        .await?
        .into_inner())
}

pub async fn page_of(
    state: &AppState,
    e: &super::Enterprise,
    form: &RegisterForm,
    problems: &Problems,
    flash: Option<&str>,
) -> Response {
    let body = match enterprise(state, &e.session.token, &e.id).await {
        Ok(found) => record(&found),
        Err(err) if err.status == StatusCode::NOT_FOUND => {
            register_form(&e.session.csrf, form, problems)
        }
        Err(err) => refused("无法读取企业信息 Cannot read your enterprise", &err),
    };
    let body = html! {
        h1 { "企业信息 Profile" }
        @if let Some(f) = flash { div.flash #flash { (f) } }
        (body)
    };
    view("企业信息 Profile", &e.session, Nav::Profile, body)
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Done>,
) -> Response {
    let e = match require(&state, &headers).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let flash = (q.done.as_deref() == Some("registered")).then_some("已登记。Registered.");
    page_of(
        &state,
        &e,
        &RegisterForm::default(),
        &Problems::default(),
        flash,
    )
    .await
}

pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    let e = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let request = dpb::RegisterEnterpriseRequest {
        name: f.name.trim().to_string(),
        credit_code: e.id.clone(),
        region_code: f.region_code.trim().to_string(),
        industry_chain: f.industry_chain.clone(),
    };
    let answer = async {
        let token = &e.session.token;
        let mut demand = state.upstream.demand.clone();
        Ok::<_, ApiError>(demand.register_enterprise(authed(request, token)?).await?)
    }
    .await;
    match answer {
        Ok(_) => crate::pages::see_other("/portal?done=registered"),
        Err(err) if err.status == StatusCode::BAD_REQUEST => {
            let mut r = page_of(&state, &e, &f, &Problems::of(&err), None).await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r.into_response()
        }
        Err(err) => service_error(&e.session, err),
    }
}
