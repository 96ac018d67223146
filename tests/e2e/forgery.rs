//! An attacker on the bus. Each event that moved money in the review's findings is forged four
//! ways (unsigned, a stranger's key, a genuine service's key posing as the producer or in its
//! own name) against the real services: no fen moves, no status changes, and every one is
//! dead-lettered with its reason. Genuine events replayed change nothing either, and a
//! correctly signed reservation that does not fit its application is refused by the receiver's
//! own records.

use crate::saga::approved_application;
use kechuang_e2e::books::Books;
use kechuang_e2e::forger::{Forger, Forgery};
use kechuang_e2e::journey::{FUND, audit, audit_once_settled, top_up};
use kechuang_e2e::{TestPlatform, YUAN, authed, wait_for};
use kechuang_platform::NewEvent;
use kechuang_platform::events::timestamp;
use kechuang_proto::events::envelope::Payload;
use kechuang_proto::events::{ContractSigned, FundReserved, SubsidyApproved};
use kechuang_proto::subsidy::{self as spb, ApplicationStatus};

const SUBSIDY_FEN: i64 = 100_000 * YUAN;

/// Waits until `service` has dead-lettered `count` messages; returns their errors.
async fn dead_letters(forger: &Forger, service: &str, count: usize) -> Vec<String> {
    wait_for(&format!("{count} dead letters of {service}"), || async {
        let letters = forger.dead_letters(service).await;
        (letters.len() >= count).then_some(letters)
    })
    .await
}

fn assert_refused_as_unauthentic(letters: &[String]) {
    for letter in letters {
        assert!(letter.starts_with("unauthentic event: "), "{letter}");
    }
}

#[tokio::test]
async fn forged_and_replayed_events_move_no_money_and_change_no_status() {
    let p = TestPlatform::start().await;
    let api = p.api();
    let forger = Forger::connect(&p.settings).await;
    // The seeded fund is empty: the approved subsidy waits.
    let (journey, id) = approved_application(&api, 1_000_000 * YUAN).await;
    journey
        .application_in(&id, ApplicationStatus::Waitlisted)
        .await;

    // 1. "The ledger reserved it": a forged kc.fund.reserved for the waitlisted application.
    for how in Forgery::ALL {
        let reserved = Payload::FundReserved(FundReserved {
            fund_id: FUND.into(),
            application_id: id.clone(),
            transfer_id: format!("forged-{how:?}"),
            amount_fen: SUBSIDY_FEN,
            available_fen: 0,
        });
        forger.publish(NewEvent::new(FUND, 99, reserved), how).await;
    }
    let letters = dead_letters(&forger, "subsidy", 4).await;
    assert_refused_as_unauthentic(&letters);
    assert!(
        letters.iter().any(|l| l.contains("unsigned")),
        "{letters:?}"
    );
    assert!(
        letters.iter().any(|l| l.contains("may not emit")),
        "{letters:?}"
    );
    assert_eq!(
        journey.application(&id).await.status,
        ApplicationStatus::Waitlisted as i32,
        "a forged reservation pays nothing out"
    );

    // 2. "The subsidy service approved it": a forged kc.subsidy.approved for an application
    // that does not exist, once the fund has money.
    for how in Forgery::ALL {
        let approved = Payload::SubsidyApproved(SubsidyApproved {
            application_id: format!("forged-app-{how:?}"),
            fund_id: FUND.into(),
            enterprise_id: journey.enterprise_id.clone(),
            contract_id: "forged-contract".into(),
            amount_fen: 300_000 * YUAN,
            approvers: vec!["nobody".into()],
            ..Default::default()
        });
        forger
            .publish(
                NewEvent::new(format!("forged-app-{how:?}"), 3, approved),
                how,
            )
            .await;
    }
    let letters = dead_letters(&forger, "fund-ledger", 4).await;
    assert_refused_as_unauthentic(&letters);

    // 3. "Matching signed it": a forged kc.contract.signed the enterprise then pays under.
    for how in Forgery::ALL {
        let signed = Payload::ContractSigned(ContractSigned {
            contract_id: format!("forged-contract-{how:?}"),
            pairing_id: "forged-pairing".into(),
            demand_id: "forged-demand".into(),
            achievement_id: "forged-achievement".into(),
            enterprise_id: journey.enterprise_id.clone(),
            supplier: "nobody".into(),
            contract_no: "FORGED-1".into(),
            contract_type: kechuang_proto::common::ContractType::License as i32,
            amount_fen: 1_000_000 * YUAN,
            signed_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::days(1))),
            region_code: "420100".into(),
            industry_chain: "节能环保".into(),
            supplier_region_code: "420100".into(),
            facilitator: "forged-broker".into(),
            facilitator_role: "broker".into(),
        });
        forger
            .publish(
                NewEvent::new(format!("forged-contract-{how:?}"), 1, signed),
                how,
            )
            .await;
    }
    let letters = dead_letters(&forger, "subsidy", 8).await;
    assert_refused_as_unauthentic(&letters);
    for how in Forgery::ALL {
        let refused = api
            .subsidy()
            .record_payment(authed(
                spb::RecordPaymentRequest {
                    contract_id: format!("forged-contract-{how:?}"),
                    amount_fen: 1_000_000 * YUAN,
                    paid_at: Some(timestamp(chrono::Utc::now())),
                    bank_reference: format!("FORGED-{how:?}"),
                },
                &journey.enterprise,
            ))
            .await
            .expect_err("no payment under a contract matching never signed");
        assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    }

    // 4. The ledger's own key (leaked, or an insider's), reservations that do not fit the
    // application: the subsidy service checks them against its records and refuses them.
    for (fund_id, amount_fen) in [(FUND, 1), ("another-fund", SUBSIDY_FEN)] {
        let stolen = Payload::FundReserved(FundReserved {
            fund_id: fund_id.into(),
            application_id: id.clone(),
            transfer_id: format!("stolen-key-{fund_id}"),
            amount_fen,
            available_fen: 0,
        });
        forger
            .publish_with_stolen_key(NewEvent::new(fund_id, 100, stolen))
            .await;
    }
    let letters = dead_letters(&forger, "subsidy", 10).await;
    assert!(
        letters
            .iter()
            .any(|l| l.contains("the reservation is of 1 fen")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .any(|l| l.contains("the reservation is on fund \"another-fund\"")),
        "{letters:?}"
    );
    assert_eq!(
        journey.application(&id).await.status,
        ApplicationStatus::Waitlisted as i32,
        "a reservation that does not fit pays nothing out"
    );

    // The genuine flow still works: a top-up pays the waitlisted subsidy, and only it.
    top_up(&api, 500_000 * YUAN, "财预〔2026〕9号").await;
    journey
        .application_in(&id, ApplicationStatus::Disbursed)
        .await;
    let (fund, violations) = audit_once_settled(&api, |f| {
        f.disbursed_fen == SUBSIDY_FEN && f.reserved_fen == 0
    })
    .await;
    assert_eq!(fund.available_fen, 400_000 * YUAN);
    assert!(violations.is_empty(), "{violations:?}");

    // 5. Genuine events replayed past the duplicate window: nothing moves twice.
    let approvals = forger.genuine("subsidy.approved").await;
    let reservations = forger.genuine("fund.reserved").await;
    assert!(!approvals.is_empty() && !reservations.is_empty());
    for envelope in approvals.iter().chain(&reservations) {
        forger.replay(envelope).await;
    }
    let books = Books::open(&p.settings).await;
    books.quiesce().await;
    books.close().await;
    let (fund, violations) = audit(&api).await;
    assert_eq!(
        (fund.available_fen, fund.reserved_fen, fund.disbursed_fen),
        (400_000 * YUAN, 0, SUBSIDY_FEN),
        "replays and forgeries moved nothing"
    );
    assert!(violations.is_empty(), "{violations:?}");
    p.stop().await;
}

