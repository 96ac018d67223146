//! Submitting a demand (提交需求): the form, and the service's verdict on it shown by field
//! (its `INVALID_ARGUMENT` field violations beside the inputs they name).

use super::profile::chain_options;
use super::{Enterprise, Nav, posted, require, view};
use crate::AppState;
use crate::money::hundredths;
use crate::pages::forms::{Problems, end_of_day, field, invalid, request_id};
use crate::pages::{see_other, service_error};
use crate::status::{ApiError, FieldViolation};
use crate::upstream::authed;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_platform::events::timestamp;
use kechuang_proto::common::ContractType;
use kechuang_proto::demand as dpb;
use maud::{Markup, html};
use serde::Deserialize;

/// The five contract types, as the forms offer them.
pub const CONTRACT_TYPES: [(ContractType, &str); 5] = [
    (ContractType::Development, "技术开发 development"),
    (ContractType::Transfer, "技术转让 transfer"),
    (ContractType::License, "技术许可 licence"),
    (ContractType::Consulting, "技术咨询 consulting"),
    (ContractType::Service, "技术服务 service"),
];

pub fn contract_type_options(selected: i32) -> Markup {
    html! {
        @for (t, label) in CONTRACT_TYPES {
            option value=(t as i32) selected[t as i32 == selected] { (label) }
        }
    }
}

/// The form as the browser sends it (text; yuan and a date in China time).
#[derive(Deserialize, Default, Debug)]
pub struct DemandForm {
    csrf: Option<String>,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    industry_chain: String,
    #[serde(default)]
    contract_type: String,
    #[serde(default)]
    budget_min: String,
    #[serde(default)]
    budget_max: String,
    #[serde(default)]
    region_code: String,
    #[serde(default)]
    deadline: String,
}

impl DemandForm {
    /// The request, or a 400 naming each field the gateway cannot even read (the service
    /// judges the rest).
    fn request(&self, enterprise_id: &str) -> Result<dpb::SubmitDemandRequest, ApiError> {
        let mut bad = Vec::new();
        let mut money = |name: &'static str, text: &str| {
            hundredths(text).unwrap_or_else(|| {
                bad.push((
                    name,
                    "请填写金额（元，最多两位小数）a yuan amount, at most two decimals",
                ));
                0
            })
        };
        let (min, max) = (
            money("budget_min", &self.budget_min),
            money("budget_max", &self.budget_max),
        );
        let deadline = end_of_day(&self.deadline);
        if deadline.is_none() {
            bad.push(("deadline", "请选择日期 choose a date (YYYY-MM-DD)"));
        }
        if !bad.is_empty() {
            let mut e = ApiError::invalid(bad[0].0, bad[0].1);
            e.body.field_violations = bad
                .into_iter()
                .map(|(f, d)| FieldViolation {
                    field: f.into(),
                    description: d.into(),
                })
                .collect();
            return Err(e);
        }
        Ok(dpb::SubmitDemandRequest {
            request_id: self.request_id.clone(),
            enterprise_id: enterprise_id.to_string(),
            title: self.title.trim().to_string(),
            description: self.description.trim().to_string(),
            industry_chain: self.industry_chain.clone(),
            contract_type: self.contract_type.parse().unwrap_or(0),
            budget_min_fen: min,
            budget_max_fen: max,
            region_code: self.region_code.trim().to_string(),
            deadline: deadline.map(timestamp),
        })
    }
}

fn render(csrf: &str, f: &DemandForm, problems: &Problems) -> Markup {
    let text = |name: &str, label: &str, value: &str, extra: &str| {
        let (bad, why) = invalid(name, problems);
        field(
            name,
            label,
            problems,
            html! {
                input id=(name) type="text" name=(name) value=(value) placeholder=(extra) aria-invalid=[bad] aria-describedby=[why];
            },
        )
    };
    let (bad_d, why_d) = invalid("description", problems);
    let (bad_c, why_c) = invalid("industry_chain", problems);
    let (bad_t, why_t) = invalid("contract_type", problems);
    let (bad_dl, why_dl) = invalid("deadline", problems);
    let request = if f.request_id.is_empty() {
        request_id("portal-demand")
    } else {
        f.request_id.clone()
    };
    html! {
        @if !problems.is_empty() {
            div.error #problems role="alert" { "请修改标出的字段。Please correct the fields marked below." }
        }
        form.card #demand-form method="post" action="/portal/demands" novalidate {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="request_id" value=(request);
            (text("title", "需求标题 Title", &f.title, "如：焊缝经常出现气孔，返修率高"))
            (field("description", "需求描述 Description（症状、目标、现有工艺 symptoms, goals, current process）", problems, html! {
                textarea #description name="description" rows="5" aria-invalid=[bad_d] aria-describedby=[why_d] { (f.description) }
            }))
            div.cols {
                (field("industry_chain", "产业链 Industry chain", problems, html! {
                    select #industry_chain name="industry_chain" aria-invalid=[bad_c] aria-describedby=[why_c] { (chain_options(&f.industry_chain)) }
                }))
                (field("contract_type", "合同类型 Contract type", problems, html! {
                    select #contract_type name="contract_type" aria-invalid=[bad_t] aria-describedby=[why_t] { (contract_type_options(f.contract_type.parse().unwrap_or(2))) }
                }))
                (text("budget_min", "预算下限（元）Budget from (yuan)", &f.budget_min, "100000"))
                (text("budget_max", "预算上限（元）Budget up to (yuan)", &f.budget_max, "3000000"))
                (text("region_code", "应用地区 Region code (6 digits)", &f.region_code, "420100"))
                (field("deadline", "截止日期 Deadline", problems, html! {
                    input #deadline type="date" name="deadline" value=(f.deadline) aria-invalid=[bad_dl] aria-describedby=[why_dl];
                }))
            }
            button #submit-demand type="submit" { "提交需求 Submit" }
            span.muted { " 提交后由技术经理人审核。A technology manager verifies it next." }
        }
    }
}

fn form_page(e: &Enterprise, f: &DemandForm, problems: &Problems) -> Response {
    let body = html! {
        h1 { "提交技术需求 Submit a demand" }
        (render(&e.session.csrf, f, problems))
    };
    view("提交需求 New demand", &e.session, Nav::NewDemand, body)
}

pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match require(&state, &headers).await {
        Ok(e) => form_page(&e, &DemandForm::default(), &Problems::default()),
        Err(r) => *r,
    }
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<DemandForm>,
) -> Response {
    let e = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let answer = async {
        let request = f.request(&e.id)?;
        let mut demand = state.upstream.demand.clone();
        Ok::<_, ApiError>(
            demand
                .submit_demand(authed(request, &e.session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    match answer {
        Ok(d) => see_other(&format!("/portal/demands/{}?done=submitted", d.id)),
        Err(err) if err.status == StatusCode::BAD_REQUEST => {
            let mut r = form_page(&e, &f, &Problems::of(&err));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r.into_response()
        }
        Err(err) => service_error(&e.session, err),
    }
}
