use crate::helpers::*;
use kechuang_platform::Role;
use kechuang_platform::testing::{TestService, authed};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::matching::{
    GetContractRequest, Pairing, PairingStatus, RespondToPairingRequest, SignContractRequest,
};
use tonic::Code;

/// Two achievements paired with one demand of ENTERPRISE.
pub(crate) async fn paired(svc: &TestService) -> Vec<Pairing> {
    register(svc, welding()).await;
    let mut second = welding();
    second.title = "焊接气孔缺陷的超声在线检测与工艺修正".into();
    second.institution = "武汉理工大学".into();
    second.region_code = "420500".into();
    register(svc, second).await;
    let v = svc
        .publish(verified(welding_demand("d-1", ENTERPRISE)))
        .await;
    processed(svc, &v).await;
    let pairings = list(svc, "d-1").await;
    assert!(
        pairings.len() >= 2,
        "both achievements paired: {pairings:?}"
    );
    pairings
}

pub(crate) fn respond(pairing_id: &str, accept: bool) -> RespondToPairingRequest {
    RespondToPairingRequest {
        pairing_id: pairing_id.into(),
        accept,
        note: "已联系".into(),
        broker: String::new(),
    }
}

/// Now, as a signing time: taken once per test after its acceptances, and passed to every
/// `sign` of the test (request ids compare bodies).
fn now() -> prost_types::Timestamp {
    kechuang_platform::events::timestamp(chrono::Utc::now())
}

fn sign(
    pairing_id: &str,
    request_id: &str,
    contract_no: &str,
    at: prost_types::Timestamp,
) -> SignContractRequest {
    SignContractRequest {
        request_id: request_id.into(),
        pairing_id: pairing_id.into(),
        contract_no: contract_no.into(),
        contract_type: ContractType::Transfer as i32,
        amount_fen: 20_000_000,
        signed_at: Some(at),
    }
}

