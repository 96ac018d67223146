//! Who facilitated a deal (issue 24 item 3): the technology manager who verified the demand,
//! or the broker the enterprise names when it accepts; recorded on the pairing, copied onto the
//! contract and carried by kc.pairing.accepted and kc.contract.signed.

use crate::contracts::{paired, respond};
use crate::helpers::*;
use kechuang_platform::error::field_violations;
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{authed, outbox_written, tap_outbox};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::matching::{
    GetContractRequest, PairingStatus, RespondToPairingRequest, SignContractRequest,
};
use tonic::Code;

fn accept_with(pairing_id: &str, broker: &str) -> RespondToPairingRequest {
    RespondToPairingRequest {
        broker: broker.into(),
        ..respond(pairing_id, true)
    }
}

fn contract(pairing_id: &str, no: &str) -> SignContractRequest {
    SignContractRequest {
        request_id: String::new(),
        pairing_id: pairing_id.into(),
        contract_no: no.into(),
        contract_type: ContractType::Transfer as i32,
        amount_fen: 20_000_000,
        signed_at: Some(timestamp(chrono::Utc::now())),
    }
}

#[tokio::test]
async fn the_facilitator_is_the_verifier_unless_the_enterprise_names_a_broker() {
    let svc = start().await;
    // d-1 was verified by "tm.zhao" (helpers::verified).
    let pairings = paired(&svc).await;
    let (first, second) = (&pairings[0], &pairings[1]);
    assert_eq!(
        (first.facilitator.as_str(), first.facilitator_role.as_str()),
        ("", ""),
        "a proposal has no facilitator yet"
    );
    let mut client = matching(&svc).await;

    let by_verifier = client
        .respond_to_pairing(authed(respond(&first.id, true), &enterprise(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            by_verifier.facilitator.as_str(),
            by_verifier.facilitator_role.as_str()
        ),
        ("tm.zhao", "tech_manager")
    );
    let by_broker = client
        .respond_to_pairing(authed(
            accept_with(&second.id, "  经纪人·刘  "),
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_broker.status, PairingStatus::Accepted as i32);
    assert_eq!(
        (
            by_broker.facilitator.as_str(),
            by_broker.facilitator_role.as_str()
        ),
        ("经纪人·刘", "broker"),
        "the broker named, trimmed"
    );
    // Listed as answered.
    let listed = list(&svc, "d-1").await;
    let shown = |id: &str| {
        let p = listed.iter().find(|p| p.id == id).unwrap();
        (p.facilitator.clone(), p.facilitator_role.clone())
    };
    assert_eq!(shown(&first.id), ("tm.zhao".into(), "tech_manager".into()));
    assert_eq!(shown(&second.id), ("经纪人·刘".into(), "broker".into()));

    // The acceptance's event carries it.
    let accepted = svc
        .wait_for_event("pairing.accepted", |e| e.aggregate_id == second.id)
        .await;
    let Some(Payload::PairingAccepted(a)) = accepted.payload else {
        panic!("{accepted:?}")
    };
    assert_eq!(
        (a.facilitator.as_str(), a.facilitator_role.as_str()),
        ("经纪人·刘", "broker")
    );

    // Accepting again: the same broker (as four eyes compares people) is the same answer;
    // another broker, or none where one was named, leaves the facilitator as recorded.
    let again = client
        .respond_to_pairing(authed(
            accept_with(&second.id, "经纪人·刘"),
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (&again.update_time, &again.facilitator),
        (&by_broker.update_time, &by_broker.facilitator),
        "unchanged"
    );
    client
        .respond_to_pairing(authed(respond(&second.id, true), &enterprise(&svc)))
        .await
        .expect("the same acceptance without a broker");
    let other = client
        .respond_to_pairing(authed(
            accept_with(&second.id, "经纪人·王"),
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other:?}");
    let renamed = client
        .respond_to_pairing(authed(
            accept_with(&first.id, "经纪人·王"),
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(renamed.code(), Code::FailedPrecondition, "{renamed:?}");
    assert_eq!(svc.events_of("pairing.accepted").await.len(), 2);

    // The contracts and their kc.contract.signed carry each pairing's facilitator.
    for (pairing, no, want) in [
        (&second.id, "HT-F-1", ("经纪人·刘", "broker")),
        (&first.id, "HT-F-2", ("tm.zhao", "tech_manager")),
    ] {
        let signed = client
            .sign_contract(authed(contract(pairing, no), &enterprise(&svc)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (
                signed.facilitator.as_str(),
                signed.facilitator_role.as_str()
            ),
            want
        );
        let read = client
            .get_contract(authed(
                GetContractRequest {
                    contract_id: signed.id.clone(),
                },
                &svc.token(kechuang_platform::Role::Auditor, "audit", None),
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (read.facilitator.as_str(), read.facilitator_role.as_str()),
            want
        );
        let event = svc
            .wait_for_event("contract.signed", |e| e.aggregate_id == signed.id)
            .await;
        let Some(Payload::ContractSigned(c)) = event.payload else {
            panic!("{event:?}")
        };
        assert_eq!(
            (c.facilitator.as_str(), c.facilitator_role.as_str()),
            want,
            "kc.contract.signed of {no}"
        );
    }
    svc.stop().await;
}

/// The pairing's status, version and facilitator as stored.
async fn stored(svc: &kechuang_platform::testing::TestService, id: &str) -> (i32, i64, String) {
    sqlx::query_as("SELECT status, version, facilitator FROM pairings WHERE id = $1")
        .bind(id)
        .fetch_one(&svc.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_bad_broker_a_broker_on_a_rejection_or_oneself_is_refused_naming_broker() {
    let svc = start().await;
    let pairings = paired(&svc).await;
    let pairing = &pairings[0];
    let before = stored(&svc, &pairing.id).await;
    assert_eq!(before.0, PairingStatus::Proposed as i32);
    tap_outbox(&svc.pool).await;
    let mut client = matching(&svc).await;
    let long = "长".repeat(201);
    // The enterprise token's subject is "li.si": itself, however spelled.
    for (accept, broker, why) in [
        (true, "经纪人\0刘", "a NUL"),
        (true, "经纪人\u{202e}刘", "a bidi override"),
        (true, "经纪人\n刘", "two lines"),
        (true, long.as_str(), "201 characters"),
        (false, "经纪人·刘", "named on a rejection"),
        (true, "li.si", "the caller"),
        (true, "  LI.SI ", "the caller, spelled otherwise"),
    ] {
        let req = RespondToPairingRequest {
            broker: broker.into(),
            ..respond(&pairing.id, accept)
        };
        let refused = client
            .respond_to_pairing(authed(req, &enterprise(&svc)))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{why}: {refused:?}");
        let fields: Vec<String> = field_violations(&refused)
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(fields, ["broker"], "{why}");
    }
    // Nothing changed: still proposed, no answer recorded, no event written.
    assert_eq!(stored(&svc, &pairing.id).await, before);
    let outcomes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pairing_outcomes WHERE pairing_id = $1")
            .bind(&pairing.id)
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    assert_eq!(outcomes, 0);
    for event_type in ["pairing.accepted", "pairing.rejected"] {
        assert_eq!(
            outbox_written(&svc.pool, event_type).await,
            0,
            "{event_type}"
        );
    }
    // A blank broker is no broker: the rejection goes through.
    let rejected = client
        .respond_to_pairing(authed(
            RespondToPairingRequest {
                broker: "   ".into(),
                ..respond(&pairing.id, false)
            },
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.status, PairingStatus::Rejected as i32);
    assert_eq!(
        (
            rejected.facilitator.as_str(),
            rejected.facilitator_role.as_str()
        ),
        ("", "")
    );
    svc.stop().await;
}
