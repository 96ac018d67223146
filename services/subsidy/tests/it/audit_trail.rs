//! The audit trail under concurrency: finance actions queue their entries without a lock and
//! one integrator at a time links them into the hash chain. Each link is anchored on the bus,
//! where a trail rewritten in the database no longer matches it.

use crate::helpers::start;
use kechuang_platform::Role;
use kechuang_platform::seal::Signer;
use kechuang_platform::testing::authed;
use kechuang_proto::events::{AuditAnchored, Envelope, envelope::Payload};
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use kechuang_proto::subsidy::{AuditTrailReport, VerifyAuditTrailRequest};
use prost::Message;
use std::collections::HashSet;
use subsidy::domain::audit as trail;
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

    // Every racing pass anchored the head it linked, in its own commit; the passes took turns,
    // and the relay publishes one aggregate's events in order, so the last anchor on the bus
    // is the last head.
    let head = entries.last().unwrap().sequence;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let report = loop {
        let report = verify(&svc).await;
        if report.anchored_sequence == head || std::time::Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(report.intact, "{report:?}");
    assert_eq!(report.anchored_sequence, head, "{report:?}");
    let anchors: Vec<i64> = svc
        .events()
        .await
        .into_iter()
        .filter_map(|e| match e.payload {
            Some(Payload::AuditAnchored(a)) => Some(a.sequence),
            _ => None,
        })
        .collect();
    assert!(
        anchors.windows(2).all(|w| w[0] < w[1]),
        "anchors on the bus in the order linked: {anchors:?}"
    );
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

/// Links `n` test entries into the trail and waits until the head they make is anchored on
/// the bus: the head's sequence.
async fn linked_and_anchored(svc: &kechuang_platform::testing::TestService, n: usize) -> i64 {
    for i in 0..n {
        let mut tx = svc.pool.begin().await.unwrap();
        let target = format!("anchored-{i}");
        audit::append(
            &mut tx,
            "officer-li",
            "finance_officer",
            "test.action",
            &target,
            serde_json::json!({ "amount_fen": 100 * (i + 1) }),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut conn = svc.pool.acquire().await.unwrap();
    audit::integrate(&mut conn).await.unwrap();
    let head = audit::all(&mut conn).await.unwrap().last().unwrap().clone();
    let anchored = svc
        .wait_for_event("audit.anchored", |e| {
            matches!(&e.payload, Some(Payload::AuditAnchored(a)) if a.sequence == head.sequence)
        })
        .await;
    let Some(Payload::AuditAnchored(a)) = anchored.payload else {
        unreachable!()
    };
    assert_eq!(a.hash, head.hash, "the anchor is the head's hash");
    head.sequence
}

async fn verify(svc: &kechuang_platform::testing::TestService) -> AuditTrailReport {
    let auditor = svc.token(Role::Auditor, "auditor-sun", None);
    SubsidyServiceClient::new(svc.channel().await)
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &auditor))
        .await
        .unwrap()
        .into_inner()
}

/// What an owner of the database can do that the chain alone does not catch: edit an entry and
/// recompute every hash after it.
async fn rewrite_from(svc: &kechuang_platform::testing::TestService, sequence: i64) {
    let mut conn = svc.pool.acquire().await.unwrap();
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        .execute(&mut *conn)
        .await
        .unwrap();
    let mut entries = audit::all(&mut conn).await.unwrap();
    let at = (sequence - 1) as usize;
    entries[at].details = r#"{"amount_fen":1}"#.into();
    for i in at..entries.len() {
        let prev = if i == 0 {
            trail::GENESIS.to_string()
        } else {
            entries[i - 1].hash.clone()
        };
        entries[i].prev_hash = prev.clone();
        entries[i].hash = trail::link_hash(&prev, &entries[i]);
        sqlx::query(
            "UPDATE audit_log SET details = $2, prev_hash = $3, hash = $4 WHERE sequence = $1",
        )
        .bind(entries[i].sequence)
        .bind(&entries[i].details)
        .bind(&entries[i].prev_hash)
        .bind(&entries[i].hash)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    trail::verify(&audit::all(&mut conn).await.unwrap()).expect("the rewritten chain links");
}

#[tokio::test]
async fn a_trail_rewritten_or_cut_short_in_the_database_no_longer_matches_its_anchor() {
    let svc = start().await;
    let head = linked_and_anchored(&svc, 3).await;
    let report = verify(&svc).await;
    assert!(report.intact, "{report:?}");
    assert_eq!(report.anchored_sequence, head);

    // Entry 2 edited and every later hash recomputed: the chain links, the anchor does not.
    rewrite_from(&svc, 2).await;
    let report = verify(&svc).await;
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.first_broken_sequence, head);
    assert!(report.problem.contains("rewritten"), "{report:?}");

    // The anchored head deleted: the trail ends before what was anchored.
    sqlx::query("DELETE FROM audit_log WHERE sequence = $1")
        .bind(head)
        .execute(&svc.pool)
        .await
        .unwrap();
    let report = verify(&svc).await;
    assert!(!report.intact, "{report:?}");
    assert_eq!(report.first_broken_sequence, head);
    assert!(report.problem.contains("removed"), "{report:?}");
    assert_eq!(report.anchored_sequence, head);
    svc.stop().await;
}

#[tokio::test]
async fn an_anchor_the_subsidy_service_did_not_sign_is_reported_not_believed() {
    let svc = start().await;
    let head = linked_and_anchored(&svc, 2).await;
    // Someone who may publish on the bus "anchors" a trail of their own: unsigned, then signed
    // by another service's key.
    let mut conn = svc.pool.acquire().await.unwrap();
    let real = audit::all(&mut conn).await.unwrap();
    let forged = Envelope {
        event_id: uuid::Uuid::now_v7().to_string(),
        event_type: "audit.anchored".into(),
        producer: "subsidy".into(),
        aggregate_type: "audit".into(),
        aggregate_id: audit::TRAIL.into(),
        aggregate_version: head + 1,
        payload: Some(Payload::AuditAnchored(AuditAnchored {
            sequence: head,
            hash: real.last().unwrap().hash.clone(),
        })),
        ..Default::default()
    };
    let subject = format!("{}.audit.anchored", svc.config.bus.subject_prefix);
    let body = forged.encode_to_vec();
    svc.publish_raw(&subject, Default::default(), body.clone())
        .await;
    let report = verify(&svc).await;
    assert!(!report.intact, "{report:?}");
    assert!(
        report.problem.contains("not the subsidy service's"),
        "{report:?}"
    );
    assert_eq!(
        report.anchored_sequence, 0,
        "a forged anchor anchors nothing"
    );

    let mut headers = async_nats::HeaderMap::new();
    Signer::generate("fund-ledger").seal(&body, &mut headers);
    svc.publish_raw(&subject, headers, body).await;
    let report = verify(&svc).await;
    assert!(!report.intact, "{report:?}");
    assert!(
        report.problem.contains("not the subsidy service's"),
        "{report:?}"
    );

    // The service's next anchor is believed again.
    let head = linked_and_anchored(&svc, 1).await;
    let report = verify(&svc).await;
    assert!(report.intact, "{report:?}");
    assert_eq!(report.anchored_sequence, head);
    drop(conn);
    svc.stop().await;
}

#[tokio::test]
async fn the_trail_is_checked_the_same_whatever_the_pages_it_is_read_in() {
    let svc = start().await;
    let head = linked_and_anchored(&svc, 6).await;
    let mut conn = svc.pool.acquire().await.unwrap();
    let anchor = trail::Anchor {
        sequence: head,
        hash: audit::all(&mut conn)
            .await
            .unwrap()
            .last()
            .unwrap()
            .hash
            .clone(),
    };
    for size in [1, 2, 3, 1_000] {
        let (count, checked) = audit::check_in_pages(&mut conn, Some(anchor.clone()), size)
            .await
            .unwrap();
        assert_eq!((count, checked), (head, Ok(())), "pages of {size}");
    }
    drop(conn);
    rewrite_from(&svc, 2).await;
    let mut conn = svc.pool.acquire().await.unwrap();
    for size in [1, 2, 3, 1_000] {
        let (count, checked) = audit::check_in_pages(&mut conn, Some(anchor.clone()), size)
            .await
            .unwrap();
        assert_eq!(count, head, "every entry counted, pages of {size}");
        let (sequence, problem) = checked.unwrap_err();
        assert_eq!(sequence, head, "pages of {size}");
        assert!(problem.contains("rewritten"), "{problem}");
    }
    // A link broken early (not re-hashed) is named where it breaks, in any pages.
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE sequence = 3")
        .execute(&mut *conn)
        .await
        .unwrap();
    for size in [1, 2, 1_000] {
        let (count, checked) = audit::check_in_pages(&mut conn, Some(anchor.clone()), size)
            .await
            .unwrap();
        assert_eq!(count, head);
        assert_eq!(checked.unwrap_err().0, 3, "pages of {size}");
    }
    // Stopping closes the pool, which waits for every connection to come back.
    drop(conn);
    svc.stop().await;
}
