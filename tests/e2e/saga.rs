//! The disbursement saga between the finance net and the real fund ledger: a short fund
//! waitlists and a top-up pays; a failed payout voids the reservation and frees the money.

use kechuang_e2e::journey::{Journey, achievement, audit_once_settled, publish, top_up};
use kechuang_e2e::{Api, TestPlatform, YUAN, settings};
use kechuang_platform::Role;
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy::ApplicationStatus;

/// Drives one demand to a signed contract and a recorded, approved payment of `paid_fen`
/// (the contract certified whole); returns the enterprise's journey and the application id.
pub(crate) async fn approved_application(api: &Api, paid_fen: i64) -> (Journey<'_>, String) {
    let (journey, contract) = signed_contract(api, "KHGA00001", paid_fen).await;
    journey
        .certify(&contract.id, ContractType::License, paid_fen)
        .await;
    let payment = journey.pay(&contract.id, paid_fen, "CCB-SAGA-0001").await;
    let approver = api.token(Role::FinanceApprover, "审批人", None);
    journey.approve(&payment.application_id, &approver).await;
    (journey, payment.application_id)
}

/// Drives one demand of the enterprise `seed` (9 characters) to a licence contract of
/// `amount_fen`, signed through matching; the catalog entry is published on first use.
pub(crate) async fn signed_contract<'a>(
    api: &'a Api,
    seed: &str,
    amount_fen: i64,
) -> (Journey<'a>, mpb::Contract) {
    publish(
        api,
        vec![mpb::RegisterAchievementRequest {
            request_id: "saga-ach".into(),
            institution: "武汉理工大学".into(),
            trl: 8,
            transfer_modes: vec![TransferMode::License as i32],
            ..achievement(
                "数据中心液冷与智能温控节能技术",
                "针对机房空调能耗高、PUE偏高的问题，采用液冷与智能温控降低数据中心能耗。",
                &["液冷", "PUE", "节能"],
                "节能环保",
                500_000,
            )
        }],
    )
    .await;
    let journey = Journey::new(api, seed);
    journey.register("武汉云端数据有限公司", "节能环保").await;
    let deadline =
        kechuang_platform::events::timestamp(chrono::Utc::now() + chrono::Duration::days(60));
    let demand = journey
        .submit_verified(dpb::SubmitDemandRequest {
            request_id: format!("saga-demand-{seed}"),
            enterprise_id: String::new(),
            title: "数据中心机房空调电费太高".into(),
            description: "我公司数据中心机房空调电费太高，PUE 长期在 1.8 以上，希望引进节能技术。"
                .into(),
            industry_chain: "节能环保".into(),
            contract_type: ContractType::License as i32,
            budget_min_fen: 100_000 * YUAN,
            budget_max_fen: 1_000_000 * YUAN,
            region_code: "420100".into(),
            deadline: Some(deadline),
        })
        .await;
    let best = journey.pairings(&demand.id).await.remove(0);
    journey.accept(&best.id).await;
    let contract = journey
        .sign(mpb::SignContractRequest {
            request_id: format!("saga-contract-{seed}"),
            pairing_id: best.id,
            contract_no: format!("鄂技许2026-{seed}"),
            contract_type: ContractType::License as i32,
            amount_fen,
            signed_at: None,
        })
        .await;
    (journey, contract)
}

#[tokio::test]
async fn a_short_fund_waitlists_and_a_top_up_pays() {
    let p = TestPlatform::start().await;
    let api = p.api();
    // The seeded fund starts empty: the approved subsidy (100,000 yuan) must wait.
    let (journey, id) = approved_application(&api, 1_000_000 * YUAN).await;
    let waiting = journey
        .application_in(&id, ApplicationStatus::Waitlisted)
        .await;
    assert!(
        waiting.status_reason.contains("资金不足"),
        "{}",
        waiting.status_reason
    );
    top_up(&api, 500_000 * YUAN, "财预〔2026〕7号").await;
    journey
        .application_in(&id, ApplicationStatus::Disbursed)
        .await;
    let (fund, violations) = audit_once_settled(&api, |f| f.disbursed_fen == 100_000 * YUAN).await;
    assert_eq!((fund.available_fen, fund.reserved_fen), (400_000 * YUAN, 0));
    assert!(violations.is_empty(), "{violations:?}");
    p.stop().await;
}

#[tokio::test]
async fn a_failed_payout_voids_the_reservation_and_frees_the_money() {
    let mut s = settings();
    s.payout_failure_rate = 1.0;
    s.payout_max_attempts = 2;
    let p = TestPlatform::start_with(s).await;
    let api = p.api();
    top_up(&api, 500_000 * YUAN, "财预〔2026〕8号").await;
    let (journey, id) = approved_application(&api, 1_000_000 * YUAN).await;
    let failed = journey
        .application_in(&id, ApplicationStatus::DisbursementFailed)
        .await;
    assert!(
        failed.status_reason.contains("simulated bank"),
        "{}",
        failed.status_reason
    );
    let (fund, violations) = audit_once_settled(&api, |f| {
        f.reserved_fen == 0 && f.available_fen == 500_000 * YUAN
    })
    .await;
    assert_eq!(fund.disbursed_fen, 0, "nothing was paid");
    assert!(violations.is_empty(), "{violations:?}");
    p.stop().await;
}
