use crate::helpers::*;
use kechuang_platform::Role;
use kechuang_platform::testing::{TestService, authed};
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient;
use kechuang_proto::subsidy::{
    ApplicationStatus, ApproveApplicationRequest, GetApplicationRequest, RejectApplicationRequest,
    SubsidyApplication, VerifyAuditTrailRequest,
};
use tonic::Code;
use tonic::transport::Channel;

fn approve(id: &str) -> ApproveApplicationRequest {
    ApproveApplicationRequest {
        id: id.into(),
        note: "材料齐全".into(),
    }
}

async fn read(
    c: &mut SubsidyServiceClient<Channel>,
    svc: &TestService,
    id: &str,
) -> SubsidyApplication {
    let auditor = svc.token(Role::Auditor, "auditor", None);
    c.get_application(authed(GetApplicationRequest { id: id.into() }, &auditor))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn four_eyes_self_approval_and_roles_are_enforced() {
    let svc = start().await;
    let contract = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::Development,
        10_000_000 * YUAN,
    )
    .await;
    let (_, large) = pay(&svc, "e-1", &contract, 3_000_000 * YUAN).await;
    assert_eq!(large.required_approvals, 2);
    let mut c = client(&svc).await;

    // The enterprise's own people and non-approvers are refused.
    let insider = svc.token(Role::FinanceApprover, "insider", Some("e-1"));
    let status = c
        .approve_application(authed(approve(&large.id), &insider))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let applicant = svc.token(Role::FinanceApprover, "cfo-of-e-1", None);
    let status = c
        .approve_application(authed(approve(&large.id), &applicant))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::PermissionDenied,
        "the applicant cannot approve"
    );
    for role in [Role::FinanceOfficer, Role::Auditor] {
        let token = svc.token(role, "someone", None);
        let status = c
            .approve_application(authed(approve(&large.id), &token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
    }
    let enterprise = enterprise_token(&svc, "e-1");
    let status = c
        .approve_application(authed(approve(&large.id), &enterprise))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // One approver is not enough, and cannot count twice.
    let first = c
        .approve_application(authed(approve(&large.id), &approver(&svc, "wang")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(first.approvals.len(), 1);
    // Each answer is the application as a read gives it (it is built without one).
    assert_eq!(first, read(&mut c, &svc, &large.id).await);
    let twice = c
        .approve_application(authed(approve(&large.id), &approver(&svc, "wang")))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(svc.events_of("subsidy.approved").await.is_empty());
    let second = c
        .approve_application(authed(approve(&large.id), &approver(&svc, "li")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.status, ApplicationStatus::Approved as i32);
    assert_eq!(second, read(&mut c, &svc, &large.id).await);
    let approvers: Vec<&str> = second
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    assert_eq!(approvers, ["wang", "li"]);
    let approved = svc
        .wait_for_event("subsidy.approved", |e| e.aggregate_id == large.id)
        .await;
    match approved.payload {
        Some(kechuang_proto::events::envelope::Payload::SubsidyApproved(a)) => {
            assert_eq!(a.amount_fen, 300_000 * YUAN);
            assert_eq!(a.fund_id, "fund-default");
            assert_eq!(a.approvers, ["wang", "li"]);
        }
        other => panic!("{other:?}"),
    }
    // Approved already: a third approval is refused.
    let third = c
        .approve_application(authed(approve(&large.id), &approver(&svc, "zhao")))
        .await
        .unwrap_err();
    assert_eq!(third.code(), Code::FailedPrecondition);
    svc.stop().await;
}

#[tokio::test]
async fn a_rejection_needs_a_reason_and_a_rejected_application_cannot_be_approved() {
    let svc = start().await;
    let contract = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::License,
        1_000_000 * YUAN,
    )
    .await;
    let (_, app) = pay(&svc, "e-1", &contract, 100_000 * YUAN).await;
    let mut c = client(&svc).await;
    let token = approver(&svc, "wang");
    let no_reason = c
        .reject_application(authed(
            RejectApplicationRequest {
                id: app.id.clone(),
                reason: " ".into(),
            },
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    let rejected = c
        .reject_application(authed(
            RejectApplicationRequest {
                id: app.id.clone(),
                reason: "发票与合同不符".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rejected.status, ApplicationStatus::Rejected as i32);
    assert_eq!(rejected.status_reason, "发票与合同不符");
    assert_eq!(rejected, read(&mut c, &svc, &app.id).await);
    let status = c
        .approve_application(authed(approve(&app.id), &approver(&svc, "li")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let missing = c
        .approve_application(authed(approve("app-nope"), &token))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    svc.stop().await;
}

#[tokio::test]
async fn every_finance_action_is_in_a_hash_chain_that_detects_tampering() {
    let svc = start().await;
    let contract = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        1_000_000 * YUAN,
    )
    .await;
    let (_, app) = pay(&svc, "e-1", &contract, 100_000 * YUAN).await;
    let mut c = client(&svc).await;
    c.approve_application(authed(approve(&app.id), &approver(&svc, "wang")))
        .await
        .unwrap();
    let auditor = svc.token(Role::Auditor, "audit", None);
    let report = c
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &auditor))
        .await
        .unwrap()
        .into_inner();
    assert!(report.intact, "{report:?}");
    assert_eq!(
        report.entry_count, 3,
        "the seeded policy, the contract's registration and the approval"
    );
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY sequence")
        .fetch_all(&svc.pool)
        .await
        .unwrap();
    assert_eq!(
        actions,
        [
            "policy.seeded",
            "registration.certified",
            "application.approved"
        ]
    );

    // The table refuses edits...
    let edit = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE sequence = 2")
        .execute(&svc.pool)
        .await;
    assert!(edit.is_err());
    // ...and an owner who switches that off is caught by the chain.
    sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update")
        .execute(&svc.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE sequence = 2")
        .execute(&svc.pool)
        .await
        .unwrap();
    let report = c
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &auditor))
        .await
        .unwrap()
        .into_inner();
    assert!(!report.intact);
    assert_eq!(report.first_broken_sequence, 2);
    let enterprise = enterprise_token(&svc, "e-1");
    let denied = c
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &enterprise))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    svc.stop().await;
}
