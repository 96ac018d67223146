//! The fund's side of a journey: the treasury's top-up and the books an auditor reads.

use crate::{Api, authed, wait_for};
use kechuang_platform::Role;
use kechuang_proto::fund as fpb;

/// The fund every subsidy in these tests draws on (seeded by the subsidy service's policy).
pub const FUND: &str = "fund-default";

/// The treasury tops the fund up by `amount_fen`.
pub async fn top_up(api: &Api, amount_fen: i64, reference: &str) {
    let officer = api.token(Role::FinanceOfficer, "王会计", None);
    api.fund()
        .top_up(authed(
            fpb::TopUpRequest {
                fund_id: FUND.into(),
                amount_fen,
                reference: reference.into(),
            },
            &officer,
        ))
        .await
        .expect("top-up");
}

/// The fund's balances and what `Reconcile` finds wrong with the ledger.
pub async fn audit(api: &Api) -> (fpb::Fund, Vec<String>) {
    let auditor = api.token(Role::Auditor, "孙审计", None);
    let fund = api
        .fund()
        .get_fund(authed(
            fpb::GetFundRequest {
                fund_id: FUND.into(),
            },
            &auditor,
        ))
        .await
        .expect("the fund")
        .into_inner();
    let report = api
        .fund()
        .reconcile(authed(
            fpb::ReconcileRequest {
                fund_id: String::new(),
            },
            &auditor,
        ))
        .await
        .expect("reconcile")
        .into_inner();
    (fund, report.violations)
}

/// Waits until the fund's balances satisfy `settled`; returns them with the reconciliation.
pub async fn audit_once_settled(
    api: &Api,
    settled: impl Fn(&fpb::Fund) -> bool,
) -> (fpb::Fund, Vec<String>) {
    wait_for("the fund to settle", || {
        let settled = &settled;
        async move {
            let (fund, violations) = audit(api).await;
            settled(&fund).then_some((fund, violations))
        }
    })
    .await
}
