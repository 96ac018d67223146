use crate::helpers::*;
use futures::future::BoxFuture;
use kechuang_platform::testing::{TestService, authed, series_value};
use kechuang_platform::{NewEvent, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{
    FundReservationRejected, FundReserved, FundToppedUp, envelope::Payload,
};
use kechuang_proto::subsidy::{ApplicationStatus, ApproveApplicationRequest};
use std::sync::Arc;
use subsidy::payout::{PayoutError, PayoutGateway, PayoutOrder};

async fn approved(svc: &TestService, amount_fen: i64) -> String {
    let contract = sign(
        svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        100_000_000 * YUAN,
    )
    .await;
    let (_, app) = pay(svc, "e-1", &contract, amount_fen).await;
    let mut c = client(svc).await;
    c.approve_application(authed(
        ApproveApplicationRequest {
            id: app.id.clone(),
            note: String::new(),
        },
        &approver(svc, "wang"),
    ))
    .await
    .unwrap();
    svc.wait_for_event("subsidy.approved", |e| e.aggregate_id == app.id)
        .await;
    app.id
}

fn reserved(app: &str, amount_fen: i64) -> NewEvent {
    NewEvent::new(
        "fund-default",
        1,
        Payload::FundReserved(FundReserved {
            fund_id: "fund-default".into(),
            application_id: app.into(),
            transfer_id: format!("reserve:{app}"),
            amount_fen,
            available_fen: 0,
        }),
    )
}

#[tokio::test]
async fn reserved_funds_are_paid_out_once_even_when_the_answer_comes_twice() {
    let svc = start().await;
    let app = approved(&svc, 500_000 * YUAN).await;
    let event = svc.publish(reserved(&app, 50_000 * YUAN)).await;
    svc.publish_envelope(&event).await; // redelivered
    let done = wait_status(&svc, &app, ApplicationStatus::Disbursed).await;
    assert!(done.payout_reference.starts_with("SIMBANK-"));
    let disbursed = svc
        .wait_for_event("subsidy.disbursed", |e| e.aggregate_id == app)
        .await;
    match disbursed.payload {
        Some(Payload::SubsidyDisbursed(d)) => {
            assert_eq!(d.amount_fen, 50_000 * YUAN);
            assert!(
                d.demand_id.starts_with("d-"),
                "carries the demand for demand-intake"
            );
        }
        other => panic!("{other:?}"),
    }
    // A late duplicate after disbursement changes nothing.
    svc.publish_envelope(&event).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(svc.events_of("subsidy.disbursed").await.len(), 1);
    let payouts: i64 = sqlx::query_scalar("SELECT count(*) FROM payouts")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(payouts, 1);
    svc.stop().await;
}

/// A bank that refuses every transfer.
struct ClosedBank;

impl PayoutGateway for ClosedBank {
    fn pay(&self, _order: &PayoutOrder) -> BoxFuture<'_, Result<String, PayoutError>> {
        Box::pin(async { Err(PayoutError::Refused("account closed".into())) })
    }
}

#[tokio::test]
async fn a_refused_payout_fails_the_disbursement_so_the_ledger_can_void() {
    // Counted from the first attempt on (only this test's bank refuses or fails).
    let recorder = kechuang_platform::metrics::install();
    let svc = TestService::start(ServiceKind::Subsidy, |config| {
        subsidy::build_with(config, Arc::new(ClosedBank))
    })
    .await;
    let app = approved(&svc, 500_000 * YUAN).await;
    svc.publish(reserved(&app, 50_000 * YUAN)).await;
    let failed = wait_status(&svc, &app, ApplicationStatus::DisbursementFailed).await;
    assert!(failed.status_reason.contains("account closed"));
    let event = svc
        .wait_for_event("subsidy.disbursement_failed", |e| e.aggregate_id == app)
        .await;
    assert!(
        matches!(event.payload, Some(Payload::SubsidyDisbursementFailed(f)) if f.amount_fen == 50_000 * YUAN)
    );
    let exposition = recorder.render();
    let refused = [("service", "subsidy"), ("result", "refused")];
    assert_eq!(
        series_value(&exposition, subsidy::payout::ATTEMPTS_METRIC, &refused),
        Some(1.0),
        "{exposition}"
    );
    let failures = series_value(&exposition, subsidy::payout::FAILURES_METRIC, &[]);
    assert_eq!(failures, Some(1.0));
    svc.stop().await;
}

#[tokio::test]
async fn a_short_fund_waitlists_and_a_top_up_asks_again_in_approval_order() {
    let svc = start().await;
    let first = approved(&svc, 500_000 * YUAN).await; // 50,000 yuan
    let second = approved(&svc, 200_000 * YUAN).await; // 20,000 yuan
    for app in [&first, &second] {
        svc.publish(NewEvent::new(
            "fund-default",
            1,
            Payload::FundReservationRejected(FundReservationRejected {
                fund_id: "fund-default".into(),
                application_id: app.to_string(),
                amount_fen: 0,
                available_fen: 0,
                shortfall_fen: 1,
                reason: "available is short".into(),
            }),
        ))
        .await;
        wait_status(&svc, app, ApplicationStatus::Waitlisted).await;
    }
    // 60,000 yuan arrives: the first fits, then 10,000 is left and the second does not.
    svc.publish(NewEvent::new(
        "fund-default",
        2,
        Payload::FundToppedUp(FundToppedUp {
            fund_id: "fund-default".into(),
            amount_fen: 60_000 * YUAN,
            reference: "TOPUP-1".into(),
            available_fen: 60_000 * YUAN,
        }),
    ))
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let asked: Vec<String> = svc
            .events_of("subsidy.approved")
            .await
            .into_iter()
            .map(|e| e.aggregate_id)
            .collect();
        if asked.iter().filter(|a| **a == first).count() == 2 {
            assert_eq!(
                asked.iter().filter(|a| **a == second).count(),
                1,
                "the second waits its turn"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no second request for the first application"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // The ledger reserves it: the waitlisted application goes on to be paid.
    svc.publish(reserved(&first, 50_000 * YUAN)).await;
    wait_status(&svc, &first, ApplicationStatus::Disbursed).await;
    assert_eq!(
        application(&svc, &second).await.status,
        ApplicationStatus::Waitlisted as i32
    );
    svc.stop().await;
}
