//! Registration (技术合同认定登记) over gRPC: registrars list the contracts waiting, certify or
//! refuse them; each decision once, with its event and its audit entry.

use crate::helpers::*;
use chrono::{Duration as Days, Utc};
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::{TestService, authed, outbox_written};
use kechuang_proto::common::ContractType;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::subsidy::registration_service_client::RegistrationServiceClient;
use kechuang_proto::subsidy::{
    CertifyContractRequest, ListAuditEntriesRequest, ListRegistrationsRequest,
    RefuseRegistrationRequest, Registration, RegistrationStatus, VerifyAuditTrailRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

const AMOUNT_FEN: i64 = 10_000_000 * YUAN;
const TECHNICAL_FEN: i64 = 6_000_000 * YUAN;

async fn registrations(svc: &TestService) -> RegistrationServiceClient<Channel> {
    RegistrationServiceClient::new(svc.channel().await)
}

fn registrar(svc: &TestService, name: &str) -> String {
    svc.token(Role::Registrar, name, None)
}

/// A contract of `enterprise` signed yesterday (well within the window).
async fn signed(svc: &TestService, enterprise: &str) -> String {
    let yesterday = Utc::now() - Days::days(1);
    sign_at(
        svc,
        enterprise,
        "420100",
        ContractType::Transfer,
        AMOUNT_FEN,
        yesterday,
    )
    .await
}

fn certification(contract_id: &str, no: &str) -> CertifyContractRequest {
    CertifyContractRequest {
        contract_id: contract_id.into(),
        registration_no: format!("  {no} "),
        contract_type: ContractType::Development as i32,
        certified_amount_fen: TECHNICAL_FEN,
        note: "扣除设备与材料费 4,000,000 元".into(),
    }
}

fn refusal(contract_id: &str, reason: &str) -> RefuseRegistrationRequest {
    RefuseRegistrationRequest {
        contract_id: contract_id.into(),
        reason: reason.into(),
    }
}

async fn list(
    svc: &TestService,
    token: &str,
    status: RegistrationStatus,
) -> Result<Vec<Registration>, Status> {
    registrations(svc)
        .await
        .list_registrations(authed(
            ListRegistrationsRequest {
                page_size: 100,
                page_token: String::new(),
                status: status as i32,
            },
            token,
        ))
        .await
        .map(|r| r.into_inner().registrations)
}

fn ids(list: &[Registration]) -> Vec<&str> {
    list.iter().map(|r| r.contract_id.as_str()).collect()
}

async fn decisions_written(svc: &TestService) -> (i64, i64, i64) {
    let mut conn = svc.pool.acquire().await.unwrap();
    subsidy::store::audit::integrate(&mut conn).await.unwrap();
    let audit: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action LIKE 'registration.%'")
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    (
        outbox_written(&svc.pool, "registration.certified").await,
        outbox_written(&svc.pool, "registration.refused").await,
        audit,
    )
}

#[tokio::test]
async fn a_registrar_lists_waiting_contracts_and_certifies_one_once() {
    let svc = start().await;
    let first = signed(&svc, "e-1").await;
    let second = signed(&svc, "e-2").await;
    let old_signing = Utc::now() - Days::days(31);
    let late = sign_at(
        &svc,
        "e-1",
        "420100",
        ContractType::Service,
        AMOUNT_FEN,
        old_signing,
    )
    .await;
    let zhou = registrar(&svc, "登记员·周");

    let waiting = list(&svc, &zhou, RegistrationStatus::Waiting)
        .await
        .unwrap();
    assert_eq!(
        ids(&waiting),
        [first.as_str(), second.as_str()],
        "the earliest deadline first"
    );
    let shown = waiting.iter().find(|r| r.contract_id == first).unwrap();
    assert_eq!(shown.status, RegistrationStatus::Waiting as i32);
    assert_eq!(shown.contract_no, format!("HT-{first}"));
    assert_eq!(shown.enterprise_id, "e-1");
    assert_eq!(shown.supplier, "华中科技大学");
    assert_eq!(shown.contract_amount_fen, AMOUNT_FEN);
    assert_eq!(shown.declared_contract_type, ContractType::Transfer as i32);
    let signed_at = shown.signed_at.unwrap().seconds;
    assert_eq!(
        shown.deadline.unwrap().seconds - signed_at,
        30 * 86_400,
        "30 days by default"
    );
    assert!(shown.registration_no.is_empty() && shown.registrar.is_empty());
    let expired = list(&svc, &zhou, RegistrationStatus::Expired)
        .await
        .unwrap();
    assert_eq!(ids(&expired), [late.as_str()]);
    assert_eq!(
        list(&svc, &zhou, RegistrationStatus::Unspecified)
            .await
            .unwrap()
            .len(),
        3
    );

    let mut c = registrations(&svc).await;
    let certified = c
        .certify_contract(authed(certification(&first, "2026420100000123"), &zhou))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(certified.status, RegistrationStatus::Certified as i32);
    assert_eq!(certified.registration_no, "2026420100000123", "trimmed");
    assert_eq!(
        certified.contract_type,
        ContractType::Development as i32,
        "the type as corrected"
    );
    assert_eq!(
        certified.declared_contract_type,
        ContractType::Transfer as i32
    );
    assert_eq!(certified.certified_amount_fen, TECHNICAL_FEN);
    assert_eq!(certified.registrar, "登记员·周");
    assert!(certified.decide_time.is_some());

    // The same certification again (a client's retry, even by a colleague): the same answer,
    // nothing written twice.
    for who in [&zhou, &registrar(&svc, "登记员·吴")] {
        let again = c
            .certify_contract(authed(certification(&first, "2026420100000123"), who))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again, certified);
    }
    // Another decision on it is refused.
    let mut other = certification(&first, "2026420100000123");
    other.certified_amount_fen -= 1;
    let status = c.certify_contract(authed(other, &zhou)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let status = c
        .refuse_registration(authed(refusal(&first, "不是技术合同"), &zhou))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(decisions_written(&svc).await, (1, 0, 1));

    let event = svc
        .wait_for_event("registration.certified", |e| e.aggregate_id == first)
        .await;
    let Some(Payload::RegistrationCertified(e)) = event.payload else {
        panic!("{event:?}")
    };
    assert_eq!(e.registrar, "登记员·周");
    assert_eq!(e.enterprise_id, "e-1");
    assert_eq!(e.registration_no, "2026420100000123");
    assert_eq!(
        (e.certified_amount_fen, e.contract_amount_fen),
        (TECHNICAL_FEN, AMOUNT_FEN)
    );
    assert_eq!(event.producer, "subsidy");
    assert_eq!(event.aggregate_version, 2);
    assert_eq!(svc.events_of("registration.certified").await.len(), 1);

    // Audited in the hash chain, by the registrar.
    let mut s = client(&svc).await;
    let auditor = svc.token(Role::Auditor, "审计·孙", None);
    let entries = s
        .list_audit_entries(authed(
            ListAuditEntriesRequest {
                page_size: 100,
                page_token: String::new(),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    let entry = entries
        .iter()
        .find(|e| e.action == "registration.certified")
        .expect("an audit entry");
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.role.as_str(),
            entry.target_id.as_str()
        ),
        ("登记员·周", "registrar", first.as_str())
    );
    assert!(
        entry.details.contains("2026420100000123"),
        "{}",
        entry.details
    );
    let report = s
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &auditor))
        .await
        .unwrap()
        .into_inner();
    assert!(report.intact, "{report:?}");

    // Who reads: registrars, finance and auditors everything; an enterprise its own; others
    // nothing.
    let certified_list = list(&svc, &auditor, RegistrationStatus::Certified)
        .await
        .unwrap();
    assert_eq!(ids(&certified_list), [first.as_str()]);
    for role in [Role::FinanceApprover, Role::FinanceOfficer] {
        let all = list(
            &svc,
            &svc.token(role, "f", None),
            RegistrationStatus::Unspecified,
        )
        .await
        .unwrap();
        assert_eq!(all.len(), 3, "{role:?}");
    }
    let own = list(
        &svc,
        &enterprise_token(&svc, "e-2"),
        RegistrationStatus::Unspecified,
    )
    .await
    .unwrap();
    assert_eq!(ids(&own), [second.as_str()]);
    for role in [Role::TechManager, Role::Supplier] {
        let status = list(
            &svc,
            &svc.token(role, "x", None),
            RegistrationStatus::Waiting,
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{role:?}");
    }
    let bad_status = registrations(&svc)
        .await
        .list_registrations(authed(
            ListRegistrationsRequest {
                page_size: 10,
                page_token: String::new(),
                status: 99,
            },
            &zhou,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_status.code(), Code::InvalidArgument);
    svc.stop().await;
}

#[tokio::test]
async fn listing_pages_through_every_registration_once() {
    let svc = start().await;
    let mut all = Vec::new();
    for _ in 0..5 {
        all.push(signed(&svc, "e-1").await);
    }
    let zhou = registrar(&svc, "登记员·周");
    let mut c = registrations(&svc).await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_registrations(authed(
                ListRegistrationsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    status: RegistrationStatus::Waiting as i32,
                },
                &zhou,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.registrations.len() <= 2);
        seen.extend(page.registrations.into_iter().map(|r| r.contract_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    seen.sort();
    all.sort();
    assert_eq!(seen, all);
    svc.stop().await;
}

#[tokio::test]
async fn a_refusal_needs_a_reason_and_is_final() {
    let svc = start().await;
    let contract = signed(&svc, "e-1").await;
    let zhou = registrar(&svc, "登记员·周");
    let mut c = registrations(&svc).await;
    for blank in ["", "  ", "x", "原因\0"] {
        let status = c
            .refuse_registration(authed(refusal(&contract, blank), &zhou))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{blank:?}");
        assert_eq!(field_violations(&status)[0].0, "reason");
    }
    let refused = c
        .refuse_registration(authed(
            refusal(&contract, " 设备采购合同，不属于技术合同 "),
            &zhou,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.status, RegistrationStatus::Refused as i32);
    assert_eq!(refused.refusal_reason, "设备采购合同，不属于技术合同");
    assert_eq!(refused.registrar, "登记员·周");
    assert!(refused.registration_no.is_empty());
    let again = c
        .refuse_registration(authed(
            refusal(&contract, "设备采购合同，不属于技术合同"),
            &zhou,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, refused, "the same refusal again is answered");
    let status = c
        .certify_contract(authed(certification(&contract, "2026420100000999"), &zhou))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let status = c
        .refuse_registration(authed(refusal(&contract, "另一个理由"), &zhou))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(decisions_written(&svc).await, (0, 1, 1));
    let event = svc
        .wait_for_event("registration.refused", |e| e.aggregate_id == contract)
        .await;
    let Some(Payload::RegistrationRefused(e)) = event.payload else {
        panic!("{event:?}")
    };
    assert_eq!(
        (
            e.registrar.as_str(),
            e.reason.as_str(),
            e.enterprise_id.as_str()
        ),
        ("登记员·周", "设备采购合同，不属于技术合同", "e-1")
    );
    svc.stop().await;
}

#[tokio::test]
async fn bad_certifications_are_refused_whole_and_write_nothing() {
    let svc = start().await;
    let contract = signed(&svc, "e-1").await;
    let taken = signed(&svc, "e-2").await;
    let zhou = registrar(&svc, "登记员·周");
    let mut c = registrations(&svc).await;
    c.certify_contract(authed(certification(&taken, "RG-2026-0001"), &zhou))
        .await
        .unwrap();
    let before = decisions_written(&svc).await;

    let field_of = |status: &Status| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        field_violations(status)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>()
    };
    let mut cases: Vec<(CertifyContractRequest, &str)> = Vec::new();
    let mut r = certification(&contract, "RG-2026-0002");
    r.certified_amount_fen = AMOUNT_FEN + 1;
    cases.push((r, "certified_amount_fen"));
    let mut r = certification(&contract, "RG-2026-0002");
    r.certified_amount_fen = i64::MAX;
    cases.push((r, "certified_amount_fen"));
    let mut r = certification(&contract, "RG-2026-0002");
    r.certified_amount_fen = 0;
    cases.push((r, "certified_amount_fen"));
    cases.push((certification(&contract, "RG\0-2026"), "registration_no"));
    cases.push((certification(&contract, " "), "registration_no"));
    cases.push((certification(&contract, &"9".repeat(65)), "registration_no"));
    let mut r = certification(&contract, "RG-2026-0002");
    r.contract_type = ContractType::Unspecified as i32;
    cases.push((r, "contract_type"));
    let mut r = certification(&contract, "RG-2026-0002");
    r.contract_type = 42;
    cases.push((r, "contract_type"));
    let mut r = certification(&contract, "RG-2026-0002");
    r.note = "备注\0".into();
    cases.push((r, "note"));
    let mut r = certification(&contract, "RG-2026-0002");
    r.contract_id = "c\0".into();
    cases.push((r, "contract_id"));
    // Another contract's number, in another case.
    cases.push((certification(&contract, "rg-2026-0001"), "registration_no"));
    for (request, field) in cases {
        let status = c
            .certify_contract(authed(request.clone(), &zhou))
            .await
            .unwrap_err();
        assert_eq!(field_of(&status), [field], "{request:?}");
    }
    let unknown = c
        .certify_contract(authed(certification("c-nobody-knows", "RG-9"), &zhou))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(decisions_written(&svc).await, before);
    let still = list(&svc, &zhou, RegistrationStatus::Waiting)
        .await
        .unwrap();
    assert_eq!(ids(&still), [contract.as_str()], "still waiting");

    // The window after signing closes: still listed, no longer decided.
    let late = sign_at(
        &svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        AMOUNT_FEN,
        Utc::now() - Days::days(30) - Days::minutes(1),
    )
    .await;
    let closed = c
        .certify_contract(authed(certification(&late, "RG-2026-0003"), &zhou))
        .await
        .unwrap_err();
    assert_eq!(closed.code(), Code::FailedPrecondition);
    assert!(closed.message().contains("window closed"), "{closed:?}");
    let closed = c
        .refuse_registration(authed(refusal(&late, "不是技术合同"), &zhou))
        .await
        .unwrap_err();
    assert_eq!(closed.code(), Code::FailedPrecondition);
    let expired = list(&svc, &zhou, RegistrationStatus::Expired)
        .await
        .unwrap();
    assert_eq!(ids(&expired), [late.as_str()]);
    assert_eq!(decisions_written(&svc).await, before);
    svc.stop().await;
}

#[tokio::test]
async fn only_registrars_decide() {
    let svc = start().await;
    let contract = signed(&svc, "e-1").await;
    let mut c = registrations(&svc).await;
    let outsiders = [
        enterprise_token(&svc, "e-1"),
        approver(&svc, "审批人·钱"),
        officer(&svc, "财政专员·赵"),
        svc.token(Role::Auditor, "审计·孙", None),
        svc.token(Role::TechManager, "技术经理人·李", None),
        svc.token(Role::Service, "bot", None),
        // A registrar who also acts for the contract's enterprise.
        svc.token(Role::Registrar, "内部人", Some("e-1")),
    ];
    for token in &outsiders {
        let status = c
            .certify_contract(authed(certification(&contract, "RG-1"), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        let status = c
            .refuse_registration(authed(refusal(&contract, "不是技术合同"), token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
    // Refused before anything is looked at: bad input and unknown ids answer the same.
    let status = c
        .certify_contract(authed(certification("c-unknown", "\0"), &outsiders[0]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(decisions_written(&svc).await, (0, 0, 0));
    svc.stop().await;
}

#[tokio::test]
async fn concurrent_decisions_on_one_contract_and_one_number_let_exactly_one_win() {
    let svc = start().await;
    let mut contracts = Vec::new();
    for _ in 0..4 {
        contracts.push(signed(&svc, "e-1").await);
    }
    // A certification and a refusal of one contract at once.
    for (k, contract) in contracts[..2].iter().enumerate() {
        let certify = {
            let (mut c, token) = (registrations(&svc).await, registrar(&svc, "登记员·周"));
            let r = certification(contract, &format!("RG-RACE-{k}"));
            tokio::spawn(async move { c.certify_contract(authed(r, &token)).await })
        };
        let refuse = {
            let (mut c, token) = (registrations(&svc).await, registrar(&svc, "登记员·吴"));
            let r = refusal(contract, "不是技术合同");
            tokio::spawn(async move { c.refuse_registration(authed(r, &token)).await })
        };
        let (a, b) = (certify.await.unwrap(), refuse.await.unwrap());
        assert!(a.is_ok() != b.is_ok(), "exactly one wins: {a:?} {b:?}");
        let loser = a.err().or(b.err()).unwrap();
        assert_eq!(loser.code(), Code::FailedPrecondition, "{loser:?}");
    }
    // One number for two contracts at once.
    let mut racers = Vec::new();
    for contract in &contracts[2..] {
        let (mut c, token) = (registrations(&svc).await, registrar(&svc, "登记员·周"));
        let r = certification(contract, "RG-ONE-NUMBER");
        racers.push(tokio::spawn(async move {
            c.certify_contract(authed(r, &token)).await
        }));
    }
    let mut wins = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(_) => wins += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
                assert_eq!(field_violations(&status)[0].0, "registration_no");
            }
        }
    }
    assert_eq!(wins, 1);
    let (certified, refused, audited) = decisions_written(&svc).await;
    assert_eq!(certified + refused, 3, "one event per decided contract");
    assert_eq!(audited, 3);
    svc.stop().await;
}
