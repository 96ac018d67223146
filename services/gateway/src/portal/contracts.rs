//! Signing the contract of an accepted pairing (签订合同), and recording a payment on it
//! (记录付款), which makes a subsidy application. Each is a page with its form; what the
//! service finds wrong is shown beside the field it names. Times left empty mean now (the
//! services refuse a contract before its acceptance and a payment before its contract).

use super::demand_form::contract_type_options;
use super::{Enterprise, Nav, posted, require, view};
use crate::AppState;
use crate::money::hundredths;
use crate::pages::forms::{Problems, field, invalid, moment, request_id};
use crate::pages::summaries::contract_summary;
use crate::pages::{see_other, service_error};
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kechuang_platform::events::timestamp;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct SignForm {
    csrf: Option<String>,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    contract_no: String,
    #[serde(default)]
    contract_type: String,
    #[serde(default)]
    amount: String,
    signed_at: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct PaymentForm {
    csrf: Option<String>,
    #[serde(default)]
    amount: String,
    paid_at: Option<String>,
    #[serde(default)]
    bank_reference: String,
}

fn input(name: &str, label: &str, value: &str, kind: &str, problems: &Problems) -> Markup {
    let (bad, why) = invalid(name, problems);
    field(
        name,
        label,
        problems,
        html! {
            input id=(name) type=(kind) name=(name) value=(value) step=[(kind == "datetime-local").then_some("1")] aria-invalid=[bad] aria-describedby=[why];
        },
    )
}

/// Re-rendered with 400 when the answer is bad input; otherwise the service's error page.
fn bad_or_error(
    e: &Enterprise,
    err: ApiError,
    again: impl FnOnce(&Problems) -> Response,
) -> Response {
    if err.status == StatusCode::BAD_REQUEST {
        let mut r = again(&Problems::of(&err));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        r.into_response()
    } else {
        service_error(&e.session, err)
    }
}

fn sign_page(e: &Enterprise, pairing: &str, f: &SignForm, problems: &Problems) -> Response {
    let request = if f.request_id.is_empty() {
        request_id("portal-contract")
    } else {
        f.request_id.clone()
    };
    let (bad, why) = invalid("contract_type", problems);
    let body = html! {
        h1 { "签订合同 Sign a contract" }
        p.muted { "配对 Pairing " span.mono { (pairing) } }
        form.card #contract-form method="post" action={"/portal/pairings/" (pairing) "/contract"} novalidate {
            input type="hidden" name="csrf" value=(e.session.csrf);
            input type="hidden" name="request_id" value=(request);
            (input("contract_no", "合同编号 Contract number（技术合同登记号 e.g. 鄂技合字2026-001）", &f.contract_no, "text", problems))
            (field("contract_type", "合同类型 Contract type", problems, html! {
                select #contract_type name="contract_type" aria-invalid=[bad] aria-describedby=[why] { (contract_type_options(f.contract_type.parse().unwrap_or(2))) }
            }))
            (input("amount", "合同金额（元）Amount (yuan)", &f.amount, "text", problems))
            (input("signed_at", "签订时间 Signed at（留空为现在 empty: now）", f.signed_at.as_deref().unwrap_or(""), "datetime-local", problems))
            button #sign-contract type="submit" { "签订 Sign" }
        }
    };
    view("签订合同 Sign a contract", &e.session, Nav::Demands, body)
}

pub async fn sign_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pairing): Path<String>,
) -> Response {
    match require(&state, &headers).await {
        Ok(e) => sign_page(&e, &pairing, &SignForm::default(), &Problems::default()),
        Err(r) => *r,
    }
}

impl SignForm {
    fn request(&self, pairing_id: &str) -> Result<mpb::SignContractRequest, ApiError> {
        let amount = hundredths(&self.amount).ok_or_else(|| {
            ApiError::invalid(
                "amount_fen",
                "请填写金额（元）a yuan amount, at most two decimals",
            )
        })?;
        let signed_at = moment(self.signed_at.as_deref())
            .ok_or_else(|| ApiError::invalid("signed_at", "请选择时间 choose a date and time"))?;
        Ok(mpb::SignContractRequest {
            request_id: self.request_id.clone(),
            pairing_id: pairing_id.to_string(),
            contract_no: self.contract_no.trim().to_string(),
            contract_type: self.contract_type.parse().unwrap_or(0),
            amount_fen: amount,
            signed_at: Some(timestamp(signed_at)),
        })
    }
}

