use crate::helpers::*;
use fund_ledger::ledger::{self, Reserved};
use kechuang_proto::events::envelope::Payload;

#[tokio::test]
async fn approved_reserves_then_disbursed_posts() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 10_000_000, "doc-1").await;
    let approval = l
        .svc
        .publish(approved("app-1", DEFAULT_FUND, 3_000_000))
        .await;
    let reserved = wait_for(&l, "fund.reserved", "app-1").await;
    let Some(Payload::FundReserved(r)) = &reserved.payload else {
        unreachable!()
    };
    assert_eq!((r.amount_fen, r.available_fen), (3_000_000, 7_000_000));
    assert_eq!(reserved.causation_id, approval.event_id);
    assert_eq!(reserved.correlation_id, approval.correlation_id);
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (f.available_fen, f.reserved_fen, f.disbursed_fen),
        (7_000_000, 3_000_000, 0)
    );

    l.svc
        .publish(disbursed("app-1", DEFAULT_FUND, 3_000_000))
        .await;
    let posted = wait_for(&l, "fund.posted", "app-1").await;
    let Some(Payload::FundPosted(p)) = &posted.payload else {
        unreachable!()
    };
    assert_eq!(p.pending_id, r.transfer_id);
    assert_eq!(p.amount_fen, 3_000_000);
    assert!(posted.aggregate_version > reserved.aggregate_version);
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (
            f.available_fen,
            f.reserved_fen,
            f.disbursed_fen,
            f.total_fen
        ),
        (7_000_000, 0, 3_000_000, 10_000_000)
    );
    l.assert_reconciles().await;
    l.stop().await;
}

#[tokio::test]
async fn a_failed_disbursement_voids_and_the_money_is_available_again() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 5_000_000, "doc-1").await;
    l.svc
        .publish(approved("app-2", DEFAULT_FUND, 2_000_000))
        .await;
    wait_for(&l, "fund.reserved", "app-2").await;
    l.svc
        .publish(failed("app-2", DEFAULT_FUND, 2_000_000))
        .await;
    let voided = wait_for(&l, "fund.voided", "app-2").await;
    assert!(
        matches!(voided.payload, Some(Payload::FundVoided(ref v)) if v.amount_fen == 2_000_000)
    );
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (f.available_fen, f.reserved_fen, f.disbursed_fen),
        (5_000_000, 0, 0)
    );
    // A disbursement of the voided reservation is refused for good: it pays nothing.
    let mut tx = l.svc.pool.begin().await.unwrap();
    let outcome = ledger::resolve(
        &mut tx,
        fund_ledger::domain::TransferKind::Post,
        "app-2",
        None,
        None,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        matches!(outcome, ledger::Resolved::Refused(_)),
        "{outcome:?}"
    );
    l.assert_reconciles().await;
    l.stop().await;
}

#[tokio::test]
async fn a_short_fund_rejects_with_the_shortfall_and_reserves_nothing() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 1_000_000, "doc-1").await;
    l.svc
        .publish(approved("app-3", DEFAULT_FUND, 1_500_000))
        .await;
    let rejected = wait_for(&l, "fund.reservation_rejected", "app-3").await;
    let Some(Payload::FundReservationRejected(r)) = rejected.payload else {
        unreachable!()
    };
    assert_eq!(
        (r.amount_fen, r.available_fen, r.shortfall_fen),
        (1_500_000, 1_000_000, 500_000)
    );
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!((f.available_fen, f.reserved_fen), (1_000_000, 0));

    // A top-up wakes the waitlist: its event carries the new available balance; the subsidy
    // service approves again and this time the reservation goes through.
    l.top_up(DEFAULT_FUND, 600_000, "doc-2").await;
    l.svc
        .wait_for_event("fund.topped_up", |e| {
            matches!(&e.payload, Some(Payload::FundToppedUp(t)) if t.available_fen == 1_600_000)
        })
        .await;
    l.svc
        .publish(approved("app-3", DEFAULT_FUND, 1_500_000))
        .await;
    wait_for(&l, "fund.reserved", "app-3").await;
    assert_eq!(l.fund(DEFAULT_FUND).await.available_fen, 100_000);

    // An unknown fund is rejected too, naming it.
    l.svc.publish(approved("app-4", "fund-missing", 10)).await;
    let rejected = wait_for(&l, "fund.reservation_rejected", "app-4").await;
    assert!(
        matches!(rejected.payload, Some(Payload::FundReservationRejected(ref r)) if r.reason.contains("fund-missing") && r.shortfall_fen == 10)
    );
    l.assert_reconciles().await;
    l.stop().await;
}

