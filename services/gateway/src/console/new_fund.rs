//! Creating a fund from the dashboard (新建基金): a broker-reward policy, or a new subsidy
//! programme, pays from a fund of its own, and the finance office makes it here rather than
//! over gRPC. The form carries a request id drawn when the page was shown, so a person who
//! clicks twice creates one fund.

use super::fund::{FUND_WRITERS, after_writing};
use super::{Session, posted_session};
use crate::AppState;
use crate::money::hundredths;
use crate::pages::forms::request_id;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use kechuang_proto::fund as fpb;
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct NewFundForm {
    csrf: Option<String>,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    name: String,
    /// The low-balance warning line, in yuan; empty means none.
    #[serde(default)]
    low_balance: String,
}

/// The form, for the roles that may create a fund.
pub fn form(session: &Session) -> Markup {
    html! {
        @if session.caller.has_any(FUND_WRITERS) {
            form.card #new-fund method="post" action="/console/fund/create" {
                h2 { "新建基金 Create a fund" }
                p.muted { "例如技术经纪人奖励资金：奖励政策须指定自己的基金。For example the brokers' reward fund: a reward policy names a fund of its own." }
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="request_id" value=(request_id("fund"));
                label for="new-fund-name" { "名称 Name" }
                input #new-fund-name type="text" name="name" required aria-required="true" maxlength="200";
                label for="new-fund-low-balance" { "余额预警线（元）Low-balance warning (yuan)" }
                input #new-fund-low-balance type="text" name="low_balance" inputmode="decimal" placeholder="0";
                button #new-fund-submit type="submit" { "新建 Create" }
            }
        }
    }
}

/// Creates the fund, then shows its (empty) dashboard, ready for a top-up.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<NewFundForm>,
) -> Response {
    let session = match posted_session(&state, &headers, f.csrf.as_deref()).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let answer = async {
        let low_balance = f.low_balance.trim();
        let low_balance_fen = if low_balance.is_empty() {
            0
        } else {
            hundredths(low_balance).ok_or_else(|| {
                ApiError::invalid(
                    "low_balance_fen",
                    "请填写金额（元），最多两位小数 a yuan amount, at most two decimals",
                )
            })?
        };
        let request = fpb::CreateFundRequest {
            request_id: f.request_id.trim().to_string(),
            name: f.name.trim().to_string(),
            low_balance_fen,
        };
        let mut fund = state.upstream.fund.clone();
        Ok::<_, ApiError>(
            fund.create_fund(authed(request, &session.token)?)
                .await?
                .into_inner(),
        )
    }
    .await;
    after_writing(&session, answer, "created")
}