pub async fn sign(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pairing): Path<String>,
    Form(f): Form<SignForm>,
) -> Response {
    let e = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let answer = async {
        let request = f.request(&pairing)?;
        let mut matching = state.upstream.matching.clone();
        Ok::<_, ApiError>(
            matching
                .sign_contract(authed(request, &e.session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    match answer {
        Ok(c) => see_other(&format!("/portal/demands/{}?done=signed", c.demand_id)),
        Err(err) => bad_or_error(&e, err, |p| sign_page(&e, &pairing, &f, p)),
    }
}

async fn payment_page(
    state: &AppState,
    e: &Enterprise,
    contract_id: &str,
    f: &PaymentForm,
    problems: &Problems,
) -> Response {
    let contract = match state.upstream.contract(&e.session.token, contract_id).await {
        Ok(c) => c,
        // Another enterprise's contract answers NOT_FOUND, like an unknown one.
        Err(err) => return service_error(&e.session, err),
    };
    let body = html! {
        h1 { "记录付款 Record a payment" }
        div.card { (contract_summary(Some(&contract), contract_id)) }
        form.card #payment-form method="post" action={"/portal/contracts/" (contract_id) "/payment"} novalidate {
            input type="hidden" name="csrf" value=(e.session.csrf);
            (input("amount", "实付金额（元）Amount paid (yuan)", &f.amount, "text", problems))
            (input("paid_at", "付款时间 Paid at（留空为现在 empty: now）", f.paid_at.as_deref().unwrap_or(""), "datetime-local", problems))
            (input("bank_reference", "银行流水号 Bank reference（唯一 unique）", &f.bank_reference, "text", problems))
            button #record-payment type="submit" { "记录 Record" }
            span.muted { " 记录后按政策计算补贴并提交审批。The subsidy is computed under the policy and goes to review." }
        }
    };
    view(
        "记录付款 Record a payment",
        &e.session,
        Nav::Subsidies,
        body,
    )
}

pub async fn payment_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(contract): Path<String>,
) -> Response {
    match require(&state, &headers).await {
        Ok(e) => {
            payment_page(
                &state,
                &e,
                &contract,
                &PaymentForm::default(),
                &Problems::default(),
            )
            .await
        }
        Err(r) => *r,
    }
}

pub async fn pay(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(contract): Path<String>,
    Form(f): Form<PaymentForm>,
) -> Response {
    let e = match posted(&state, &headers, f.csrf.as_deref()).await {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let answer = async {
        let amount = hundredths(&f.amount).ok_or_else(|| {
            ApiError::invalid(
                "amount_fen",
                "请填写金额（元）a yuan amount, at most two decimals",
            )
        })?;
        let paid_at = moment(f.paid_at.as_deref())
            .ok_or_else(|| ApiError::invalid("paid_at", "请选择时间 choose a date and time"))?;
        let request = spb::RecordPaymentRequest {
            contract_id: contract.clone(),
            amount_fen: amount,
            paid_at: Some(timestamp(paid_at)),
            bank_reference: f.bank_reference.trim().to_string(),
        };
        let mut subsidy = state.upstream.subsidy.clone();
        Ok::<_, ApiError>(
            subsidy
                .record_payment(authed(request, &e.session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    match answer {
        Ok(p) => see_other(&format!(
            "/portal/subsidies?done=paid&id={}",
            crate::pages::layout::urlencode(&p.application_id)
        )),
        Err(err) if err.status == StatusCode::BAD_REQUEST => {
            let mut r = payment_page(&state, &e, &contract, &f, &Problems::of(&err)).await;
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
        Err(err) => service_error(&e.session, err),
    }
}
