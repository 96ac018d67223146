//! The group commit's batch statement, called directly with a batch of several: each
//! submission gets its own answer, in order, and only the written ones leave rows and events.

use crate::helpers::*;
use chrono::{SubsecRound, Utc};
use demand_intake::group_commit;
use demand_intake::store::{self, DemandRow, NewSubmission, RequestKey, Written};
use kechuang_platform::outbox::Relay;
use kechuang_platform::testing::eventually;
use kechuang_platform::{Error, NewEvent, outbox};
use kechuang_proto::events::DemandWithdrawn;
use kechuang_proto::events::envelope::Payload;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn submission(enterprise_id: &str, request_id: Option<&str>) -> NewSubmission {
    let now = Utc::now().trunc_subsecs(6);
    let row = DemandRow {
        id: Uuid::now_v7(),
        enterprise_id: enterprise_id.into(),
        title: "焊缝经常出现气孔".into(),
        description: "焊接产线焊缝经常出现气孔，返修率高。".into(),
        industry_chain: "高端装备".into(),
        contract_type: 1,
        budget_min_fen: 100,
        budget_max_fen: 200,
        region_code: "420100".into(),
        deadline: now + chrono::Duration::days(30),
        status: "submitted".into(),
        version: 1,
        correlation_id: Uuid::now_v7().to_string(),
        created_at: now,
        updated_at: now,
        submitted_by: "li.ming".into(),
    };
    // Any payload will do: the statement stores the envelope as it is given.
    let event = outbox::stage(
        "test",
        NewEvent::new(
            row.id.to_string(),
            1,
            Payload::DemandWithdrawn(DemandWithdrawn::default()),
        ),
    );
    NewSubmission {
        row,
        request: request_id.map(|r| RequestKey {
            request_id: r.into(),
            fingerprint: format!("fp-{r}"),
        }),
        event,
    }
}

#[tokio::test]
async fn a_batch_answers_each_submission_in_order_and_writes_only_the_accepted() {
    let mut g = start().await;
    let (e1, e2) = (g.enterprise(50).await, g.enterprise(51).await);
    g.demand(&e1, "taken").await;
    let ghost = credit_code(52);
    let batch = vec![
        submission(&e1, Some("a")),
        // The same request id twice in one batch: the first claims it.
        submission(&e1, Some("a")),
        submission(&ghost, Some("g")),
        // Request ids are the enterprise's own.
        submission(&e2, Some("a")),
        submission(&e1, None),
        submission(&e1, Some("taken")),
    ];
    let pool = &g.svc.pool;
    // Given back before the service stops: closing its pool waits for every connection.
    let answers = store::insert_submitted(&mut pool.acquire().await.unwrap(), &batch)
        .await
        .unwrap();
    assert_eq!(
        answers,
        [
            Written::Yes,
            Written::RequestIdTaken,
            Written::NoSuchEnterprise,
            Written::Yes,
            Written::Yes,
            Written::RequestIdTaken,
        ]
    );
    let written: Vec<Uuid> = [0, 3, 4].iter().map(|&i| batch[i].row.id).collect();
    let stored: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM demands WHERE id = ANY($1) ORDER BY id")
            .bind(&written)
            .fetch_all(pool)
            .await
            .unwrap();
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(stored, expected);
    assert_eq!(count(pool, "SELECT count(*) FROM demands").await, 4);
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM demands WHERE submitted_by = 'li.ming'"
        )
        .await,
        4
    );
    // The batch's events are of their own type (the earlier demand's is demand.submitted).
    let mut events: Vec<Uuid> =
        sqlx::query_scalar("SELECT aggregate_id::uuid FROM outbox_written WHERE event_type = $1")
            .bind(&batch[0].event.envelope.event_type)
            .fetch_all(pool)
            .await
            .unwrap();
    events.sort();
    assert_eq!(events, expected, "one event per written demand");
    // The request id names the first of the two in the batch.
    let (id, fingerprint) = store::demand_by_request(&mut pool.acquire().await.unwrap(), &e1, "a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((id, fingerprint.as_str()), (batch[0].row.id, "fp-a"));
    g.stop().await;
}

/// A batch whose connection fails mid-statement may or may not have committed: its callers
/// hear so (UNAVAILABLE, resubmit with the request id), and the writer does not write it
/// again, which could have written a demand twice.
#[tokio::test]
async fn a_batch_whose_connection_fails_is_not_written_again() {
    let mut g = start().await;
    let e = g.enterprise(53).await;
    let pool = g.svc.pool.clone();
    // Another transaction claims request id "r" and holds it: a batch claiming it too waits.
    let mut blocker = pool.begin().await.unwrap();
    store::insert_submitted(&mut blocker, &[submission(&e, Some("r"))])
        .await
        .unwrap();

    let (writer, writers) = group_commit::group_commit();
    let batch = [
        submission(&e, Some("r")),
        submission(&e, Some("s")),
        submission(&e, None),
    ];
    let ids: Vec<Uuid> = batch.iter().map(|s| s.row.id).collect();
    let calls: Vec<_> = batch
        .into_iter()
        .map(|s| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.write(s).await })
        })
        .collect();
    // All three queue before the writer starts, so they are one batch.
    eventually(Duration::from_secs(10), "three queued", || async {
        writer.queued() == 3
    })
    .await;
    let handover = Relay::new(
        pool.clone(),
        g.svc.jetstream.clone(),
        g.svc.config.bus.clone(),
        kechuang_platform::testing::event_keys_of(&g.svc.settings, "demand-intake").signer(),
    )
    .handover();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(writers.run(pool.clone(), handover, cancel.clone()));

    let waiting = "SELECT pid FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock'";
    eventually(
        Duration::from_secs(10),
        "the batch waits for the lock",
        || async {
            sqlx::query_scalar::<_, i32>(waiting)
                .fetch_optional(&pool)
                .await
                .unwrap()
                .is_some()
        },
    )
    .await;
    let pid: i32 = sqlx::query_scalar(waiting).fetch_one(&pool).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&pool)
        .await
        .unwrap();

    for call in calls {
        let answer = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("answered without waiting for the blocker")
            .unwrap();
        match answer {
            Err(Error::Unavailable(m)) => assert!(m.contains("request_id"), "{m}"),
            other => panic!("expected UNAVAILABLE, got {other:?}"),
        }
    }
    blocker.rollback().await.unwrap();
    // Nothing of the batch was written, not even the two that did not wait for the lock.
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM demands WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(written, 0);
    // The writer goes on with a new connection, and "r" is free.
    assert_eq!(
        writer.write(submission(&e, Some("r"))).await.unwrap(),
        Written::Yes
    );
    cancel.cancel();
    running.await.unwrap();
    g.stop().await;
}
