use crate::helpers::*;
use futures::future::BoxFuture;
use kechuang_platform::testing::wait_for;
use kechuang_platform::testing::{TestService, authed, series_value};
use kechuang_platform::{NewEvent, ServiceKind};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::{
    FundReservationRejected, FundReserved, FundToppedUp, envelope::Payload,
};
use kechuang_proto::subsidy::{ApplicationStatus, ApproveApplicationRequest};
use std::sync::Arc;
use subsidy::payout::{PayoutError, PayoutGateway, PayoutOrder};
use subsidy::settlements::{self, Settlement, Settlements};
use subsidy::store::payouts::Payout;
use tokio_util::sync::CancellationToken;

async fn approved(svc: &TestService, amount_fen: i64) -> String {
    approved_for(svc, "e-1", amount_fen).await
}

async fn approved_for(svc: &TestService, enterprise: &str, amount_fen: i64) -> String {
    let contract = sign(
        svc,
        enterprise,
        "420100",
        ContractType::Transfer,
        100_000_000 * YUAN,
    )
    .await;
    let (_, app) = pay(svc, enterprise, &contract, amount_fen).await;
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

/// The ledger answers a busy fund's reservations a batch at a time, and they are applied in
/// groups: every application is paid out once whatever the redeliveries among them, and a
/// reservation that does not fit its application is refused on its own.
#[tokio::test]
async fn reservations_arriving_together_are_each_paid_once_and_a_misfit_alone_is_refused() {
    let svc = start().await;
    let mut apps = Vec::new();
    for i in 0..12 {
        apps.push(approved_for(&svc, &format!("e-{i}"), 500_000 * YUAN).await);
    }
    let (misfit, fitting) = apps.split_last().unwrap();
    let mut answers = Vec::new();
    for app in fitting {
        answers.push(reserved(app, 50_000 * YUAN));
    }
    answers.push(reserved(misfit, 49_999 * YUAN));
    let mut published = Vec::new();
    for answer in answers {
        published.push(svc.publish(answer).await);
    }
    for envelope in &published {
        svc.publish_envelope(envelope).await; // each redelivered
    }
    for app in fitting {
        wait_status(&svc, app, ApplicationStatus::Disbursed).await;
    }
    let disbursed = svc.events_of("subsidy.disbursed").await;
    assert_eq!(disbursed.len(), fitting.len(), "one disbursement each");
    let payouts: Vec<String> =
        sqlx::query_scalar("SELECT application_id FROM payouts ORDER BY application_id")
            .fetch_all(&svc.pool)
            .await
            .unwrap();
    let mut expected = fitting.to_vec();
    expected.sort();
    assert_eq!(payouts, expected, "a payout each, none for the misfit");
    let misfit_app = application(&svc, misfit).await;
    assert_eq!(
        misfit_app.status,
        ApplicationStatus::Approved as i32,
        "a reservation of another amount moves nothing"
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1::uuid")
            .bind(&published.last().unwrap().event_id)
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    assert_eq!(recorded, 0, "the misfit is dead-lettered, not processed");
    svc.stop().await;
}

/// A bank that refuses every transfer.
struct ClosedBank;

impl PayoutGateway for ClosedBank {
    fn pay(&self, _order: &PayoutOrder) -> BoxFuture<'_, Result<String, PayoutError>> {
        Box::pin(async { Err(PayoutError::Refused("account closed".into())) })
    }
}

/// A bank that answers after three seconds: its payout stays in hand meanwhile.
struct SlowBank;

impl PayoutGateway for SlowBank {
    fn pay(&self, order: &PayoutOrder) -> BoxFuture<'_, Result<String, PayoutError>> {
        let reference = format!("SLOW-{}", order.disbursement_id);
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            Ok(reference)
        })
    }
}

/// Outcomes of one payout recorded at the same time, alone and in groups (two workers that
/// both hold it, a retry meeting a late answer): the application is disbursed once, with
/// one reference, one event for the ledger and one audit entry.
#[tokio::test]
async fn outcomes_of_one_payout_recorded_at_once_disburse_it_once() {
    let svc = TestService::start(ServiceKind::Subsidy, |config| {
        subsidy::build_with(config, Arc::new(SlowBank))
    })
    .await;
    let app = approved(&svc, 500_000 * YUAN).await;
    svc.publish(reserved(&app, 50_000 * YUAN)).await;
    let payout: Payout = wait_for("the payout owed", || async {
        sqlx::query_as(
            "SELECT application_id, disbursement_id, enterprise_id, amount_fen, attempts \
             FROM payouts WHERE application_id = $1",
        )
        .bind(&app)
        .fetch_optional(&svc.pool)
        .await
        .unwrap()
    })
    .await;
    let (settlements, queue) = Settlements::new();
    let stop_groups = CancellationToken::new();
    let groups = tokio::spawn(settlements::run(
        svc.pool.clone(),
        queue,
        stop_groups.clone(),
    ));
    let mut racing = tokio::task::JoinSet::new();
    for k in 0..8 {
        let (pool, settlements) = (svc.pool.clone(), settlements.clone());
        let settlement = Settlement {
            payout: payout.clone(),
            outcome: Ok(format!("BANK-{k}")),
        };
        racing.spawn(async move {
            if k % 2 == 0 {
                settlements::settle_alone(&pool, &settlement).await
            } else {
                settlements.settle(&pool, settlement).await
            }
        });
    }
    while let Some(recorded) = racing.join_next().await {
        recorded
            .unwrap()
            .expect("each records or finds it recorded");
    }
    let done = wait_status(&svc, &app, ApplicationStatus::Disbursed).await;
    assert!(
        done.payout_reference.starts_with("BANK-"),
        "{}",
        done.payout_reference
    );
    // The slow bank's own answer comes after, and finds it settled.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let disbursed = svc.events_of("subsidy.disbursed").await;
    assert_eq!(disbursed.len(), 1, "one event for the ledger");
    match &disbursed[0].payload {
        Some(Payload::SubsidyDisbursed(d)) => assert_eq!(d.payout_reference, done.payout_reference),
        other => panic!("{other:?}"),
    }
    let entries: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM audit_log WHERE action = 'application.disbursed' AND target_id = $1) \
              + (SELECT count(*) FROM audit_queue WHERE action = 'application.disbursed' AND target_id = $1)",
    )
    .bind(&app)
    .fetch_one(&svc.pool)
    .await
    .unwrap();
    assert_eq!(entries, 1, "one audit entry");
    stop_groups.cancel();
    groups.await.unwrap();
    svc.stop().await;
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
