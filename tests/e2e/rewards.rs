//! Rewards for brokers through the whole platform (issue 24 item 3): the technology manager who
//! verified the demand facilitated the deal; once its contract is certified and paid, the
//! reward policy (its own fund, created and topped up through FundService) makes the broker's
//! reward, to the fen; two approvers who are not the broker approve it; the payout pays the
//! broker; the reward fund reconciles; and the demand is completed by its subsidy, not by the
//! reward.
//!
//! No broker is named at acceptance here: the verifier, 周经理, facilitates (matching records
//! it on `kc.contract.signed`). The subsidy service's side in detail:
//! services/subsidy/tests/it/rewards.rs.

use crate::saga::signed_contract;
use kechuang_e2e::journey::{audit_once_settled, top_up};
use kechuang_e2e::{Api, TestPlatform, YUAN, authed, wait_for};
use kechuang_platform::Role;
use kechuang_proto::common::{ApplicationKind, ContractType};
use kechuang_proto::demand as dpb;
use kechuang_proto::fund as fpb;
use kechuang_proto::subsidy::{
    ApplicationStatus, ApproveApplicationRequest, ApprovePolicyRequest, CreatePolicyRequest,
    ListApplicationsRequest, PolicyKind, PolicyStatus, PolicyTier, SubsidyApplication,
};
use tonic::Code;

/// The technology manager of every journey (`Journey::new`), who verified the demand.
const BROKER: &str = "周经理";

/// The reward fund: created, then topped up by the treasury.
async fn reward_fund(api: &Api) -> String {
    let officer = api.token(Role::FinanceOfficer, "王会计", None);
    let fund = api
        .fund()
        .create_fund(authed(
            fpb::CreateFundRequest {
                request_id: "reward-fund-2026".into(),
                name: "湖北省技术经纪人奖励资金".into(),
                low_balance_fen: 10_000 * YUAN,
            },
            &officer,
        ))
        .await
        .expect("the reward fund is created")
        .into_inner();
    api.fund()
        .top_up(authed(
            fpb::TopUpRequest {
                fund_id: fund.id.clone(),
                amount_fen: 500_000 * YUAN,
                reference: "财预〔2026〕经纪人奖励".into(),
            },
            &officer,
        ))
        .await
        .expect("the reward fund is topped up");
    fund.id
}

/// 2 % of the certified amount paid, at most 100,000 yuan a deal and 300,000 yuan a broker a
/// year, from `fund_id`; above 10,000 yuan two approvers. Proposed by one person, put in force
/// by another.
async fn reward_policy(api: &Api, fund_id: &str) -> String {
    let officer = api.token(Role::FinanceOfficer, "王会计", None);
    let request = CreatePolicyRequest {
        request_id: "reward-policy-2026".into(),
        name: "湖北省技术经纪人奖励".into(),
        kind: PolicyKind::BrokerReward as i32,
        fund_id: fund_id.into(),
        tiers: vec![PolicyTier {
            from_cumulative_fen: 0,
            ratio_bps: 200,
        }],
        per_contract_cap_fen: 100_000 * YUAN,
        per_enterprise_annual_cap_fen: 300_000 * YUAN,
        // Technology bought and used in Hubei, of any contract type.
        contract_types: vec![],
        region_prefixes: vec!["42".into()],
        industry_chains: vec![],
        valid_from: Some(kechuang_platform::events::timestamp(
            chrono::Utc::now() - chrono::Duration::days(30),
        )),
        valid_to: None,
        four_eyes_threshold_fen: 10_000 * YUAN,
        claim_window_days: 365,
        subsidise_unregistered: false,
    };
    let proposed = api
        .policies()
        .create_policy(authed(request, &officer))
        .await
        .expect("the reward policy is proposed")
        .into_inner();
    let approved = api
        .policies()
        .approve_policy(authed(
            ApprovePolicyRequest {
                policy_id: proposed.id.clone(),
                note: "复核同意".into(),
            },
            &api.token(Role::FinanceApprover, "李处长", None),
        ))
        .await
        .expect("the reward policy is approved")
        .into_inner();
    assert_eq!(approved.status, PolicyStatus::InForce as i32);
    assert_eq!(approved.kind, PolicyKind::BrokerReward as i32);
    approved.id
}

async fn rewards_of(api: &Api, contract_id: &str) -> Vec<SubsidyApplication> {
    let auditor = api.token(Role::Auditor, "孙审计", None);
    api.subsidy()
        .list_applications(authed(
            ListApplicationsRequest {
                page_size: 100,
                kind: ApplicationKind::BrokerReward as i32,
                ..Default::default()
            },
            &auditor,
        ))
        .await
        .expect("the finance office lists rewards")
        .into_inner()
        .applications
        .into_iter()
        .filter(|a| a.contract_id == contract_id)
        .collect()
}

