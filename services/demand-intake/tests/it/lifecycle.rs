use crate::helpers::*;
use kechuang_platform::testing::authed;
use kechuang_proto::demand::{DemandStatus, VerifyDemandRequest, WithdrawDemandRequest};
use kechuang_proto::events::envelope::Payload;
use tonic::Code;

fn verify(demand_id: &str, approve: bool, note: &str) -> VerifyDemandRequest {
    VerifyDemandRequest {
        demand_id: demand_id.into(),
        approve,
        note: note.into(),
    }
}

fn withdraw(demand_id: &str) -> WithdrawDemandRequest {
    WithdrawDemandRequest {
        demand_id: demand_id.into(),
        reason: "已自行解决".into(),
    }
}

#[tokio::test]
async fn verification_carries_the_full_demand_to_matching() {
    let mut g = start().await;
    let e = g.enterprise(20).await;
    let submitted = g.demand(&e, "r").await;
    let verified = g
        .client
        .verify_demand(authed(verify(&submitted.id, true, "需求清晰"), &g.manager))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&verified), DemandStatus::Verified);
    let last = verified.history.last().unwrap();
    assert_eq!(
        (
            last.from_status,
            last.to_status,
            last.actor.as_str(),
            last.note.as_str()
        ),
        (
            DemandStatus::Submitted as i32,
            DemandStatus::Verified as i32,
            "zhang.wei",
            "需求清晰"
        )
    );

    let event = g
        .svc
        .wait_for_event("demand.verified", |ev| ev.aggregate_id == submitted.id)
        .await;
    let submitted_event = g
        .svc
        .wait_for_event("demand.submitted", |ev| ev.aggregate_id == submitted.id)
        .await;
    assert_eq!(event.aggregate_version, 2);
    // The verification continues the chain the submission started.
    assert_eq!(event.correlation_id, submitted_event.correlation_id);
    let (Some(Payload::DemandVerified(v)), Some(Payload::DemandSubmitted(s))) =
        (event.payload, submitted_event.payload)
    else {
        panic!("payloads")
    };
    assert_eq!(v.demand, s.demand, "matching gets every detail it needs");
    assert_eq!(v.verified_by, "zhang.wei");

    // Only once: a verified demand is no longer awaiting verification.
    let status = g
        .client
        .verify_demand(authed(verify(&submitted.id, false, "再看看"), &g.manager))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    g.stop().await;
}

#[tokio::test]
async fn a_rejection_needs_a_note_and_tells_the_enterprise_why() {
    let mut g = start().await;
    let e = g.enterprise(21).await;
    let d = g.demand(&e, "r").await;
    let status = g
        .client
        .verify_demand(authed(verify(&d.id, false, ""), &g.manager))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), vec!["note"]);
    assert_eq!(status_of(&g.get(&d.id).await), DemandStatus::Submitted);

    let rejected = g
        .client
        .verify_demand(authed(
            verify(&d.id, false, "描述不清，请补充工况"),
            &g.manager,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&rejected), DemandStatus::Rejected);
    let event = g
        .svc
        .wait_for_event("demand.rejected", |ev| ev.aggregate_id == d.id)
        .await;
    let Some(Payload::DemandRejected(r)) = event.payload else {
        panic!("payload")
    };
    assert_eq!(
        (r.note.as_str(), r.enterprise_id.as_str()),
        ("描述不清，请补充工况", e.as_str())
    );

    // Rejected is final.
    let status = g
        .client
        .withdraw_demand(authed(withdraw(&d.id), &g.enterprise_token(&e)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    g.stop().await;
}

#[tokio::test]
async fn the_owner_withdraws_before_the_contract() {
    let mut g = start().await;
    let e = g.enterprise(22).await;
    let d = g.verified_demand(&e, "r").await;
    let owner = g.enterprise_token(&e);
    let withdrawn = g
        .client
        .withdraw_demand(authed(withdraw(&d.id), &owner))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&withdrawn), DemandStatus::Withdrawn);
    assert_eq!(withdrawn.history.len(), 3);
    let event = g
        .svc
        .wait_for_event("demand.withdrawn", |ev| ev.aggregate_id == d.id)
        .await;
    assert_eq!(event.aggregate_version, 3);
    let status = g
        .client
        .withdraw_demand(authed(withdraw(&d.id), &owner))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(outbox_count(&g.svc.pool, "demand.withdrawn").await, 1);
    g.stop().await;
}

