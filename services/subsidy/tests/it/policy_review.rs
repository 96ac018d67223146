//! Policies are maker–checker (issue 20, item 3): one officer proposes, another person decides.

use crate::helpers::*;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::authed;
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{
    ListPoliciesRequest, PolicyStatus, PolicyTier, RejectPolicyRequest, VerifyAuditTrailRequest,
};
use subsidy::seed::HUBEI_POLICY_ID;
use tonic::Code;

/// A new version of the seeded line that refunds everything, with caps at the ceiling and four
/// eyes only above them: inside the bounds, so only a second person stands in its way.
fn everything_refunded() -> kechuang_proto::subsidy::CreatePolicyRequest {
    let mut r = subsidy::seed::hubei_policy_request();
    r.request_id = "generous".into();
    r.tiers[0].ratio_bps = 10_000;
    r.per_contract_cap_fen = 100_000_000_000;
    r.per_enterprise_annual_cap_fen = 100_000_000_000;
    r.four_eyes_threshold_fen = 100_000_000_000;
    r
}

#[tokio::test]
async fn one_officer_cannot_put_a_policy_in_force_alone() {
    let svc = start().await;
    let proposed = propose(&svc, "wang.fang", everything_refunded()).await;
    assert_eq!(proposed.status, PolicyStatus::Proposed as i32);
    assert_eq!(proposed.version, 2, "a new version of the seeded line");
    // The officer cannot approve it (not an approver), nor can the seeded version be decided.
    let mut c = policies(&svc).await;
    let own = c
        .approve_policy(authed(
            kechuang_proto::subsidy::ApprovePolicyRequest {
                policy_id: proposed.id.clone(),
                note: String::new(),
            },
            &officer(&svc, "wang.fang"),
        ))
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::PermissionDenied);
    let seeded = approve_policy(&svc, "li.na", HUBEI_POLICY_ID)
        .await
        .unwrap_err();
    assert_eq!(seeded.code(), Code::FailedPrecondition);

    // Payments are still computed by the seeded version in force: 10 %, four eyes above 100,000.
    let contract = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        5_000_000 * YUAN,
    )
    .await;
    let (_, app) = pay(&svc, "e-1", &contract, 2_000_000 * YUAN).await;
    assert_eq!(app.policy_id, HUBEI_POLICY_ID);
    assert_eq!(app.amount_fen, 200_000 * YUAN);
    assert_eq!(app.required_approvals, 2);
    svc.stop().await;
}

#[tokio::test]
async fn the_proposer_cannot_decide_their_own_policy() {
    let svc = start().await;
    let proposed = propose(&svc, "wang.fang", wuhan("w-1")).await;
    // The same person holding an approver's token too, however the subject is spelt.
    for me in ["wang.fang", " Wang.Fang ", "WANG.FANG"] {
        let status = approve_policy(&svc, me, &proposed.id).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{me}: {status:?}");
        let status = policies(&svc)
            .await
            .reject_policy(authed(
                RejectPolicyRequest {
                    policy_id: proposed.id.clone(),
                    reason: "撤回重拟".into(),
                },
                &approver(&svc, me),
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{me}: {status:?}");
    }
    let status: String = sqlx::query_scalar("SELECT status FROM policies WHERE id = $1")
        .bind(&proposed.id)
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(status, "PROPOSED");
    let missing = approve_policy(&svc, "li.na", "pol-nope").await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    svc.stop().await;
}

#[tokio::test]
async fn a_second_person_puts_a_policy_in_force_and_only_then_payments_use_it() {
    let svc = start().await;
    let contract = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        5_000_000 * YUAN,
    )
    .await;
    let v1 = propose(&svc, "wang.fang", wuhan("w-1")).await;
    let (_, before) = pay(&svc, "e-1", &contract, 100_000 * YUAN).await;
    assert_eq!(
        before.policy_id, HUBEI_POLICY_ID,
        "a proposal computes nothing"
    );

    let in_force = approve_policy(&svc, "li.na", &v1.id).await.unwrap();
    assert_eq!(in_force.status, PolicyStatus::InForce as i32);
    assert_eq!(
        (in_force.proposed_by.as_str(), in_force.decided_by.as_str()),
        ("wang.fang", "li.na")
    );
    assert!(in_force.decided_at.is_some());
    assert_eq!(in_force.decision_note, "复核同意");
    let (_, after) = pay(&svc, "e-1", &contract, 100_000 * YUAN).await;
    assert_eq!(after.policy_id, v1.id, "the Wuhan policy is more specific");
    assert_eq!(after.amount_fen, 15_000 * YUAN, "15 % of 100,000 yuan");
    let again = approve_policy(&svc, "zhao.lei", &v1.id).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "decided once");

    // A second version, approved by someone else, supersedes the first.
    let mut next = wuhan("w-2");
    next.tiers = vec![PolicyTier {
        from_cumulative_fen: 0,
        ratio_bps: 1200,
    }];
    let v2 = propose(&svc, "wang.fang", next).await;
    assert_eq!(v2.version, 2);
    approve_policy(&svc, "zhao.lei", &v2.id).await.unwrap();
    let listed = policies(&svc)
        .await
        .list_policies(authed(
            ListPoliciesRequest {
                page_size: 10,
                page_token: String::new(),
                status: 0,
            },
            &enterprise_token(&svc, "e-1"),
        ))
        .await
        .unwrap()
        .into_inner()
        .policies;
    let v1_now = listed.iter().find(|p| p.id == v1.id).unwrap();
    assert_eq!(v1_now.status, PolicyStatus::Superseded as i32);
    assert_eq!(v1_now.superseded_by, v2.id);
    assert_eq!(v1_now.decided_by, "li.na", "who put it in force is kept");
    let in_force: Vec<String> = policies(&svc)
        .await
        .list_policies(authed(
            ListPoliciesRequest {
                page_size: 10,
                page_token: String::new(),
                status: PolicyStatus::InForce as i32,
            },
            &enterprise_token(&svc, "e-1"),
        ))
        .await
        .unwrap()
        .into_inner()
        .policies
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(in_force, [v2.id.clone(), HUBEI_POLICY_ID.to_string()]);
    let (_, third) = pay(&svc, "e-1", &contract, 100_000 * YUAN).await;
    assert_eq!(third.policy_id, v2.id);
    svc.stop().await;
}

