//! Rewards for brokers (issue 24 item 3): a certified, paid deal with a facilitator and a
//! reward policy in force makes a reward application for the broker, decided by four eyes (never
//! by the broker) and paid out to the broker through the same saga as subsidies.

use crate::helpers::*;
use futures::future::BoxFuture;
use kechuang_platform::testing::{TestService, authed};
use kechuang_platform::{NewEvent, Role, ServiceKind};
use kechuang_proto::common::{ApplicationKind, ContractType};
use kechuang_proto::events::{FundReserved, envelope::Payload};
use kechuang_proto::subsidy::{
    ApplicationStatus, ApproveApplicationRequest, CreatePolicyRequest, GetApplicationRequest,
    ListApplicationsRequest, Policy, PolicyKind, PolicyTier, RejectApplicationRequest,
    SubsidyApplication,
};
use std::sync::{Arc, Mutex};
use subsidy::payout::{PayoutError, PayoutGateway, PayoutOrder};
use tonic::Code;

const BROKER: &str = "周经理";
const REWARD_FUND: &str = "fund-broker-rewards";

/// 2 % of the certified amount paid, at most 50,000 yuan a deal and 80,000 yuan a broker a
/// year, in Hubei, from its own fund; two approvers above 10,000 yuan.
fn reward_policy(request_id: &str) -> CreatePolicyRequest {
    let mut r = subsidy::seed::hubei_policy_request();
    r.request_id = request_id.into();
    r.name = "湖北省技术经纪人奖励".into();
    r.kind = PolicyKind::BrokerReward as i32;
    r.fund_id = REWARD_FUND.into();
    r.tiers = vec![PolicyTier {
        from_cumulative_fen: 0,
        ratio_bps: 200,
    }];
    r.per_contract_cap_fen = 50_000 * YUAN;
    r.per_enterprise_annual_cap_fen = 80_000 * YUAN;
    r.four_eyes_threshold_fen = 10_000 * YUAN;
    r
}

/// The reward policy, proposed by one person and put in force by another.
async fn reward_policy_in_force(svc: &TestService) -> Policy {
    let proposed = propose(svc, "officer-li", reward_policy("reward-1")).await;
    assert_eq!(proposed.kind, PolicyKind::BrokerReward as i32);
    assert_eq!(proposed.fund_id, REWARD_FUND);
    // Its event says what it pays, for whoever follows the policies without asking.
    let created = svc
        .wait_for_event("policy.created", |e| e.aggregate_id == proposed.id)
        .await;
    match created.payload {
        Some(Payload::PolicyCreated(p)) => {
            assert_eq!(p.kind, ApplicationKind::BrokerReward as i32);
            assert_eq!(p.fund_id, REWARD_FUND);
        }
        other => panic!("kc.policy.created carries {other:?}"),
    }
    approve_policy(svc, "approver-zhao", &proposed.id)
        .await
        .unwrap()
}

/// A contract signed 10 days ago, facilitated by `facilitator` (empty: nobody), not
/// registered yet.
async fn sign_brokered(
    svc: &TestService,
    enterprise: &str,
    facilitator: &str,
    amount_fen: i64,
) -> String {
    let id = format!("c-{}", uuid::Uuid::new_v4().simple());
    let mut signed = contract_signed(
        &id,
        enterprise,
        "420100",
        ContractType::Development,
        amount_fen,
        chrono::Utc::now() - chrono::Duration::days(10),
    );
    signed.facilitator = facilitator.into();
    signed.facilitator_role = "tech_manager".into();
    publish_contract(svc, signed).await;
    id
}

fn auditor(svc: &TestService) -> String {
    svc.token(Role::Auditor, "auditor-sun", None)
}

/// The rewards the finance office sees, newest first.
async fn rewards(svc: &TestService) -> Vec<SubsidyApplication> {
    client(svc)
        .await
        .list_applications(authed(
            ListApplicationsRequest {
                page_size: 100,
                kind: ApplicationKind::BrokerReward as i32,
                ..Default::default()
            },
            &auditor(svc),
        ))
        .await
        .unwrap()
        .into_inner()
        .applications
}