/// Runs a verification and a withdrawal of one fresh demand at the same time.
async fn race(
    g: &mut Ground,
    e: &str,
    request_id: &str,
    approve: bool,
) -> (
    kechuang_proto::demand::Demand,
    Result<tonic::Response<kechuang_proto::demand::Demand>, tonic::Status>,
    Result<tonic::Response<kechuang_proto::demand::Demand>, tonic::Status>,
) {
    let d = g.demand(e, request_id).await;
    let (mut a, mut b) = (g.client.clone(), g.client.clone());
    let verifying = authed(verify(&d.id, approve, "结论"), &g.manager);
    let withdrawing = authed(withdraw(&d.id), &g.enterprise_token(e));
    let (verified, withdrawn) = tokio::join!(
        tokio::spawn(async move { a.verify_demand(verifying).await }),
        tokio::spawn(async move { b.withdraw_demand(withdrawing).await }),
    );
    (d, verified.unwrap(), withdrawn.unwrap())
}

#[tokio::test]
async fn concurrent_reject_and_withdraw_of_one_demand_exactly_one_wins() {
    let mut g = start().await;
    let e = g.enterprise(23).await;
    for round in 0..6 {
        let (d, rejected, withdrawn) = race(&mut g, &e, &format!("race-{round}"), false).await;
        // Both close the demand: whichever commits first wins, the other finds it closed.
        assert!(
            rejected.is_ok() != withdrawn.is_ok(),
            "round {round}: exactly one wins"
        );
        let loser = rejected
            .as_ref()
            .err()
            .or(withdrawn.as_ref().err())
            .unwrap();
        assert_eq!(loser.code(), Code::FailedPrecondition, "{loser:?}");
        let now = g.get(&d.id).await;
        let expected = if rejected.is_ok() {
            DemandStatus::Rejected
        } else {
            DemandStatus::Withdrawn
        };
        assert_eq!(status_of(&now), expected);
        assert_eq!(now.history.len(), 2);
    }
    let pool = &g.svc.pool;
    assert_eq!(
        outbox_count(pool, "demand.rejected").await + outbox_count(pool, "demand.withdrawn").await,
        6
    );
    g.stop().await;
}

#[tokio::test]
async fn concurrent_approve_and_withdraw_serialise() {
    let mut g = start().await;
    let e = g.enterprise(24).await;
    let mut events = 0;
    for round in 0..6 {
        let (d, verified, withdrawn) = race(&mut g, &e, &format!("race-{round}"), true).await;
        // A verified demand may still be withdrawn, so the withdrawal always wins; the
        // approval wins only if it commits first, and then both moves are in the history.
        let withdrawn = withdrawn.expect("the owner may withdraw before the contract");
        let now = g.get(&d.id).await;
        assert_eq!(status_of(&now), DemandStatus::Withdrawn);
        assert_eq!(now, withdrawn.into_inner());
        let path: Vec<i32> = now.history.iter().map(|c| c.to_status).collect();
        match verified {
            Ok(_) => {
                events += 2;
                assert_eq!(
                    path,
                    [
                        DemandStatus::Submitted,
                        DemandStatus::Verified,
                        DemandStatus::Withdrawn
                    ]
                    .map(|s| s as i32)
                );
            }
            Err(status) => {
                events += 1;
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert_eq!(
                    path,
                    [DemandStatus::Submitted, DemandStatus::Withdrawn].map(|s| s as i32)
                );
            }
        }
    }
    let pool = &g.svc.pool;
    assert_eq!(
        outbox_count(pool, "demand.verified").await + outbox_count(pool, "demand.withdrawn").await,
        events
    );
    g.stop().await;
}