#[tokio::test]
async fn only_the_demands_enterprise_answers_and_signs_on_an_accepted_pairing() {
    let svc = start().await;
    let pairings = paired(&svc).await;
    let (first, second) = (&pairings[0], &pairings[1]);
    let mut client = matching(&svc).await;

    let other = client
        .respond_to_pairing(authed(respond(&first.id, true), &other_enterprise(&svc)))
        .await
        .unwrap_err();
    // Another enterprise's pairing answers as an unknown one.
    assert_eq!(other.code(), Code::NotFound);
    let manager = client
        .respond_to_pairing(authed(
            respond(&first.id, true),
            &svc.token(Role::TechManager, "tm", None),
        ))
        .await
        .unwrap_err();
    assert_eq!(manager.code(), Code::PermissionDenied);
    let missing = client
        .respond_to_pairing(authed(respond("nope", true), &enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // A proposed pairing cannot be signed.
    let early = client
        .sign_contract(authed(
            sign(&first.id, "r-0", "HT-2026-001", now()),
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);

    let accepted = client
        .respond_to_pairing(authed(respond(&first.id, true), &enterprise(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.status, PairingStatus::Accepted as i32);
    let again = client
        .respond_to_pairing(authed(respond(&first.id, true), &enterprise(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status, PairingStatus::Accepted as i32);
    let flip = client
        .respond_to_pairing(authed(respond(&first.id, false), &enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(flip.code(), Code::FailedPrecondition);
    let rejected = client
        .respond_to_pairing(authed(respond(&second.id, false), &enterprise(&svc)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.status, PairingStatus::Rejected as i32);
    svc.wait_for_event("pairing.accepted", |e| e.aggregate_id == first.id)
        .await;
    let r = svc
        .wait_for_event("pairing.rejected", |e| e.aggregate_id == second.id)
        .await;
    let Some(Payload::PairingRejected(r)) = r.payload else {
        panic!()
    };
    assert_eq!(r.note, "已联系");
    assert_eq!(svc.events_of("pairing.accepted").await.len(), 1);

    // Signing: not another enterprise, not a rejected pairing, never in the future.
    let at = now();
    let stranger = client
        .sign_contract(authed(
            sign(&first.id, "r-1", "HT-2026-001", at),
            &other_enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound);
    let on_rejected = client
        .sign_contract(authed(
            sign(&second.id, "r-2", "HT-2026-002", at),
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(on_rejected.code(), Code::FailedPrecondition);
    let mut future = sign(&first.id, "r-3", "HT-2026-001", at);
    future.signed_at = Some(kechuang_platform::events::timestamp(
        chrono::Utc::now() + chrono::Duration::days(1),
    ));
    future.amount_fen = 0;
    let bad = client
        .sign_contract(authed(future, &enterprise(&svc)))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = kechuang_platform::error::field_violations(&bad)
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(fields, ["amount_fen", "signed_at"]);

    let contract = client
        .sign_contract(authed(
            sign(&first.id, "r-4", "HT-2026-001", at),
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    let replay = client
        .sign_contract(authed(
            sign(&first.id, "r-4", "HT-2026-001", at),
            &enterprise(&svc),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(contract.id, replay.id);
    // The same request replayed by another enterprise is not its request: it learns nothing.
    let stolen = client
        .sign_contract(authed(
            sign(&first.id, "r-4", "HT-2026-001", at),
            &other_enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(stolen.code(), Code::NotFound, "{stolen:?}");
    assert_eq!(contract.enterprise_id, ENTERPRISE);
    assert_eq!(contract.region_code, "420100");
    assert_eq!(contract.industry_chain, "高端装备");
    let second_contract = client
        .sign_contract(authed(
            sign(&first.id, "r-5", "HT-2026-009", at),
            &svc.token(Role::Service, "svc", None),
        ))
        .await
        .unwrap_err();
    assert_eq!(second_contract.code(), Code::AlreadyExists);

    let event = svc
        .wait_for_event("contract.signed", |e| e.aggregate_id == contract.id)
        .await;
    let Some(Payload::ContractSigned(c)) = event.payload else {
        panic!()
    };
    assert_eq!(c.enterprise_id, ENTERPRISE);
    assert_eq!(c.amount_fen, 20_000_000);
    assert_eq!(c.contract_type, ContractType::Transfer as i32);
    assert_eq!(c.supplier, contract.supplier);
    assert!(!c.supplier.is_empty() && !c.supplier_region_code.is_empty());
    assert_eq!(
        (c.region_code.as_str(), c.industry_chain.as_str()),
        ("420100", "高端装备")
    );
    assert_eq!(svc.events_of("contract.signed").await.len(), 1);

    let get = |token: String| {
        let mut client = client.clone();
        let id = contract.id.clone();
        async move {
            client
                .get_contract(authed(GetContractRequest { contract_id: id }, &token))
                .await
        }
    };
    assert_eq!(
        get(enterprise(&svc)).await.unwrap().into_inner().id,
        contract.id
    );
    assert!(get(svc.token(Role::Auditor, "a", None)).await.is_ok());
    assert!(
        get(svc.token(Role::FinanceOfficer, "f", None))
            .await
            .is_ok()
    );
    assert_eq!(
        get(other_enterprise(&svc)).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        get(supplier(&svc)).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // A contracted demand receives no more pushed pairings.
    let before = pairing_count(&svc, "d-1").await;
    let mut late = welding();
    late.title = "焊缝气孔返修率高的激光焊接工艺改进".into();
    register(&svc, late).await;
    assert_eq!(pairing_count(&svc, "d-1").await, before);
    svc.stop().await;
}

#[tokio::test]
async fn a_contract_number_is_unique() {
    let svc = start().await;
    let pairings = paired(&svc).await;
    let mut client = matching(&svc).await;
    for p in &pairings[..2] {
        client
            .respond_to_pairing(authed(respond(&p.id, true), &enterprise(&svc)))
            .await
            .unwrap();
    }
    let at = now();
    client
        .sign_contract(authed(
            sign(&pairings[0].id, "", "HT-1", at),
            &enterprise(&svc),
        ))
        .await
        .unwrap();
    let dup = client
        .sign_contract(authed(
            sign(&pairings[1].id, "", "HT-1", at),
            &enterprise(&svc),
        ))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), Code::AlreadyExists);
    svc.stop().await;
}

#[tokio::test]
async fn answers_and_contracts_are_kept_as_labels_at_the_rank_they_were_seen() {
    use matching::engine::outcomes::{ACCEPTED_SQL, accepted_mrr, by_rank};
    let svc = start().await;
    let pairings = paired(&svc).await;
    let (first, second) = (&pairings[0], &pairings[1]);
    let mut client = matching(&svc).await;
    for (p, accept) in [(first, true), (second, false)] {
        client
            .respond_to_pairing(authed(respond(&p.id, accept), &enterprise(&svc)))
            .await
            .expect("answered");
    }
    // Answering again changes no label.
    client
        .respond_to_pairing(authed(respond(&first.id, true), &enterprise(&svc)))
        .await
        .expect("the same answer again");
    let at = now();
    client
        .sign_contract(authed(
            sign(&first.id, "r-label", "HT-LABEL-1", at),
            &enterprise(&svc),
        ))
        .await
        .expect("signed");
    let mut conn = svc.pool.acquire().await.unwrap();
    let outcomes = matching::store::outcomes(&mut conn).await.unwrap();
    drop(conn);
    let ranks = by_rank(&outcomes);
    assert_eq!(
        (
            ranks[0].rank,
            ranks[0].answered,
            ranks[0].accepted,
            ranks[0].contracted
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        (
            ranks[1].rank,
            ranks[1].answered,
            ranks[1].accepted,
            ranks[1].contracted
        ),
        (2, 1, 0, 0)
    );
    assert_eq!(accepted_mrr(&outcomes), Some(1.0));
    // Outcomes across enterprises are for the platform's people, not for an enterprise or a
    // supplier.
    for token in [enterprise(&svc), supplier(&svc)] {
        let refused = client
            .get_pairing_outcomes(authed(
                kechuang_proto::matching::GetPairingOutcomesRequest {},
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied);
    }
    let seen = client
        .get_pairing_outcomes(authed(
            kechuang_proto::matching::GetPairingOutcomesRequest {},
            &svc.token(Role::Auditor, "audit", None),
        ))
        .await
        .expect("an auditor reads the outcomes")
        .into_inner();
    assert_eq!((seen.ranks[0].accepted, seen.answered_demands), (1, 1));
    let accepted: Vec<(String, String, String, String, Vec<String>)> = sqlx::query_as(ACCEPTED_SQL)
        .fetch_all(&svc.pool)
        .await
        .unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].0, "d-1");
    assert!(accepted[0].1.contains("气孔"), "{:?}", accepted[0]);
    svc.stop().await;
}