#[tokio::test]
async fn every_event_delivered_twice_moves_money_once() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 10_000_000, "doc-1").await;
    let a1 = l
        .svc
        .publish(approved("app-a", DEFAULT_FUND, 1_000_000))
        .await;
    l.svc.publish_envelope(&a1).await;
    let a2 = l
        .svc
        .publish(approved("app-b", DEFAULT_FUND, 2_000_000))
        .await;
    l.svc.publish_envelope(&a2).await;
    wait_for(&l, "fund.reserved", "app-a").await;
    wait_for(&l, "fund.reserved", "app-b").await;
    let d = l
        .svc
        .publish(disbursed("app-a", DEFAULT_FUND, 1_000_000))
        .await;
    l.svc.publish_envelope(&d).await;
    let f = l
        .svc
        .publish(failed("app-b", DEFAULT_FUND, 2_000_000))
        .await;
    l.svc.publish_envelope(&f).await;
    wait_for(&l, "fund.posted", "app-a").await;
    wait_for(&l, "fund.voided", "app-b").await;
    // A last event, behind every copy in the stream: once it is handled, so are they.
    l.svc.publish(approved("app-z", DEFAULT_FUND, 1)).await;
    wait_for(&l, "fund.reserved", "app-z").await;

    let fund = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (fund.available_fen, fund.reserved_fen, fund.disbursed_fen),
        (8_999_999, 1, 1_000_000)
    );
    assert_eq!(l.emitted("fund.reserved").await, 3);
    assert_eq!(l.emitted("fund.posted").await, 1);
    assert_eq!(l.emitted("fund.voided").await, 1);
    assert_eq!(l.transfer_count().await, 1 + 3 + 2);
    l.assert_reconciles().await;
    l.stop().await;
}

#[tokio::test]
async fn a_post_or_void_that_arrives_before_its_reservation_is_applied_once_it_can_be() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 4_000_000, "doc-1").await;
    l.svc
        .publish(disbursed("app-p", DEFAULT_FUND, 1_000_000))
        .await;
    l.svc
        .publish(failed("app-v", DEFAULT_FUND, 2_000_000))
        .await;
    // Nothing can move yet: both are retried, not dropped.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(l.transfer_count().await, 1);
    l.svc
        .publish(approved("app-p", DEFAULT_FUND, 1_000_000))
        .await;
    l.svc
        .publish(approved("app-v", DEFAULT_FUND, 2_000_000))
        .await;
    wait_for(&l, "fund.posted", "app-p").await;
    wait_for(&l, "fund.voided", "app-v").await;
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (f.available_fen, f.reserved_fen, f.disbursed_fen),
        (3_000_000, 0, 1_000_000)
    );
    assert_eq!(l.transfer_count().await, 5);
    l.assert_reconciles().await;
    l.stop().await;
}

#[tokio::test]
async fn the_low_balance_alarm_fires_once_per_downward_crossing() {
    let l = Ledger::start().await;
    let fund = l.create_fund("十堰市专项资金", 1_000).await;
    l.top_up(&fund.id, 5_000, "doc-1").await;
    let reserve = |app: &'static str, amount: i64| {
        let pool = l.svc.pool.clone();
        let fund_id = fund.id.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let r = ledger::reserve(&mut tx, &fund_id, app, amount, None)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            assert!(matches!(r, Reserved::Reserved { .. }), "{r:?}");
        }
    };
    reserve("a1", 3_000).await; // 2,000 left: above
    assert_eq!(l.emitted("fund.low_balance").await, 0);
    reserve("a2", 1_500).await; // 500: crossed
    assert_eq!(l.emitted("fund.low_balance").await, 1);
    reserve("a3", 100).await; // 400: still below, no second alarm
    assert_eq!(l.emitted("fund.low_balance").await, 1);
    l.top_up(&fund.id, 10_000, "doc-2").await; // 10,400: re-armed
    reserve("a4", 10_000).await; // 400: crossed again
    assert_eq!(l.emitted("fund.low_balance").await, 2);
    let alarm = l
        .svc
        .wait_for_event(
            "fund.low_balance",
            |e| matches!(&e.payload, Some(Payload::FundLowBalance(a)) if a.available_fen == 500),
        )
        .await;
    assert!(
        matches!(alarm.payload, Some(Payload::FundLowBalance(ref a)) if a.low_balance_fen == 1_000)
    );
    l.stop().await;
}

#[tokio::test]
async fn a_post_resolves_on_the_fund_holding_its_reservation_whatever_fund_its_event_names() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 10_000_000, "doc-default").await;
    let other = l.create_fund("东湖高新区专项", 0).await;
    l.top_up(&other.id, 5_000_000, "doc-other").await;
    l.svc.publish(approved("app-9", &other.id, 2_000_000)).await;
    wait_for(&l, "fund.reserved", "app-9").await;
    // The disbursement names the default fund: the ledger goes by its own reservation.
    l.svc
        .publish(disbursed("app-9", DEFAULT_FUND, 2_000_000))
        .await;
    let posted = wait_for(&l, "fund.posted", "app-9").await;
    let Some(Payload::FundPosted(p)) = &posted.payload else {
        unreachable!()
    };
    assert_eq!(p.fund_id, other.id);
    let held = l.fund(&other.id).await;
    assert_eq!(
        (held.available_fen, held.reserved_fen, held.disbursed_fen),
        (3_000_000, 0, 2_000_000)
    );
    let default = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (
            default.available_fen,
            default.reserved_fen,
            default.disbursed_fen
        ),
        (10_000_000, 0, 0)
    );
    l.assert_reconciles().await;
    l.stop().await;
}