async fn approve_as(
    svc: &TestService,
    id: &str,
    subject: &str,
) -> Result<SubsidyApplication, tonic::Status> {
    client(svc)
        .await
        .approve_application(authed(
            ApproveApplicationRequest {
                id: id.into(),
                note: String::new(),
            },
            &approver(svc, subject),
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_certified_paid_deal_with_a_facilitator_makes_the_brokers_reward_to_the_fen() {
    let svc = start().await;
    let policy = reward_policy_in_force(&svc).await;
    // 1,000,000.00 yuan certified at 777,777.77, paid 333,333.33: base ⌊33333333 × 77777777 /
    // 100000000⌋ = 25,925,925 fen; the reward 2 % of it, rounded down: 518,518 fen.
    let contract = sign_brokered(&svc, "e-1", BROKER, 100_000_000).await;
    certify(&svc, &contract, ContractType::Development, 77_777_777)
        .await
        .unwrap();
    let (payment, subsidy_app) = pay(&svc, "e-1", &contract, 33_333_333).await;
    // The subsidy is what it always was: 10 % of the same base, to the enterprise.
    assert_eq!(subsidy_app.kind, ApplicationKind::Subsidy as i32);
    assert_eq!(subsidy_app.payee, "e-1");
    assert_eq!(subsidy_app.eligible_base_fen, 25_925_925);
    assert_eq!(subsidy_app.amount_fen, 2_592_592);

    let found = rewards(&svc).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let reward = &found[0];
    assert_eq!(reward.kind, ApplicationKind::BrokerReward as i32);
    assert_eq!(reward.payee, BROKER);
    assert_eq!(reward.enterprise_id, "e-1");
    assert_eq!(reward.contract_id, contract);
    assert_eq!(reward.payment_id, payment.id);
    assert_eq!(reward.policy_id, policy.id);
    assert_eq!(reward.fund_id, REWARD_FUND);
    assert_eq!(reward.eligible_base_fen, 25_925_925);
    assert_eq!(reward.amount_fen, 518_518);
    assert_eq!(reward.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(reward.required_approvals, 1);
    assert!(
        reward.computation.iter().any(|s| s.contains(BROKER)),
        "{:?}",
        reward.computation
    );

    // The enterprise never sees the reward: not by id, not in its list, not by asking.
    let mut c = client(&svc).await;
    let own = enterprise_token(&svc, "e-1");
    let hidden = c
        .get_application(authed(
            GetApplicationRequest {
                id: reward.id.clone(),
            },
            &own,
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let listed = c
        .list_applications(authed(ListApplicationsRequest::default(), &own))
        .await
        .unwrap()
        .into_inner()
        .applications;
    assert_eq!(
        listed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [subsidy_app.id.as_str()]
    );
    let asked = c
        .list_applications(authed(
            ListApplicationsRequest {
                kind: ApplicationKind::BrokerReward as i32,
                ..Default::default()
            },
            &own,
        ))
        .await
        .unwrap_err();
    assert_eq!(asked.code(), Code::PermissionDenied);
    // The finance office sees both kinds, and each alone.
    let all = c
        .list_applications(authed(ListApplicationsRequest::default(), &auditor(&svc)))
        .await
        .unwrap()
        .into_inner()
        .applications;
    assert_eq!(all.len(), 2);
    let subsidies = c
        .list_applications(authed(
            ListApplicationsRequest {
                kind: ApplicationKind::Subsidy as i32,
                ..Default::default()
            },
            &auditor(&svc),
        ))
        .await
        .unwrap()
        .into_inner()
        .applications;
    assert_eq!(subsidies.len(), 1);
    assert_eq!(subsidies[0].id, subsidy_app.id);
    svc.stop().await;
}

#[tokio::test]
async fn no_reward_without_a_reward_policy_a_facilitator_or_a_certified_contract() {
    let svc = start().await;
    // No reward policy yet: a certified, brokered, paid deal makes only its subsidy.
    let before = sign_brokered(&svc, "e-1", BROKER, 1_000_000 * YUAN).await;
    certify(&svc, &before, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-1", &before, 500_000 * YUAN).await;
    assert!(rewards(&svc).await.is_empty());

    reward_policy_in_force(&svc).await;
    // Nobody facilitated it.
    let alone = sign_brokered(&svc, "e-2", "", 1_000_000 * YUAN).await;
    certify(&svc, &alone, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-2", &alone, 500_000 * YUAN).await;
    // Refused: not a technology contract.
    let refused = sign_brokered(&svc, "e-3", BROKER, 1_000_000 * YUAN).await;
    refuse(&svc, &refused, "设备采购合同，非技术合同")
        .await
        .unwrap();
    pay(&svc, "e-3", &refused, 500_000 * YUAN).await;
    // Not certified yet: nothing until the registrar certifies it.
    let waiting = sign_brokered(&svc, "e-4", BROKER, 1_000_000 * YUAN).await;
    let (_, awaiting) = pay(&svc, "e-4", &waiting, 400_000 * YUAN).await;
    assert_eq!(
        awaiting.status,
        ApplicationStatus::AwaitingRegistration as i32
    );
    assert!(rewards(&svc).await.is_empty());

    // Certified at 600,000: the waiting payment's base is 240,000; the reward 4,800 yuan, made
    // in the registrar's transaction.
    certify(&svc, &waiting, ContractType::Development, 600_000 * YUAN)
        .await
        .unwrap();
    let found = rewards(&svc).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].contract_id, waiting);
    assert_eq!(found[0].eligible_base_fen, 240_000 * YUAN);
    assert_eq!(found[0].amount_fen, 4_800 * YUAN);
    // The same certification again writes nothing.
    let again = sqlx::query_scalar::<_, String>(
        "SELECT registration_no FROM registrations WHERE contract_id = $1",
    )
    .bind(&waiting)
    .fetch_one(&svc.pool)
    .await
    .unwrap();
    let _ = registrations(&svc)
        .await
        .certify_contract(authed(
            kechuang_proto::subsidy::CertifyContractRequest {
                contract_id: waiting.clone(),
                registration_no: again,
                contract_type: ContractType::Development as i32,
                certified_amount_fen: 600_000 * YUAN,
                note: String::new(),
            },
            &svc.token(Role::Registrar, "registrar-wang", None),
        ))
        .await;
    // A later payment on the certified contract: 600,000 paid → base 360,000, reward 7,200.
    pay(&svc, "e-4", &waiting, 600_000 * YUAN).await;
    let found = rewards(&svc).await;
    assert_eq!(
        found.iter().map(|a| a.amount_fen).collect::<Vec<_>>(),
        [7_200 * YUAN, 4_800 * YUAN]
    );
    svc.stop().await;
}

#[tokio::test]
async fn a_brokers_annual_cap_spans_their_deals_and_a_deals_cap_its_payments() {
    let svc = start().await;
    reward_policy_in_force(&svc).await;
    // 3,000,000 certified and paid in two parts: 2 % is 60,000, the deal's cap 50,000.
    let first = sign_brokered(&svc, "e-1", BROKER, 3_000_000 * YUAN).await;
    certify(&svc, &first, ContractType::Development, 3_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-1", &first, 2_000_000 * YUAN).await;
    pay(&svc, "e-1", &first, 1_000_000 * YUAN).await;
    // Another enterprise's deal by the same broker: 2,000,000 → 40,000 by ratio, but only
    // 30,000 of the broker's 80,000 a year is left.
    let second = sign_brokered(&svc, "e-2", BROKER, 2_000_000 * YUAN).await;
    certify(&svc, &second, ContractType::Development, 2_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-2", &second, 2_000_000 * YUAN).await;
    // Another broker is not held back by 周经理's cap.
    let third = sign_brokered(&svc, "e-2", "吴经纪", 1_000_000 * YUAN).await;
    certify(&svc, &third, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-2", &third, 1_000_000 * YUAN).await;

    // One person under two spellings of their subject has one cap: 50,000, then 30,000.
    for (enterprise, spelling) in [("e-3", "Broker.Qian"), ("e-4", "broker.QIAN")] {
        let deal = sign_brokered(&svc, enterprise, spelling, 3_000_000 * YUAN).await;
        certify(&svc, &deal, ContractType::Development, 3_000_000 * YUAN)
            .await
            .unwrap();
        pay(&svc, enterprise, &deal, 3_000_000 * YUAN).await;
    }
    let mut found = rewards(&svc).await;
    let qian: Vec<i64> = found[..2].iter().rev().map(|a| a.amount_fen).collect();
    assert_eq!(qian, [50_000 * YUAN, 30_000 * YUAN]);
    found.drain(..2);
    found.reverse(); // in the order they were made
    let seen: Vec<(&str, &str, i64, i32)> = found
        .iter()
        .map(|a| {
            (
                a.contract_id.as_str(),
                a.payee.as_str(),
                a.amount_fen,
                a.status,
            )
        })
        .collect();
    let pending = ApplicationStatus::PendingReview as i32;
    assert_eq!(
        seen,
        [
            (first.as_str(), BROKER, 40_000 * YUAN, pending),
            (first.as_str(), BROKER, 10_000 * YUAN, pending),
            (second.as_str(), BROKER, 30_000 * YUAN, pending),
            (third.as_str(), "吴经纪", 20_000 * YUAN, pending),
        ]
    );
    assert!(
        found[2]
            .computation
            .iter()
            .any(|s| s.contains("经纪人年度上限 80,000.00 元")),
        "{:?}",
        found[2].computation
    );
    // Four eyes above 10,000 yuan, like subsidies.
    assert_eq!(found[0].required_approvals, 2);
    assert_eq!(found[1].required_approvals, 1);

    // Pages of rewards only; a page token is bound to the kind asked for.
    let page = |kind: ApplicationKind, page_token: String| {
        let svc = &svc;
        async move {
            client(svc)
                .await
                .list_applications(authed(
                    ListApplicationsRequest {
                        page_size: 4,
                        page_token,
                        kind: kind as i32,
                        ..Default::default()
                    },
                    &auditor(svc),
                ))
                .await
        }
    };
    let first = page(ApplicationKind::BrokerReward, String::new())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.applications.len(), 4);
    let second = page(ApplicationKind::BrokerReward, first.next_page_token.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.applications.len(), 2);
    assert!(second.next_page_token.is_empty());
    let reward = ApplicationKind::BrokerReward as i32;
    assert!(
        first
            .applications
            .iter()
            .chain(&second.applications)
            .all(|a| a.kind == reward)
    );
    let other = page(ApplicationKind::Subsidy, first.next_page_token)
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument);
    svc.stop().await;
}

#[tokio::test]
async fn a_broker_never_approves_or_rejects_their_own_reward() {
    let svc = start().await;
    reward_policy_in_force(&svc).await;
    let contract = sign_brokered(&svc, "e-1", BROKER, 1_000_000 * YUAN).await;
    certify(&svc, &contract, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-1", &contract, 1_000_000 * YUAN).await;
    let reward = rewards(&svc).await.remove(0);
    assert_eq!(reward.amount_fen, 20_000 * YUAN);
    // The broker holds a finance approver's token too: still not their own reward, whatever
    // the case and spaces of the subject.
    for own in [BROKER, " 周经理 "] {
        let denied = approve_as(&svc, &reward.id, own).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
        let denied = client(&svc)
            .await
            .reject_application(authed(
                RejectApplicationRequest {
                    id: reward.id.clone(),
                    reason: "不予奖励".into(),
                },
                &approver(&svc, own),
            ))
            .await
            .unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
    }
    assert!(application(&svc, &reward.id).await.approvals.is_empty());
    // Two other people approve it.
    let one = approve_as(&svc, &reward.id, "wang").await.unwrap();
    assert_eq!(one.status, ApplicationStatus::PendingReview as i32);
    let done = approve_as(&svc, &reward.id, "li").await.unwrap();
    assert_eq!(done.status, ApplicationStatus::Approved as i32);
    let event = svc
        .wait_for_event("subsidy.approved", |e| e.aggregate_id == reward.id)
        .await;
    match event.payload {
        Some(Payload::SubsidyApproved(a)) => {
            assert_eq!(a.fund_id, REWARD_FUND);
            assert_eq!(a.amount_fen, 20_000 * YUAN);
            assert_eq!(a.kind, ApplicationKind::BrokerReward as i32);
            assert_eq!(a.payee, BROKER);
        }
        other => panic!("{other:?}"),
    }
    svc.stop().await;
}

/// A bank that remembers whom it paid.
#[derive(Default)]
struct RecordingBank(Mutex<Vec<PayoutOrder>>);

impl PayoutGateway for RecordingBank {
    fn pay(&self, order: &PayoutOrder) -> BoxFuture<'_, Result<String, PayoutError>> {
        self.0.lock().unwrap().push(order.clone());
        let reference = format!("BANK-{}", order.disbursement_id);
        Box::pin(async move { Ok(reference) })
    }
}

#[tokio::test]
async fn the_reward_is_paid_to_the_broker_and_its_disbursement_says_so() {
    let bank = Arc::new(RecordingBank::default());
    let gateway = bank.clone();
    let svc = TestService::start(ServiceKind::Subsidy, move |config| {
        subsidy::build_with(config, gateway.clone())
    })
    .await;
    reward_policy_in_force(&svc).await;
    let contract = sign_brokered(&svc, "e-1", BROKER, 100_000 * YUAN).await;
    certify(&svc, &contract, ContractType::Development, 100_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-1", &contract, 100_000 * YUAN).await;
    let reward = rewards(&svc).await.remove(0);
    assert_eq!(reward.amount_fen, 2_000 * YUAN);
    approve_as(&svc, &reward.id, "wang").await.unwrap();
    svc.wait_for_event("subsidy.approved", |e| e.aggregate_id == reward.id)
        .await;
    svc.publish(NewEvent::new(
        REWARD_FUND,
        1,
        Payload::FundReserved(FundReserved {
            fund_id: REWARD_FUND.into(),
            application_id: reward.id.clone(),
            transfer_id: format!("reserve:{}", reward.id),
            amount_fen: 2_000 * YUAN,
            available_fen: 0,
        }),
    ))
    .await;
    wait_status(&svc, &reward.id, ApplicationStatus::Disbursed).await;
    let disbursed = svc
        .wait_for_event("subsidy.disbursed", |e| e.aggregate_id == reward.id)
        .await;
    match disbursed.payload {
        Some(Payload::SubsidyDisbursed(d)) => {
            assert_eq!(d.kind, ApplicationKind::BrokerReward as i32);
            assert_eq!(d.payee, BROKER);
            assert_eq!(d.fund_id, REWARD_FUND);
            assert_eq!(d.amount_fen, 2_000 * YUAN);
        }
        other => panic!("{other:?}"),
    }
    let orders = bank.0.lock().unwrap().clone();
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].enterprise_id, BROKER, "paid to the broker");
    assert_eq!(orders[0].amount_fen, 2_000 * YUAN);
    svc.stop().await;
}

#[tokio::test]
async fn a_redelivered_contract_signed_changes_nothing() {
    let svc = start().await;
    reward_policy_in_force(&svc).await;
    let id = format!("c-{}", uuid::Uuid::new_v4().simple());
    let mut signed = contract_signed(
        &id,
        "e-1",
        "420100",
        ContractType::Development,
        1_000_000 * YUAN,
        chrono::Utc::now() - chrono::Duration::days(10),
    );
    signed.facilitator = BROKER.into();
    signed.facilitator_role = "broker".into();
    let first = publish_contract(&svc, signed.clone()).await;
    // The same event again, and the same contract announced anew naming someone else.
    svc.publish_envelope(&first).await;
    signed.facilitator = "冒名者".into();
    svc.publish(NewEvent::new(&id, 1, Payload::ContractSigned(signed)))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (facilitator, role): (String, String) =
        sqlx::query_as("SELECT facilitator, facilitator_role FROM contracts WHERE id = $1")
            .bind(&id)
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    assert_eq!((facilitator.as_str(), role.as_str()), (BROKER, "broker"));
    certify(&svc, &id, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    pay(&svc, "e-1", &id, 1_000_000 * YUAN).await;
    let found = rewards(&svc).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].payee, BROKER);
    assert_eq!(found[0].amount_fen, 20_000 * YUAN);
    svc.stop().await;
}

#[tokio::test]
async fn a_reward_policy_never_supersedes_a_subsidy_policy_nor_computes_a_subsidy() {
    let svc = start().await;
    // A reward proposal under the seeded subsidy policy's name would supersede it once
    // approved: refused, naming the kind.
    let mut under_the_subsidy_name = reward_policy("reward-same-name");
    under_the_subsidy_name.name = subsidy::seed::hubei_policy_request().name;
    let refused = policies(&svc)
        .await
        .create_policy(authed(under_the_subsidy_name, &officer(&svc, "officer-li")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("kind"), "{refused:?}");
    // In force beside the seeded policy, the reward policy leaves the subsidy as it was.
    reward_policy_in_force(&svc).await;
    let contract = sign_brokered(&svc, "e-1", BROKER, 1_000_000 * YUAN).await;
    certify(&svc, &contract, ContractType::Development, 1_000_000 * YUAN)
        .await
        .unwrap();
    let (_, subsidy_app) = pay(&svc, "e-1", &contract, 1_000_000 * YUAN).await;
    assert_eq!(
        subsidy_app.amount_fen,
        100_000 * YUAN,
        "10 % under the seeded rule"
    );
    assert_eq!(subsidy_app.fund_id, "fund-default");
    assert_eq!(rewards(&svc).await[0].amount_fen, 20_000 * YUAN);
    svc.stop().await;
}
