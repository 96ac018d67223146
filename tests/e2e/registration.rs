//! Registration through the whole platform: a contract signed through matching waits at the
//! registration body (subsidy, from kc.contract.signed); a registrar certifies it, and the
//! certification is on the bus, signed by the subsidy service.

use crate::saga::signed_contract;
use kechuang_e2e::forger::Forger;
use kechuang_e2e::journey::welding::{self, CONTRACT_FEN};
use kechuang_e2e::journey::{audit_once_settled, top_up};
use kechuang_e2e::{TestPlatform, YUAN, authed, wait_for};
use kechuang_platform::Role;
use kechuang_proto::common::ContractType;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::subsidy::{
    ApplicationStatus, CertifyContractRequest, GetMonthlyFiguresRequest, ListRegistrationsRequest,
    RefuseRegistrationRequest, RegistrationStatus,
};

#[tokio::test]
async fn a_contract_signed_through_matching_is_certified_by_a_registrar() {
    let platform = TestPlatform::start().await;
    let api = platform.api();
    welding::publish_catalog(&api).await;
    let contracted = welding::to_contract(&api, "REG000001").await;
    let contract_id = contracted.contract_id.clone();
    let registrar = api.token(Role::Registrar, "登记员·周", None);

    let waiting = wait_for("the contract to wait for registration", || {
        let (api, token, id) = (&api, registrar.clone(), contract_id.clone());
        async move {
            let list = api
                .registrations()
                .list_registrations(authed(
                    ListRegistrationsRequest {
                        page_size: 100,
                        page_token: String::new(),
                        status: RegistrationStatus::Waiting as i32,
                    },
                    &token,
                ))
                .await
                .expect("a registrar lists")
                .into_inner();
            list.registrations.into_iter().find(|r| r.contract_id == id)
        }
    })
    .await;
    assert_eq!(waiting.contract_no, "鄂技合字2026-REG000001");
    assert_eq!(waiting.enterprise_id, contracted.journey.enterprise_id);
    assert_eq!(waiting.contract_amount_fen, CONTRACT_FEN);
    assert_eq!(
        waiting.declared_contract_type,
        ContractType::Transfer as i32
    );

    // 60 % of the contract is technical; the rest is equipment.
    let technical_fen = CONTRACT_FEN / 10 * 6;
    let certified = api
        .registrations()
        .certify_contract(authed(
            CertifyContractRequest {
                contract_id: contract_id.clone(),
                registration_no: "2026420100000001".into(),
                contract_type: ContractType::Transfer as i32,
                certified_amount_fen: technical_fen,
                note: "扣除焊接设备费".into(),
            },
            &registrar,
        ))
        .await
        .expect("the registrar certifies")
        .into_inner();
    assert_eq!(certified.status, RegistrationStatus::Certified as i32);
    assert_eq!(certified.registrar, "登记员·周");

    let forger = Forger::connect(&platform.settings).await;
    let event = wait_for("kc.registration.certified on the bus", || {
        let (forger, id) = (&forger, contract_id.clone());
        async move {
            forger
                .genuine("registration.certified")
                .await
                .into_iter()
                .find(|e| e.aggregate_id == id)
        }
    })
    .await;
    assert_eq!(event.producer, "subsidy");
    let Some(Payload::RegistrationCertified(e)) = event.payload else {
        panic!("{event:?}")
    };
    assert_eq!(
        (
            e.registration_no.as_str(),
            e.certified_amount_fen,
            e.registrar.as_str()
        ),
        ("2026420100000001", technical_fen, "登记员·周")
    );
    assert_eq!(e.enterprise_id, contracted.journey.enterprise_id);

    // The monthly figures count it for Wuhan twice: absorbed (the enterprise, 420100) and
    // exported (the university, 420111, whose region matching put on kc.contract.signed).
    let china = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let month =
        |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&china).format("%Y-%m").to_string();
    let now = chrono::Utc::now();
    let figures = api
        .registrations()
        .get_monthly_figures(authed(
            GetMonthlyFiguresRequest {
                from_month: month(now - chrono::Duration::days(1)),
                to_month: month(now),
                region_prefix: String::new(),
            },
            &api.token(Role::Auditor, "审计·孙", None),
        ))
        .await
        .expect("an auditor reads the figures")
        .into_inner();
    let sides: Vec<(&str, i64, i64, i64, i64)> = figures
        .rows
        .iter()
        .map(|r| {
            (
                r.city_code.as_str(),
                r.absorbed_contracts,
                r.absorbed_amount_fen,
                r.exported_contracts,
                r.exported_amount_fen,
            )
        })
        .collect();
    assert_eq!(sides, [("420100", 1, technical_fen, 1, technical_fen)]);
    platform.stop().await;
}

