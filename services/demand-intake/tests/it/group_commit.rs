//! The group commit's batch statement, called directly with a batch of several: each
//! submission gets its own answer, in order, and only the written ones leave rows and events.

use crate::helpers::*;
use chrono::{SubsecRound, Utc};
use demand_intake::store::{self, DemandRow, NewSubmission, RequestKey, Written};
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::events::DemandWithdrawn;
use kechuang_proto::events::envelope::Payload;
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
        actor: "li.ming".into(),
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
        count(pool, "SELECT count(*) FROM demand_status_changes").await,
        4
    );
    // The batch's events are of their own type (the earlier demand's is demand.submitted).
    let mut events: Vec<Uuid> =
        sqlx::query_scalar("SELECT aggregate_id::uuid FROM outbox WHERE event_type = $1")
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