#[tokio::test]
async fn out_of_bound_drafts_are_refused_with_the_field_named() {
    let svc = start().await;
    let mut c = policies(&svc).await;
    let token = officer(&svc, "wang.fang");
    // Issue 20's draft: 10,000 bps, caps of 10^13 fen, four eyes above 10^15 fen.
    let mut off = subsidy::seed::hubei_policy_request();
    off.request_id = String::new();
    off.tiers[0].ratio_bps = 10_000;
    off.per_contract_cap_fen = 10_000_000_000_000;
    off.per_enterprise_annual_cap_fen = 10_000_000_000_000;
    off.four_eyes_threshold_fen = 1_000_000_000_000_000;
    let mut zero = wuhan("");
    zero.tiers[0].ratio_bps = 0;
    zero.tiers[1].from_cumulative_fen = 10_000_000_000_001;
    let mut blind = wuhan("");
    blind.four_eyes_threshold_fen = blind.per_contract_cap_fen + 1;
    let mut none = wuhan("");
    none.four_eyes_threshold_fen = 0;
    let cases = [
        (
            off,
            vec![
                "per_contract_cap_fen",
                "per_enterprise_annual_cap_fen",
                "four_eyes_threshold_fen",
            ],
        ),
        (
            zero,
            vec!["tiers[0].ratio_bps", "tiers[1].from_cumulative_fen"],
        ),
        (blind, vec!["four_eyes_threshold_fen"]),
        (none, vec!["four_eyes_threshold_fen"]),
    ];
    for (request, expected) in cases {
        let status = c.create_policy(authed(request, &token)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let fields: Vec<String> = field_violations(&status).into_iter().map(|f| f.0).collect();
        assert_eq!(fields, expected, "{status:?}");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM policies")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the seeded policy");
    svc.stop().await;
}

#[tokio::test]
async fn every_proposal_and_decision_is_in_the_audit_trail_which_verifies() {
    let svc = start().await;
    let approved = propose(&svc, "wang.fang", wuhan("w-1")).await;
    approve_policy(&svc, "li.na", &approved.id).await.unwrap();
    let refused = propose(&svc, "wang.fang", everything_refunded()).await;
    let mut c = policies(&svc).await;
    let reject = |reason: &str| RejectPolicyRequest {
        policy_id: refused.id.clone(),
        reason: reason.into(),
    };
    let short = c
        .reject_policy(authed(reject(" "), &approver(&svc, "li.na")))
        .await
        .unwrap_err();
    assert_eq!(field_violations(&short)[0].0, "reason");
    let rejected = c
        .reject_policy(authed(
            reject("全额补贴不符合规定"),
            &approver(&svc, "li.na"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.status, PolicyStatus::Rejected as i32);
    assert_eq!(rejected.decision_note, "全额补贴不符合规定");
    let late = approve_policy(&svc, "zhao.lei", &refused.id)
        .await
        .unwrap_err();
    assert_eq!(
        late.code(),
        Code::FailedPrecondition,
        "a rejected policy stays rejected"
    );

    subsidy::store::audit::integrate(&mut svc.pool.acquire().await.unwrap())
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT action, actor, target_id FROM audit_log ORDER BY sequence")
            .fetch_all(&svc.pool)
            .await
            .unwrap();
    let expected = [
        ("policy.seeded", "seed", HUBEI_POLICY_ID),
        ("policy.proposed", "wang.fang", approved.id.as_str()),
        ("policy.approved", "li.na", approved.id.as_str()),
        ("policy.proposed", "wang.fang", refused.id.as_str()),
        ("policy.rejected", "li.na", refused.id.as_str()),
    ];
    let rows: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    assert_eq!(rows, expected);
    let report = client(&svc)
        .await
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &approver(&svc, "audit")))
        .await
        .unwrap()
        .into_inner();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.entry_count, 5);
    svc.stop().await;
}
