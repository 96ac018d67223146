//! Status from other services' events, delivered over the real NATS: forward only, once.

use crate::helpers::*;
use kechuang_platform::NewEvent;
use kechuang_platform::testing::{authed, eventually};
use kechuang_proto::demand::{DemandStatus, WithdrawDemandRequest};
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::events::{
    ContractSigned, PairingAccepted, PairingProposed, PairingRejected, SubsidyDisbursed,
};
use sqlx::PgPool;
use std::time::Duration;
use tonic::Code;

fn proposed(demand_id: &str, pairing: &str, rank: i32) -> NewEvent {
    NewEvent::new(
        pairing,
        1,
        Payload::PairingProposed(PairingProposed {
            pairing_id: pairing.into(),
            demand_id: demand_id.into(),
            rank,
            score: 0.9,
            ..Default::default()
        }),
    )
}

fn accepted(demand_id: &str, pairing: &str) -> NewEvent {
    NewEvent::new(
        pairing,
        2,
        Payload::PairingAccepted(PairingAccepted {
            pairing_id: pairing.into(),
            demand_id: demand_id.into(),
            ..Default::default()
        }),
    )
}

fn signed(demand_id: &str) -> NewEvent {
    NewEvent::new(
        "c-1",
        1,
        Payload::ContractSigned(ContractSigned {
            contract_id: "c-1".into(),
            demand_id: demand_id.into(),
            contract_no: "HT-2026-001".into(),
            amount_fen: 30_000_000,
            ..Default::default()
        }),
    )
}

fn disbursed(demand_id: &str) -> NewEvent {
    NewEvent::new(
        "a-1",
        3,
        Payload::SubsidyDisbursed(SubsidyDisbursed {
            application_id: "a-1".into(),
            demand_id: demand_id.into(),
            amount_fen: 3_000_000,
            ..Default::default()
        }),
    )
}

