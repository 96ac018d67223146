//! Technology-contract registration (技术合同认定登记) for registrars: the contracts waiting,
//! the nearest deadline first, each with a form to certify it (registration number, statutory
//! type, technical amount in yuan, note) or refuse it (reason). A refused form comes back with
//! what was typed and the reason beside the offending field; the subsidy service decides.

use super::layout::{Nav, ZONE, contract_type, enterprise, local_opt, page_response};
use super::{REGISTRARS, Session, check_csrf, refused, require_role, service_error};
use crate::AppState;
use crate::api::types::time;
use crate::money::{hundredths, yuan, yuan_digits};
use crate::pages::forms::Problems;
use crate::pages::layout::urlencode;
use crate::pages::see_other;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{self as spb, RegistrationStatus};
use kechuang_vocabulary::region_name;
use maud::{Markup, html};
use serde::Deserialize;

/// Registrations shown on one page.
const PAGE_SIZE: i32 = 50;

/// The five statutory types, in the law's order.
const TYPES: [ContractType; 5] = [
    ContractType::Development,
    ContractType::Transfer,
    ContractType::License,
    ContractType::Consulting,
    ContractType::Service,
];

#[derive(Deserialize, Default)]
pub struct ListQuery {
    page_token: Option<String>,
    done: Option<String>,
    id: Option<String>,
}

/// A certification as typed (the amount in yuan).
#[derive(Deserialize, Default, Clone)]
pub struct CertifyForm {
    csrf: Option<String>,
    /// The page the form was on, shown again when it is refused.
    page_token: Option<String>,
    #[serde(default)]
    registration_no: String,
    #[serde(default)]
    contract_type: String,
    #[serde(default)]
    certified_amount: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize, Default, Clone)]
pub struct RefuseForm {
    csrf: Option<String>,
    page_token: Option<String>,
    #[serde(default)]
    reason: String,
}

/// A form the service (or the gateway) refused: whose, what was typed, what was wrong.
struct Failed {
    contract_id: String,
    certify: Option<CertifyForm>,
    refuse: Option<RefuseForm>,
    problems: Problems,
}

/// One field of one contract's form: ids carry the contract id (many forms share the page);
/// a field the problems name is marked invalid and described by its message.
fn field(cid: &str, name: &str, label: &str, problems: Option<&Problems>, input: Markup) -> Markup {
    let problem = problems.and_then(|p| p.get(name));
    html! {
        div.field.invalid[problem.is_some()] data-field=(name) {
            label for={(name) "-" (cid)} { (label) }
            (input)
            @if let Some(p) = problem {
                div.why id={(name) "-" (cid) "-error"} role="alert" { (p) }
            }
        }
    }
}

/// `aria-invalid` and `aria-describedby` of a field the problems name.
fn invalid(
    cid: &str,
    name: &str,
    problems: Option<&Problems>,
) -> (Option<&'static str>, Option<String>) {
    match problems.and_then(|p| p.get(name)) {
        Some(_) => (Some("true"), Some(format!("{name}-{cid}-error"))),
        None => (None, None),
    }
}

/// The problems of a certification, with an amount above the contract's told in yuan: the
/// subsidy service states that limit in fen, and the registrar typed yuan.
fn in_yuan(problems: Option<&Problems>, typed: &str, contract_amount_fen: i64) -> Option<Problems> {
    let mut out = Problems(problems?.0.clone());
    let above = hundredths(typed).is_some_and(|fen| fen > contract_amount_fen);
    if above && out.get("certified_amount").is_some() {
        out.add(
            "certified_amount",
            &format!(
                "技术交易额不能超过合同额 {}。The technical amount must be at most the contract amount, {}.",
                yuan(contract_amount_fen),
                yuan(contract_amount_fen)
            ),
        );
    }
    Some(out)
}

