//! The audit trail under concurrency: finance actions queue their entries without a lock and
//! one integrator at a time links them into the hash chain.

use crate::helpers::start;
use kechuang_platform::Role;
use kechuang_platform::testing::authed;
use kechuang_proto::subsidy::VerifyAuditTrailRequest;
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use std::collections::HashSet;
use subsidy::store::audit;

#[tokio::test]
async fn concurrent_actions_and_integrators_link_each_committed_entry_exactly_once() {
    let svc = start().await;
    // 40 transactions append at once, every fourth rolls back; four integrators race the
    // appenders and each other (the service's own runs beside them too).
    let appenders = (0..40).map(|i| {
        let pool = svc.pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            let target = format!("t-{i}");
            audit::append(
                &mut tx,
                "tester",
                "finance_officer",
                "test.action",
                &target,
                serde_json::json!({ "i": i }),
            )
            .await
            .unwrap();
            if i % 4 == 3 {
                tx.rollback().await.unwrap();
            } else {
                tx.commit().await.unwrap();
            }
        })
    });
    let integrators = (0..4).map(|_| {
        let pool = svc.pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            for _ in 0..5 {
                audit::integrate(&mut conn).await.unwrap();
            }
        })
    });
    for task in appenders.chain(integrators).collect::<Vec<_>>() {
        task.await.unwrap();
    }
    let entries = {
        let mut conn = svc.pool.acquire().await.unwrap();
        audit::all(&mut conn).await.unwrap()
    };
    subsidy::domain::audit::verify(&entries).expect("the chain links");
    let targets: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "test.action")
        .map(|e| e.target_id.as_str())
        .collect();
    let unique: HashSet<&str> = targets.iter().copied().collect();
    assert_eq!(
        targets.len(),
        unique.len(),
        "no entry linked twice: {targets:?}"
    );
    let expected: HashSet<String> = (0..40)
        .filter(|i| i % 4 != 3)
        .map(|i| format!("t-{i}"))
        .collect();
    let expected: HashSet<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(
        unique, expected,
        "every committed entry and no rolled-back one"
    );
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_queue")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(queued, 0, "reading the trail links what was queued");

    // The RPC reports the same chain.
    let auditor = svc.token(Role::Auditor, "audit", None);
    let report = SubsidyServiceClient::new(svc.channel().await)
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &auditor))
        .await
        .unwrap()
        .into_inner();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entry_count, entries.len() as i64);
    svc.stop().await;
}

#[tokio::test]
async fn a_queued_entry_cannot_be_edited_before_it_is_linked() {
    let svc = start().await;
    let mut tx = svc.pool.begin().await.unwrap();
    audit::append(
        &mut tx,
        "wang",
        "finance_approver",
        "application.approved",
        "a-1",
        serde_json::json!({}),
    )
    .await
    .unwrap();
    let edit = sqlx::query("UPDATE audit_queue SET actor = 'mallory'")
        .execute(&mut *tx)
        .await;
    assert!(edit.is_err(), "the queue refuses edits");
    drop(tx);
    svc.stop().await;
}
