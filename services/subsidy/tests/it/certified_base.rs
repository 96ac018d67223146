//! The subsidy follows the certified amount (issue 24 item 2): a payment counts only on a
//! registered contract, up to its pro-rata share of the certified technical amount; payments
//! made before registration wait for it and say why; a refusal or a lapsed window leaves them
//! ineligible; a policy may say it subsidises unregistered contracts too.

use crate::helpers::*;
use kechuang_platform::testing::authed;
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{
    ApplicationStatus, ApproveApplicationRequest, RejectApplicationRequest,
};
use tonic::Code;

const WUHAN: &str = "420100";

#[tokio::test]
async fn ten_million_certified_at_six_paid_in_full_is_subsidised_on_six() {
    let svc = start().await;
    let contract = sign_unregistered(
        &svc,
        "e-full",
        WUHAN,
        ContractType::Development,
        10_000_000 * YUAN,
    )
    .await;
    let (_, waiting) = pay(&svc, "e-full", &contract, 10_000_000 * YUAN).await;
    assert_eq!(
        waiting.status,
        ApplicationStatus::AwaitingRegistration as i32
    );
    assert_eq!((waiting.amount_fen, waiting.eligible_base_fen), (0, 0));
    assert!(
        waiting.status_reason.contains("等待技术合同认定登记"),
        "says why: {}",
        waiting.status_reason
    );
    // Nobody approves it before registration.
    let approve = client(&svc)
        .await
        .approve_application(authed(
            ApproveApplicationRequest {
                id: waiting.id.clone(),
                note: String::new(),
            },
            &approver(&svc, "li"),
        ))
        .await
        .unwrap_err();
    assert_eq!(approve.code(), Code::FailedPrecondition, "{approve:?}");

    certify(&svc, &contract, ContractType::Development, 6_000_000 * YUAN)
        .await
        .unwrap();
    let judged = application(&svc, &waiting.id).await;
    assert_eq!(judged.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(judged.eligible_base_fen, 6_000_000 * YUAN);
    assert_eq!(
        judged.amount_fen,
        600_000 * YUAN,
        "10 % of the certified 6,000,000"
    );
    assert_eq!(
        judged.required_approvals, 2,
        "above 100,000 yuan: four eyes"
    );
    assert!(
        judged.computation[0].contains("认定技术交易额 6,000,000.00 元"),
        "{:?}",
        judged.computation
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_contract_paid_in_parts_around_its_certification_counts_pro_rata() {
    let svc = start().await;
    let contract = sign_unregistered(
        &svc,
        "e-parts",
        WUHAN,
        ContractType::Transfer,
        10_000_000 * YUAN,
    )
    .await;
    // 4,000,000 before registration, certified at 60 %, then 6,000,000 after it.
    let (_, first) = pay(&svc, "e-parts", &contract, 4_000_000 * YUAN).await;
    assert_eq!(first.status, ApplicationStatus::AwaitingRegistration as i32);
    certify(&svc, &contract, ContractType::Transfer, 6_000_000 * YUAN)
        .await
        .unwrap();
    let first = application(&svc, &first.id).await;
    assert_eq!(first.eligible_base_fen, 2_400_000 * YUAN);
    assert_eq!(first.amount_fen, 240_000 * YUAN);
    let (_, second) = pay(&svc, "e-parts", &contract, 6_000_000 * YUAN).await;
    assert_eq!(second.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(second.eligible_base_fen, 3_600_000 * YUAN);
    assert_eq!(second.amount_fen, 360_000 * YUAN);
    svc.stop().await;
}

#[tokio::test]
async fn a_refused_registration_leaves_its_payments_ineligible_with_the_reason() {
    let svc = start().await;
    let contract = sign_unregistered(
        &svc,
        "e-refused",
        WUHAN,
        ContractType::Development,
        1_000_000 * YUAN,
    )
    .await;
    let (_, before) = pay(&svc, "e-refused", &contract, 300_000 * YUAN).await;
    assert_eq!(
        before.status,
        ApplicationStatus::AwaitingRegistration as i32
    );
    refuse(&svc, &contract, "主要为设备采购，不属于技术合同")
        .await
        .unwrap();
    let before = application(&svc, &before.id).await;
    let (_, after) = pay(&svc, "e-refused", &contract, 200_000 * YUAN).await;
    for app in [before, after] {
        assert_eq!(app.status, ApplicationStatus::Ineligible as i32);
        assert_eq!(app.amount_fen, 0);
        assert!(
            app.status_reason.contains("主要为设备采购，不属于技术合同"),
            "{}",
            app.status_reason
        );
    }
    svc.stop().await;
}

#[tokio::test]
async fn a_window_that_closes_undecided_leaves_the_waiting_payments_ineligible() {
    let svc = start().await;
    let contract = sign_unregistered(
        &svc,
        "e-lapsed",
        WUHAN,
        ContractType::Development,
        1_000_000 * YUAN,
    )
    .await;
    let (_, waiting) = pay(&svc, "e-lapsed", &contract, 100_000 * YUAN).await;
    assert_eq!(
        waiting.status,
        ApplicationStatus::AwaitingRegistration as i32
    );
    // The sweep before the deadline leaves it waiting.
    let now = chrono::Utc::now();
    subsidy::judging::sweep_lapsed_registrations(&svc.pool, now)
        .await
        .unwrap();
    assert_eq!(
        application(&svc, &waiting.id).await.status,
        ApplicationStatus::AwaitingRegistration as i32
    );
    // The window's end passes (moved here instead of waiting 30 days).
    sqlx::query("UPDATE registrations SET deadline = $2 WHERE contract_id = $1")
        .bind(&contract)
        .bind(now - chrono::Duration::seconds(1))
        .execute(&svc.pool)
        .await
        .unwrap();
    let judged = subsidy::judging::sweep_lapsed_registrations(&svc.pool, now)
        .await
        .unwrap();
    assert_eq!(judged, 1);
    let lapsed = application(&svc, &waiting.id).await;
    assert_eq!(lapsed.status, ApplicationStatus::Ineligible as i32);
    assert!(
        lapsed.status_reason.contains("登记期限"),
        "{}",
        lapsed.status_reason
    );
    // A payment after the window is ineligible at once, and a second sweep finds nothing.
    let (_, late) = pay(&svc, "e-lapsed", &contract, 100_000 * YUAN).await;
    assert_eq!(late.status, ApplicationStatus::Ineligible as i32);
    assert_eq!(
        subsidy::judging::sweep_lapsed_registrations(&svc.pool, now)
            .await
            .unwrap(),
        0
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_policy_may_say_it_subsidises_unregistered_contracts_too() {
    let svc = start().await;
    let mut request = wuhan("unregistered-too");
    request.subsidise_unregistered = true;
    let proposed = propose(&svc, "officer-zhang", request).await;
    assert!(proposed.subsidise_unregistered);
    approve_policy(&svc, "approver-zhao", &proposed.id)
        .await
        .unwrap();
    let contract = sign_unregistered(
        &svc,
        "e-wuhan",
        WUHAN,
        ContractType::Development,
        1_000_000 * YUAN,
    )
    .await;
    let (_, app) = pay(&svc, "e-wuhan", &contract, 100_000 * YUAN).await;
    assert_eq!(app.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(app.policy_id, proposed.id);
    assert_eq!(app.eligible_base_fen, 100_000 * YUAN, "the whole payment");
    assert_eq!(app.amount_fen, 15_000 * YUAN, "Wuhan's 15 %");
    assert!(
        app.computation[0].contains("亦补贴未登记"),
        "the computation says so: {:?}",
        app.computation
    );
    svc.stop().await;
}

#[tokio::test]
async fn an_application_awaiting_registration_may_be_rejected_but_not_approved() {
    let svc = start().await;
    let contract = sign_unregistered(
        &svc,
        "e-reject",
        WUHAN,
        ContractType::Development,
        1_000_000 * YUAN,
    )
    .await;
    let (_, waiting) = pay(&svc, "e-reject", &contract, 100_000 * YUAN).await;
    let rejected = client(&svc)
        .await
        .reject_application(authed(
            RejectApplicationRequest {
                id: waiting.id.clone(),
                reason: "付款凭证与合同不符".into(),
            },
            &approver(&svc, "li"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.status, ApplicationStatus::Rejected as i32);
    // A certification afterwards leaves the rejection alone.
    certify(&svc, &contract, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    let after = application(&svc, &waiting.id).await;
    assert_eq!(after.status, ApplicationStatus::Rejected as i32);
    assert_eq!(after.amount_fen, 0);
    svc.stop().await;
}

/// Payments racing the certification of their contract: each is judged exactly once, none is
/// left waiting, and the bases add up to the certified share of what was paid.
#[tokio::test]
async fn payments_racing_the_certification_are_each_judged_once() {
    let svc = start().await;
    let contract = sign_unregistered(
        &svc,
        "e-race",
        WUHAN,
        ContractType::Development,
        1_000_000 * YUAN,
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (svc_channel, token) = (svc.channel().await, enterprise_token(&svc, "e-race"));
        let contract = contract.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient::new(
                svc_channel,
            );
            c.record_payment(authed(
                payment(&contract, 10_000 * YUAN + i, &format!("RACE-{i:04}")),
                &token,
            ))
            .await
            .unwrap()
            .into_inner()
        }));
    }
    certify(&svc, &contract, ContractType::Development, 700_000 * YUAN)
        .await
        .unwrap();
    let mut paid = 0;
    let mut bases = 0;
    for t in tasks {
        let p = t.await.unwrap();
        let app = application(&svc, &p.application_id).await;
        assert_eq!(
            app.status,
            ApplicationStatus::PendingReview as i32,
            "judged, not left waiting: {}",
            app.status_reason
        );
        paid += p.amount_fen;
        bases += app.eligible_base_fen;
    }
    assert_eq!(
        bases,
        paid * 7 / 10,
        "70 % of {paid} fen, rounded down once"
    );
    svc.stop().await;
}
