use crate::helpers::*;
use kechuang_platform::NewEvent;
use kechuang_proto::events::Envelope;

/// Balances of every fund and the number of transfers.
async fn snapshot(l: &Ledger) -> (Vec<(String, i64, i64)>, i64) {
    let balances = sqlx::query_as("SELECT id, debits_fen, credits_fen FROM accounts ORDER BY id")
        .fetch_all(&l.svc.pool)
        .await
        .unwrap();
    (balances, l.transfer_count().await)
}

#[tokio::test]
async fn replaying_every_event_of_a_finished_scenario_changes_no_balance() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 10_000_000, "doc-1").await;
    let mut sent: Vec<Envelope> = Vec::new();
    for (app, amount) in [
        ("a", 1_000_000),
        ("b", 2_000_000),
        ("c", 3_000_000),
        ("d", 50_000_000),
    ] {
        sent.push(l.svc.publish(approved(app, DEFAULT_FUND, amount)).await);
    }
    wait_for(&l, "fund.reserved", "c").await;
    wait_for(&l, "fund.reservation_rejected", "d").await;
    sent.push(l.svc.publish(disbursed("a", DEFAULT_FUND, 1_000_000)).await);
    sent.push(l.svc.publish(failed("b", DEFAULT_FUND, 2_000_000)).await);
    sent.push(l.svc.publish(disbursed("c", DEFAULT_FUND, 3_000_000)).await);
    wait_for(&l, "fund.posted", "a").await;
    wait_for(&l, "fund.voided", "b").await;
    wait_for(&l, "fund.posted", "c").await;
    let finished = snapshot(&l).await;
    assert_eq!(finished.1, 1 + 3 + 3);

    // Every event again: as redeliveries (same event ids), and as new events asking for the
    // same movements (fresh ids, so only the ledger's deterministic transfer ids stand guard).
    for e in &sent {
        l.svc.publish_envelope(e).await;
        let payload = e.payload.clone().expect("payload");
        l.svc
            .publish(NewEvent::new(
                e.aggregate_id.clone(),
                e.aggregate_version,
                payload,
            ))
            .await;
    }
    l.svc.publish(approved("sentinel", DEFAULT_FUND, 1)).await;
    wait_for(&l, "fund.reserved", "sentinel").await;

    let (mut balances, count) = snapshot(&l).await;
    // Only the sentinel moved: 1 fen available→reserved.
    for (id, debits, credits) in balances.iter_mut() {
        if id == "fund-default:available" {
            *debits -= 1;
        }
        if id == "fund-default:reserved" {
            *credits -= 1;
        }
    }
    assert_eq!((balances, count - 1), finished);
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!(
        (f.available_fen, f.reserved_fen, f.disbursed_fen),
        (6_000_000 - 1, 1, 4_000_000)
    );
    assert_eq!(l.emitted("fund.posted").await, 2);
    assert_eq!(l.emitted("fund.voided").await, 1);
    l.assert_reconciles().await;
    l.stop().await;
}