fn decision(
    session: &Session,
    r: &spb::Registration,
    page_token: &str,
    failed: Option<&Failed>,
) -> Markup {
    let cid = r.contract_id.as_str();
    let mine = failed.filter(|f| f.contract_id == cid);
    let certify = mine.and_then(|f| f.certify.clone()).unwrap_or_default();
    let cp = mine.filter(|f| f.certify.is_some()).map(|f| &f.problems);
    let cp = in_yuan(cp, &certify.certified_amount, r.contract_amount_fen);
    let cp = cp.as_ref();
    let refuse = mine.and_then(|f| f.refuse.clone()).unwrap_or_default();
    let rp = mine.filter(|f| f.refuse.is_some()).map(|f| &f.problems);
    let chosen = certify
        .contract_type
        .parse::<i32>()
        .unwrap_or(r.declared_contract_type);
    let (no_bad, no_why) = invalid(cid, "registration_no", cp);
    let (type_bad, type_why) = invalid(cid, "contract_type", cp);
    let (amount_bad, amount_why) = invalid(cid, "certified_amount", cp);
    let (note_bad, note_why) = invalid(cid, "note", cp);
    let (reason_bad, reason_why) = invalid(cid, "reason", rp);
    html! {
        form.certify method="post" action={"/console/registrations/" (urlencode(cid)) "/certify"} data-contract=(cid) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="page_token" value=(page_token);
            @if let Some(p) = cp.and_then(|p| p.get("contract_id")) { div.why role="alert" { (p) } }
            (field(cid, "registration_no", "登记编号 Registration no.", cp, html! {
                input id={"registration_no-" (cid)} type="text" name="registration_no" value=(certify.registration_no)
                    required maxlength="64" aria-required="true" aria-invalid=[no_bad] aria-describedby=[no_why];
            }))
            (field(cid, "contract_type", "认定类型 Statutory type", cp, html! {
                select id={"contract_type-" (cid)} name="contract_type" aria-invalid=[type_bad] aria-describedby=[type_why] {
                    @for t in TYPES {
                        option value=(t as i32) selected[chosen == t as i32] { (contract_type(t as i32)) }
                    }
                }
            }))
            (field(cid, "certified_amount", "技术交易额（元）Technical amount (yuan)", cp, html! {
                input id={"certified_amount-" (cid)} type="text" name="certified_amount" inputmode="decimal"
                    value=(certify.certified_amount) placeholder={"≤ " (yuan_digits(r.contract_amount_fen))}
                    required aria-required="true" aria-invalid=[amount_bad] aria-describedby=[amount_why];
            }))
            (field(cid, "note", "说明 Note (optional)", cp, html! {
                input id={"note-" (cid)} type="text" name="note" value=(certify.note) maxlength="500"
                    aria-invalid=[note_bad] aria-describedby=[note_why];
            }))
            button name="certify" type="submit" { "认定登记 Certify" }
        }
        form.refuse style="margin-top:12px;padding-top:10px;border-top:1px solid #e4e7eb" method="post" action={"/console/registrations/" (urlencode(cid)) "/refuse"} data-contract=(cid) {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="page_token" value=(page_token);
            (field(cid, "reason", "不予登记理由 Why refuse", rp, html! {
                input id={"reason-" (cid)} type="text" name="reason" value=(refuse.reason) required minlength="2" maxlength="500"
                    aria-required="true" aria-invalid=[reason_bad] aria-describedby=[reason_why];
            }))
            button.reject name="refuse" type="submit" { "不予登记 Refuse" }
        }
    }
}

/// Days (rounded down) until `deadline`, or how long ago it passed.
fn remaining(deadline: Option<chrono::DateTime<Utc>>) -> String {
    let Some(d) = deadline else {
        return String::new();
    };
    let days = (d - Utc::now()).num_days();
    if d < Utc::now() {
        "已过期 expired".into()
    } else if days == 0 {
        "今日截止 due today".into()
    } else {
        format!("剩 {days} 天 {days} days left")
    }
}

