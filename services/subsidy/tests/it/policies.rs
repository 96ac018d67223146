use crate::helpers::*;
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::authed;
use kechuang_proto::subsidy::policy_service_client::PolicyServiceClient;
use kechuang_proto::subsidy::{ListPoliciesRequest, PolicyStatus, PolicyTier};
use tonic::Code;

#[tokio::test]
async fn officers_create_versioned_policies_idempotently() {
    let svc = start().await;
    let mut c = PolicyServiceClient::new(svc.channel().await);
    let officer = svc.token(Role::FinanceOfficer, "officer", None);
    let v1 = c
        .create_policy(authed(wuhan("req-1"), &officer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.status, PolicyStatus::Proposed as i32);
    assert_eq!(v1.proposed_by, "officer");
    assert!(v1.decided_by.is_empty() && v1.decided_at.is_none());
    let again = c
        .create_policy(authed(wuhan("req-1"), &officer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.id, v1.id,
        "the same request_id returns the same policy"
    );
    let v2 = c
        .create_policy(authed(wuhan("req-2"), &officer))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v2.version, 2);
    assert_ne!(v2.id, v1.id);
    let reused = c
        .create_policy(authed(
            {
                let mut r = wuhan("req-1");
                r.per_contract_cap_fen = 5;
                r
            },
            &officer,
        ))
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::InvalidArgument);

    let listed = c
        .list_policies(authed(
            ListPoliciesRequest {
                page_size: 2,
                page_token: String::new(),
                status: 0,
            },
            &enterprise_token(&svc, "e-1"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.policies.len(), 2);
    assert_eq!(listed.policies[0].id, v2.id, "newest first");
    let rest = c
        .list_policies(authed(
            ListPoliciesRequest {
                page_size: 2,
                page_token: listed.next_page_token,
                status: 0,
            },
            &officer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.policies.len(), 1, "the seeded policy");
    assert!(rest.next_page_token.is_empty());
    let seeded = &rest.policies[0];
    assert_eq!(seeded.status, PolicyStatus::InForce as i32);
    assert_eq!(
        (seeded.proposed_by.as_str(), seeded.decided_by.as_str()),
        ("seed", "seed")
    );
    assert!(seeded.decision_note.contains("without a second person"));
    svc.stop().await;
}

#[tokio::test]
async fn bad_policies_and_wrong_roles_are_refused() {
    let svc = start().await;
    let mut c = PolicyServiceClient::new(svc.channel().await);
    let officer = svc.token(Role::FinanceOfficer, "officer", None);
    let mut bad = wuhan("req-bad");
    bad.tiers = vec![PolicyTier {
        from_cumulative_fen: 10,
        ratio_bps: 12_000,
    }];
    bad.industry_chains = vec!["不存在的链".into()];
    bad.valid_from = None;
    let status = c.create_policy(authed(bad, &officer)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&status).into_iter().map(|f| f.0).collect();
    for f in [
        "tiers[0].from_cumulative_fen",
        "tiers[0].ratio_bps",
        "industry_chains[0]",
        "valid_from",
    ] {
        assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
    }
    let approver = svc.token(Role::FinanceApprover, "approver", None);
    assert_eq!(
        c.create_policy(authed(wuhan("r"), &approver))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM policies")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the seeded policy");
    svc.stop().await;
}