/// Issue 24's done-when: a contract of 10,000,000 yuan certified at 6,000,000 of technical
/// amount, paid in full before its registration, waits; once certified it is subsidised on
/// 6,000,000 (600,000 yuan at 10 %), approved by two people, paid out, and the ledger
/// reconciles. A refused contract on the same platform leaves its payment ineligible with the
/// registrar's reason.
#[tokio::test]
async fn the_subsidy_follows_the_certified_technical_amount() {
    let platform = TestPlatform::start().await;
    let api = platform.api();
    top_up(&api, 2_000_000 * YUAN, "财预〔2026〕24号").await;
    let (journey, contract) = signed_contract(&api, "CERT00001", 10_000_000 * YUAN).await;
    let payment = journey
        .pay(&contract.id, 10_000_000 * YUAN, "BOC-CERT-0001")
        .await;
    let waiting = journey
        .application_in(
            &payment.application_id,
            ApplicationStatus::AwaitingRegistration,
        )
        .await;
    assert!(
        waiting.status_reason.contains("等待技术合同认定登记"),
        "{}",
        waiting.status_reason
    );
    journey
        .certify(&contract.id, ContractType::License, 6_000_000 * YUAN)
        .await;
    let judged = journey
        .application_in(&payment.application_id, ApplicationStatus::PendingReview)
        .await;
    assert_eq!(judged.eligible_base_fen, 6_000_000 * YUAN);
    assert_eq!(judged.amount_fen, 600_000 * YUAN, "10 % of 6,000,000 yuan");
    assert_eq!(judged.required_approvals, 2);
    let li = api.token(Role::FinanceApprover, "李处长", None);
    let zhao = api.token(Role::FinanceApprover, "赵科长", None);
    journey.approve(&judged.id, &li).await;
    journey.approve(&judged.id, &zhao).await;
    journey
        .application_in(&judged.id, ApplicationStatus::Disbursed)
        .await;
    let (fund, violations) = audit_once_settled(&api, |f| f.disbursed_fen == 600_000 * YUAN).await;
    assert!(violations.is_empty(), "{violations:?}");
    assert_eq!(fund.available_fen, 1_400_000 * YUAN);

    // Another enterprise's contract, refused: its payment is ineligible, with the reason.
    let (refused_journey, refused) = signed_contract(&api, "CERT00002", 1_000_000 * YUAN).await;
    let registrar = api.token(Role::Registrar, "登记员·周", None);
    wait_for("the contract to reach the registrar", || {
        let (api, registrar, id) = (&api, registrar.clone(), refused.id.clone());
        async move {
            api.registrations()
                .refuse_registration(authed(
                    RefuseRegistrationRequest {
                        contract_id: id,
                        reason: "合同标的为设备采购，不属于技术合同".into(),
                    },
                    &registrar,
                ))
                .await
                .ok()
        }
    })
    .await;
    let payment = refused_journey
        .pay(&refused.id, 1_000_000 * YUAN, "BOC-CERT-0002")
        .await;
    let ineligible = refused_journey
        .application_in(&payment.application_id, ApplicationStatus::Ineligible)
        .await;
    assert_eq!(ineligible.amount_fen, 0);
    assert!(
        ineligible
            .status_reason
            .contains("合同标的为设备采购，不属于技术合同"),
        "{}",
        ineligible.status_reason
    );
    platform.stop().await;
}