/// Every event type of the envelope, forged without a signature: nothing reacts (no service
/// writes an event), and every service that consumes the type dead-letters it.
#[tokio::test]
async fn an_unsigned_event_of_any_type_changes_nothing() {
    use kechuang_proto::EventType;
    use kechuang_proto::events::*;
    let p = TestPlatform::start().await;
    let forger = Forger::connect(&p.settings).await;
    let books = Books::open(&p.settings).await;
    books.quiesce().await;
    let written = books.events_written().await;
    let every_type = [
        Payload::EnterpriseRegistered(Default::default()),
        Payload::DemandSubmitted(Default::default()),
        Payload::DemandVerified(Default::default()),
        Payload::DemandRejected(Default::default()),
        Payload::DemandWithdrawn(Default::default()),
        Payload::AchievementRegistered(Default::default()),
        Payload::PairingProposed(Default::default()),
        Payload::PairingAccepted(Default::default()),
        Payload::PairingRejected(Default::default()),
        Payload::ContractSigned(Default::default()),
        Payload::PolicyCreated(Default::default()),
        Payload::PaymentRecorded(Default::default()),
        Payload::SubsidyApproved(SubsidyApproved {
            application_id: "forged".into(),
            fund_id: FUND.into(),
            amount_fen: 1,
            ..Default::default()
        }),
        Payload::SubsidyRejected(Default::default()),
        Payload::SubsidyDisbursed(Default::default()),
        Payload::SubsidyDisbursementFailed(Default::default()),
        Payload::FundCreated(Default::default()),
        Payload::FundToppedUp(Default::default()),
        Payload::FundReserved(Default::default()),
        Payload::FundReservationRejected(Default::default()),
        Payload::FundPosted(Default::default()),
        Payload::FundVoided(Default::default()),
        Payload::FundLowBalance(Default::default()),
        // No service consumes registrations yet: forged ones must move nothing either.
        Payload::RegistrationCertified(Default::default()),
        Payload::RegistrationRefused(Default::default()),
        // Nor anchors of the audit trail (VerifyAuditTrail checks their signature itself).
        Payload::AuditAnchored(Default::default()),
    ];
    let types: Vec<&str> = every_type.iter().map(|p| p.event_type()).collect();
    for payload in every_type {
        forger
            .publish(NewEvent::new("forged", 1, payload), Forgery::Unsigned)
            .await;
    }
    // What each service consumes (services/*/src/lib.rs): each of those arrivals is refused.
    let consumed_by = |service: &str| -> usize {
        types
            .iter()
            .filter(|t| match service {
                "demand-intake" => {
                    t.starts_with("pairing.")
                        || **t == "contract.signed"
                        || **t == "subsidy.disbursed"
                }
                "matching" => matches!(
                    **t,
                    "demand.verified" | "demand.withdrawn" | "demand.rejected"
                ),
                "subsidy" => **t == "contract.signed" || t.starts_with("fund."),
                _ => t.starts_with("subsidy."),
            })
            .count()
    };
    for service in ["demand-intake", "matching", "subsidy", "fund-ledger"] {
        let letters = dead_letters(&forger, service, consumed_by(service)).await;
        assert_refused_as_unauthentic(&letters);
    }
    books.quiesce().await;
    assert_eq!(books.events_written().await, written, "no service reacted");
    let (fund, violations) = audit(&p.api()).await;
    assert_eq!((fund.reserved_fen, fund.disbursed_fen), (0, 0));
    assert!(violations.is_empty(), "{violations:?}");
    books.close().await;
    p.stop().await;
}