/// The page of waiting registrations at `page_token`, with `failed` shown in its form.
async fn render(
    state: &AppState,
    session: &Session,
    page_token: &str,
    flash: Option<Markup>,
    failed: Option<Failed>,
    status: StatusCode,
) -> Response {
    let listed = async {
        let request = spb::ListRegistrationsRequest {
            page_size: PAGE_SIZE,
            page_token: page_token.to_string(),
            status: RegistrationStatus::Waiting as i32,
        };
        Ok::<_, ApiError>(
            state
                .upstream
                .registration
                .clone()
                .list_registrations(authed(request, &session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    let listing = match listed {
        Err(e) => refused("无法读取待登记合同 Cannot list registrations", &e),
        Ok(page) => {
            let names = state
                .upstream
                .enterprise_names(
                    &session.token,
                    page.registrations.iter().map(|r| r.enterprise_id.as_str()),
                )
                .await;
            let failed_elsewhere = failed.as_ref().filter(|f| {
                !page
                    .registrations
                    .iter()
                    .any(|r| r.contract_id == f.contract_id)
            });
            html! {
                @if let Some(f) = failed_elsewhere {
                    div.error #error { "合同 " span.mono { (f.contract_id) } " 的登记未保存 was not saved: "
                        @for (field, why) in &f.problems.0 { (field) "：" (why) "。" } }
                }
                table #to-register {
                    thead { tr {
                        th { "合同 Contract" } th { "企业 Enterprise" } th { "供方 Supplier" }
                        th { "产业链 · 地区" } th.num { "合同额 Amount" } th { "签订 Signed" }
                        th { "截止 Deadline (" (ZONE) ")" } th { "认定 Decide" }
                    } }
                    tbody {
                        @for r in &page.registrations {
                            @let deadline = time(r.deadline);
                            tr data-contract=(r.contract_id) {
                                td { strong.mono { (r.contract_no) } div.muted { "申报类型 declared: " (contract_type(r.declared_contract_type)) } div.mono.muted { (r.contract_id) } }
                                td { (enterprise(&names, &r.enterprise_id)) }
                                td { (r.supplier) }
                                td { (r.industry_chain) br; (region_name(&r.region_code).unwrap_or("")) " " span.mono { (r.region_code) } }
                                td.num { (yuan(r.contract_amount_fen)) }
                                td { (local_opt(time(r.signed_at))) }
                                td.deadline { (local_opt(deadline)) br; span.muted { (remaining(deadline)) } }
                                td { (decision(session, r, page_token, failed.as_ref())) }
                            }
                        }
                        @if page.registrations.is_empty() {
                            tr { td colspan="8" .muted #empty { "没有待登记的合同。No contract is waiting for registration." } }
                        }
                    }
                }
                @if !page.next_page_token.is_empty() {
                    p { a #next href={"/console/registrations?page_token=" (urlencode(&page.next_page_token))} { "下一页 Next page →" } }
                }
            }
        }
    };
    let body = html! {
        h1 { "待登记技术合同 Contracts to register" }
        p.muted { "按截止时间排列，最近的在前。认定时确认或更正合同类型，技术交易额为合同额扣除设备、材料等非技术部分。Nearest deadline first. Certifying confirms or corrects the type; the technical amount is the contract amount less equipment, materials and other non-technical parts." }
        @if let Some(f) = flash { (f) }
        @if failed.is_some() {
            div.error #form-error role="alert" { "未保存：请更正标出的字段。Not saved: correct the marked field." }
        }
        (listing)
    };
    let mut response = page_response(session, "合同登记 Registrations", Nav::Registrations, body);
    *response.status_mut() = status;
    response
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let session = match require_role(&state, &headers, REGISTRARS).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let flash = match (q.done.as_deref(), q.id.as_deref()) {
        (Some("certified"), Some(id)) => Some(html! {
            div.flash #flash data-done="certified" { "已认定登记。Certified. " span.mono { (id) } }
        }),
        (Some("refused"), Some(id)) => Some(html! {
            div.flash #flash data-done="refused" { "已不予登记，企业会看到理由。Refused; the enterprise reads the reason. " span.mono { (id) } }
        }),
        _ => None,
    };
    let page_token = q.page_token.unwrap_or_default();
    render(&state, &session, &page_token, flash, None, StatusCode::OK).await
}

/// The session of a registration form's POST: a registrar, and the session's CSRF token.
async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Box<Response>> {
    let session = require_role(state, headers, REGISTRARS).await?;
    check_csrf(state, &session, csrf)?;
    Ok(session)
}

/// After a decision: the list again with a flash, or the refused form with its problems (a
/// refusal that names no field is a page of its own: the decision cannot be made).
async fn answered(
    state: &AppState,
    session: &Session,
    id: String,
    answer: Result<(), ApiError>,
    done: &str,
    page_token: &str,
    failed: impl FnOnce(Problems) -> Failed,
) -> Response {
    match answer {
        Ok(()) => {
            tracing::info!(
                subject = session.caller.subject,
                contract = id,
                done,
                "registration decided"
            );
            see_other(&format!(
                "/console/registrations?done={done}&id={}",
                urlencode(&id)
            ))
        }
        Err(e) if !e.body.field_violations.is_empty() => {
            let status = e.status;
            render(
                state,
                session,
                page_token,
                None,
                Some(failed(Problems::of(&e))),
                status,
            )
            .await
        }
        Err(e) => service_error(session, e),
    }
}

pub async fn certify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CertifyForm>,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let certified_amount_fen = hundredths(&f.certified_amount).ok_or_else(|| {
            ApiError::invalid(
                "certified_amount_fen",
                "请填写技术交易额（元），最多两位小数 a yuan amount, at most two decimals",
            )
        })?;
        let request = spb::CertifyContractRequest {
            contract_id: id.clone(),
            registration_no: f.registration_no.trim().to_string(),
            contract_type: f.contract_type.trim().parse().unwrap_or(0),
            certified_amount_fen,
            note: f.note.trim().to_string(),
        };
        let mut registration = state.upstream.registration.clone();
        registration
            .certify_contract(authed(request, &session.token)?)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    let page_token = f.page_token.clone().unwrap_or_default();
    answered(
        &state,
        &session,
        id.clone(),
        answer,
        "certified",
        &page_token,
        |problems| Failed {
            contract_id: id,
            certify: Some(f),
            refuse: None,
            problems,
        },
    )
    .await
}

pub async fn refuse(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RefuseForm>,
) -> Response {
    let session = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let request = spb::RefuseRegistrationRequest {
            contract_id: id.clone(),
            reason: f.reason.trim().to_string(),
        };
        let mut registration = state.upstream.registration.clone();
        registration
            .refuse_registration(authed(request, &session.token)?)
            .await?;
        Ok::<_, ApiError>(())
    }
    .await;
    let page_token = f.page_token.clone().unwrap_or_default();
    answered(
        &state,
        &session,
        id.clone(),
        answer,
        "refused",
        &page_token,
        |problems| Failed {
            contract_id: id,
            certify: None,
            refuse: Some(f),
            problems,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(pairs: &[(&str, &str)]) -> Problems {
        let mut p = Problems::default();
        for (field, why) in pairs {
            p.add(field, why);
        }
        p
    }

    #[test]
    fn an_amount_above_the_contract_is_told_in_yuan() {
        let from_service = problems(&[(
            "certified_amount",
            "must be at most the contract amount of 100000 fen (is 100001)",
        )]);
        let shown = in_yuan(Some(&from_service), "1,000.01", 100_000).unwrap();
        let why = shown.get("certified_amount").unwrap();
        assert!(why.contains("1,000.00 元") && !why.contains("fen"), "{why}");
    }

    #[test]
    fn other_problems_keep_the_services_words() {
        let from_service = problems(&[
            ("certified_amount", "must be positive"),
            ("registration_no", "must not be empty"),
        ]);
        // Not above the contract: whatever the service said stands.
        let shown = in_yuan(Some(&from_service), "0", 100_000).unwrap();
        assert_eq!(shown.get("certified_amount"), Some("must be positive"));
        assert_eq!(shown.get("registration_no"), Some("must not be empty"));
        // Above it, but the amount was not what the service refused: nothing is added.
        let only_number = problems(&[("registration_no", "must not be empty")]);
        let shown = in_yuan(Some(&only_number), "2,000", 100_000).unwrap();
        assert_eq!(shown.get("certified_amount"), None);
        assert!(in_yuan(None, "2,000", 100_000).is_none());
    }
}