async fn ignored(pool: &PgPool, demand_id: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT event_type, reason FROM demand_ignored_events WHERE demand_id = $1 ORDER BY received_at, event_type",
    )
    .bind(demand_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn wait_ignored(pool: &PgPool, demand_id: &str, n: usize) -> Vec<(String, String)> {
    eventually(Duration::from_secs(20), "ignored events", || async {
        ignored(pool, demand_id).await.len() >= n
    })
    .await;
    ignored(pool, demand_id).await
}

#[tokio::test]
async fn events_move_a_demand_along_the_chain_and_a_redelivery_changes_nothing() {
    let mut g = start().await;
    let e = g.enterprise(30).await;
    let d = g.verified_demand(&e, "r").await;

    let proposal = g.svc.publish(proposed(&d.id, "p-1", 1)).await;
    let matching = g.wait_for_status(&d.id, DemandStatus::Matching).await;
    let last = matching.history.last().unwrap();
    assert_eq!(last.actor, "pairing.proposed");
    assert_eq!(last.cause_event_id, proposal.event_id);
    assert_eq!(last.note, "pairing p-1 proposed");

    // The same event twice more (past JetStream's duplicate window), a second proposal of the
    // top-k, and a rejected pairing: none moves the demand.
    g.svc.publish_envelope(&proposal).await;
    g.svc.publish_envelope(&proposal).await;
    g.svc.publish(proposed(&d.id, "p-2", 2)).await;
    g.svc
        .publish(NewEvent::new(
            "p-3",
            2,
            Payload::PairingRejected(PairingRejected {
                pairing_id: "p-3".into(),
                demand_id: d.id.clone(),
                ..Default::default()
            }),
        ))
        .await;
    // The pairing consumer handles its subject in stream order: once DOCKING shows, the copies
    // before it have been handled.
    g.svc.publish(accepted(&d.id, "p-1")).await;
    g.wait_for_status(&d.id, DemandStatus::Docking).await;
    g.svc.publish(signed(&d.id)).await;
    g.wait_for_status(&d.id, DemandStatus::Contracted).await;
    g.svc.publish(disbursed(&d.id)).await;
    let done = g.wait_for_status(&d.id, DemandStatus::Completed).await;

    let path: Vec<i32> = done.history.iter().map(|c| c.to_status).collect();
    assert_eq!(
        path,
        [
            DemandStatus::Submitted,
            DemandStatus::Verified,
            DemandStatus::Matching,
            DemandStatus::Docking,
            DemandStatus::Contracted,
            DemandStatus::Completed
        ]
        .map(|s| s as i32)
    );
    // The redelivered copies were recognised by their event id, not even recorded as ignored;
    // the second proposal was recorded as ignored.
    let ignored = ignored(&g.svc.pool, &d.id).await;
    assert_eq!(ignored.len(), 1, "{ignored:?}");
    assert_eq!(ignored[0].0, "pairing.proposed");
    let copies: i64 =
        sqlx::query_scalar("SELECT count(*) FROM processed_events WHERE event_id = $1::uuid")
            .bind(&proposal.event_id)
            .fetch_one(&g.svc.pool)
            .await
            .unwrap();
    assert_eq!(copies, 1);
    g.stop().await;
}

#[tokio::test]
async fn a_later_stage_arriving_first_jumps_forward_and_late_ones_never_move_it_back() {
    let mut g = start().await;
    let e = g.enterprise(31).await;
    let d = g.verified_demand(&e, "r").await;

    g.svc.publish(signed(&d.id)).await;
    let contracted = g.wait_for_status(&d.id, DemandStatus::Contracted).await;
    let last = contracted.history.last().unwrap();
    assert_eq!(
        (last.from_status, last.to_status),
        (
            DemandStatus::Verified as i32,
            DemandStatus::Contracted as i32
        )
    );

    g.svc.publish(proposed(&d.id, "p-1", 1)).await;
    g.svc.publish(accepted(&d.id, "p-1")).await;
    let late = wait_ignored(&g.svc.pool, &d.id, 2).await;
    assert!(
        late.iter().all(|(_, why)| why.contains("contracted")),
        "{late:?}"
    );
    assert_eq!(status_of(&g.get(&d.id).await), DemandStatus::Contracted);

    // Contracted: too late to withdraw.
    let status = g
        .client
        .withdraw_demand(authed(
            WithdrawDemandRequest {
                demand_id: d.id.clone(),
                reason: String::new(),
            },
            &g.enterprise_token(&e),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    g.svc.publish(disbursed(&d.id)).await;
    let done = g.wait_for_status(&d.id, DemandStatus::Completed).await;
    assert_eq!(done.history.len(), 4);
    g.stop().await;
}

#[tokio::test]
async fn withdrawn_and_unverified_demands_are_not_moved_and_unknown_ones_do_not_block() {
    let mut g = start().await;
    let e = g.enterprise(32).await;
    let withdrawn = g.verified_demand(&e, "w").await;
    g.client
        .withdraw_demand(authed(
            WithdrawDemandRequest {
                demand_id: withdrawn.id.clone(),
                reason: "项目取消".into(),
            },
            &g.enterprise_token(&e),
        ))
        .await
        .unwrap();
    let unverified = g.demand(&e, "u").await;
    let unknown = uuid::Uuid::now_v7().to_string();

    g.svc.publish(signed(&withdrawn.id)).await;
    g.svc.publish(proposed(&withdrawn.id, "p-1", 1)).await;
    g.svc.publish(proposed(&unverified.id, "p-2", 1)).await;
    g.svc.publish(proposed(&unknown, "p-3", 1)).await;
    g.svc.publish(proposed("not-a-demand-id", "p-4", 1)).await;

    let w = wait_ignored(&g.svc.pool, &withdrawn.id, 2).await;
    assert!(w.iter().all(|(_, why)| why.contains("withdrawn")), "{w:?}");
    let u = wait_ignored(&g.svc.pool, &unverified.id, 1).await;
    assert!(u[0].1.contains("not been verified"), "{u:?}");
    let x = wait_ignored(&g.svc.pool, &unknown, 1).await;
    assert_eq!(x[0].1, "no such demand");
    wait_ignored(&g.svc.pool, "not-a-demand-id", 1).await;

    assert_eq!(
        status_of(&g.get(&withdrawn.id).await),
        DemandStatus::Withdrawn
    );
    assert_eq!(
        status_of(&g.get(&unverified.id).await),
        DemandStatus::Submitted
    );
    // Nothing was dead-lettered: these are outcomes, not failures.
    let bus = &g.svc.config.bus;
    let stream = g.svc.jetstream.get_stream(&bus.stream_name).await.unwrap();
    let dead = stream
        .get_last_raw_message_by_subject(&bus.dead_letter_subject("demand-intake"))
        .await;
    assert!(dead.is_err(), "dead letter: {dead:?}");
    g.stop().await;
}