#[tokio::test]
async fn the_broker_of_a_certified_paid_deal_is_rewarded_to_the_fen_with_four_eyes() {
    let platform = TestPlatform::start().await;
    let api = platform.api();
    top_up(&api, 1_000_000 * YUAN, "财预〔2026〕24号").await;
    let fund_id = reward_fund(&api).await;
    let policy_id = reward_policy(&api, &fund_id).await;

    // 10,000,000.00 yuan certified at 6,000,000.00, paid 7,777,777.77: the base is
    // ⌊777777777 × 600000000 / 1000000000⌋ = 466,666,666 fen; the reward 2 % of it, rounded
    // down: 9,333,333 fen (93,333.33 yuan); the enterprise's subsidy 10 %: 46,666,666 fen.
    let (journey, contract) = signed_contract(&api, "RWD000001", 10_000_000 * YUAN).await;
    journey
        .certify(&contract.id, ContractType::License, 6_000_000 * YUAN)
        .await;
    let payment = journey.pay(&contract.id, 777_777_777, "BOC-RWD-0001").await;
    let subsidy = journey
        .application_in(&payment.application_id, ApplicationStatus::PendingReview)
        .await;
    assert_eq!(subsidy.kind, ApplicationKind::Subsidy as i32);
    assert_eq!(subsidy.amount_fen, 46_666_666);

    let reward = wait_for("the broker's reward", || {
        let (api, id) = (&api, contract.id.clone());
        async move { rewards_of(api, &id).await.pop() }
    })
    .await;
    assert_eq!(reward.payee, BROKER);
    assert_eq!(reward.payment_id, payment.id);
    assert_eq!(reward.policy_id, policy_id);
    assert_eq!(reward.fund_id, fund_id);
    assert_eq!(reward.eligible_base_fen, 466_666_666);
    assert_eq!(reward.amount_fen, 9_333_333);
    assert_eq!(reward.required_approvals, 2);
    assert_eq!(reward.status, ApplicationStatus::PendingReview as i32);

    // The broker, holding an approver's token, cannot approve their own reward.
    let own = api
        .subsidy()
        .approve_application(authed(
            ApproveApplicationRequest {
                id: reward.id.clone(),
                note: String::new(),
            },
            &api.token(Role::FinanceApprover, BROKER, None),
        ))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied, "{own:?}");

    // Four eyes: two other people.
    let li = api.token(Role::FinanceApprover, "李处长", None);
    let zhao = api.token(Role::FinanceApprover, "赵科长", None);
    let once = journey.approve(&reward.id, &li).await;
    assert_eq!(once.status, ApplicationStatus::PendingReview as i32);
    journey.approve(&reward.id, &zhao).await;
    let paid = journey
        .application_in(&reward.id, ApplicationStatus::Disbursed)
        .await;
    assert!(!paid.payout_reference.is_empty());

    // The reward fund paid exactly the reward; the ledger reconciles.
    let auditor = api.token(Role::Auditor, "孙审计", None);
    let reward_books = wait_for("the reward fund to settle", || {
        let (api, auditor, fund_id) = (&api, auditor.clone(), fund_id.clone());
        async move {
            let f = api
                .fund()
                .get_fund(authed(fpb::GetFundRequest { fund_id }, &auditor))
                .await
                .ok()?
                .into_inner();
            (f.disbursed_fen == 9_333_333 && f.reserved_fen == 0).then_some(f)
        }
    })
    .await;
    assert_eq!(reward_books.available_fen, 500_000 * YUAN - 9_333_333);

    // The reward's payout did not complete the demand: its subsidy does.
    let demand = api
        .demands()
        .get_demand(authed(
            dpb::GetDemandRequest {
                demand_id: contract.demand_id.clone(),
            },
            &journey.enterprise,
        ))
        .await
        .expect("the demand")
        .into_inner();
    assert_eq!(demand.status, dpb::DemandStatus::Contracted as i32);
    journey.approve(&subsidy.id, &li).await;
    journey.approve(&subsidy.id, &zhao).await;
    let completed = journey
        .demand_in(&contract.demand_id, dpb::DemandStatus::Completed)
        .await;
    let last = completed.history.last().expect("its history");
    assert!(
        last.note.contains(&subsidy.id) && !last.note.contains(&reward.id),
        "{last:?}"
    );
    let (_, violations) = audit_once_settled(&api, |f| f.disbursed_fen == 46_666_666).await;
    assert!(violations.is_empty(), "{violations:?}");
    platform.stop().await;
}
