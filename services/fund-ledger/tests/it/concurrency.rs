use crate::helpers::*;
use fund_ledger::domain::TransferKind;
use fund_ledger::ledger::{self, Reserved, Resolved};
use sqlx::PgPool;

async fn reserve(pool: PgPool, fund_id: String, app: String, amount: i64) -> Reserved {
    // A lost serialization race would surface as an error here; the fund lock means none.
    let mut tx = pool.begin().await.unwrap();
    let outcome = ledger::reserve(&mut tx, &fund_id, &app, amount, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    outcome
}

#[tokio::test]
async fn two_hundred_concurrent_reservations_never_overdraw() {
    let l = Ledger::start().await;
    let fund = l.create_fund("并发测试资金", 0).await;
    l.top_up(&fund.id, 50_000_000, "doc-1").await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            tokio::spawn(reserve(
                l.svc.pool.clone(),
                fund.id.clone(),
                format!("app-{i}"),
                1_000_000,
            ))
        })
        .collect();
    let mut reserved = 0;
    let mut rejected = 0;
    for t in tasks {
        match t.await.unwrap() {
            Reserved::Reserved { .. } => reserved += 1,
            Reserved::Rejected { shortfall, .. } => {
                assert_eq!(shortfall, 1_000_000, "rejected only once the fund is empty");
                rejected += 1;
            }
            Reserved::AlreadyReserved => panic!("every application is new"),
        }
    }
    assert_eq!((reserved, rejected), (50, 150));
    let f = l.fund(&fund.id).await;
    assert_eq!(
        (f.available_fen, f.reserved_fen, f.total_fen),
        (0, 50_000_000, 50_000_000)
    );
    assert_eq!(l.emitted("fund.reserved").await, 50);
    assert_eq!(l.emitted("fund.reservation_rejected").await, 150);
    l.assert_reconciles().await;
    l.stop().await;
}

#[tokio::test]
async fn racing_requests_for_one_application_move_its_money_once() {
    let l = Ledger::start().await;
    l.top_up(DEFAULT_FUND, 10_000_000, "doc-1").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn(reserve(
                l.svc.pool.clone(),
                DEFAULT_FUND.into(),
                "app-1".into(),
                700_000,
            ))
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Reserved::Reserved { .. }))
        .count();
    assert_eq!(fresh, 1);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Reserved::Reserved { .. } | Reserved::AlreadyReserved))
    );

    // A post and a void racing for the same reservation: exactly one of them wins.
    let race: Vec<_> = [
        TransferKind::Post,
        TransferKind::Void,
        TransferKind::Post,
        TransferKind::Void,
    ]
    .into_iter()
    .map(|kind| {
        let pool = l.svc.pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let r = ledger::resolve(&mut tx, kind, "app-1", None, None)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            r
        })
    })
    .collect();
    let mut written = 0;
    for t in race {
        if matches!(t.await.unwrap(), Resolved::Written { .. }) {
            written += 1;
        }
    }
    assert_eq!(written, 1);
    let f = l.fund(DEFAULT_FUND).await;
    assert_eq!(f.reserved_fen, 0);
    assert_eq!(f.available_fen + f.disbursed_fen, 10_000_000);
    assert_eq!(l.transfer_count().await, 3);
    l.assert_reconciles().await;
    l.stop().await;
}
