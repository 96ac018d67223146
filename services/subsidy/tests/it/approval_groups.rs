//! Approvals made together in one transaction ([`subsidy::approvals`]): each is decided by the
//! same rules and answered as it would have been alone, and a group's money facts (one event
//! per approved application, one audit entry per approval) are exact.

use crate::helpers::*;
use futures::future::join_all;
use kechuang_platform::testing::{TestService, authed, eventually};
use kechuang_platform::{Caller, Error, Role};
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{
    ApplicationStatus, ApproveApplicationRequest, SubsidyApplication, VerifyAuditTrailRequest,
};
use std::time::Duration;
use subsidy::approvals::{Approvals, Outcome, run};
use tokio_util::sync::CancellationToken;

/// `n` applications of one approver each, on contracts of enterprises `g-0` … `g-{n-1}`.
async fn small_applications(svc: &TestService, n: usize) -> Vec<SubsidyApplication> {
    let mut apps = Vec::new();
    for i in 0..n {
        let enterprise = format!("g-{i}");
        let contract = sign(
            svc,
            &enterprise,
            "420100",
            ContractType::Transfer,
            1_000_000 * YUAN,
        )
        .await;
        let (_, app) = pay(svc, &enterprise, &contract, 100_000 * YUAN).await;
        assert_eq!(app.required_approvals, 1);
        apps.push(app);
    }
    apps
}

fn answer(outcome: Outcome) -> Result<SubsidyApplication, Error> {
    match outcome {
        Outcome::Answered(answer) => *answer,
        Outcome::Alone => panic!("an approval of a group that did not fail was sent back"),
    }
}

#[tokio::test]
async fn approvals_queued_together_are_each_decided_and_answered_as_alone() {
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
    let small = small_applications(&svc, 4).await;

    let approver = |name: &str| Caller::new(Role::FinanceApprover, name);
    let mut asks: Vec<(Caller, String)> = vec![
        (approver("wang"), large.id.clone()),
        (approver("li"), large.id.clone()),
        // The applicant's own people may not approve; an unknown application is not found.
        (
            Caller::new(Role::FinanceApprover, "cfo").with_enterprise("e-1"),
            large.id.clone(),
        ),
        (approver("wang"), "app-that-does-not-exist".into()),
        // Two approvers of a one-approver application: the second finds it approved.
        (approver("zhao"), small[0].id.clone()),
    ];
    for app in &small {
        asks.push((approver("wang"), app.id.clone()));
    }

    // All queued before the committer starts, so that they make one group.
    let (approvals, queue) = Approvals::new();
    let stop = CancellationToken::new();
    let asked = join_all(
        asks.iter()
            .map(|(who, id)| approvals.approve(who, id, " 材料齐全 ")),
    );
    let committer = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        run(svc.pool.clone(), queue, stop.clone()).await;
    };
    let (outcomes, ()) = tokio::join!(
        async {
            let outcomes = asked.await;
            stop.cancel();
            outcomes
        },
        committer
    );
    let answers: Vec<Result<SubsidyApplication, Error>> =
        outcomes.into_iter().map(answer).collect();

    // Wang's and Li's approvals of the large application went in successive rounds: the
    // second saw the first and completed it.
    let first = answers[0].as_ref().expect("wang approves");
    assert_eq!(first.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(first.approvals.len(), 1);
    let second = answers[1].as_ref().expect("li approves");
    assert_eq!(second.status, ApplicationStatus::Approved as i32);
    let names: Vec<&str> = second
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    assert_eq!(names, ["wang", "li"]);
    assert_eq!(second, &application(&svc, &large.id).await);
    assert_eq!(second.approvals[1].note, "材料齐全", "the note is trimmed");
    assert!(
        matches!(answers[2], Err(Error::PermissionDenied(_))),
        "{:?}",
        answers[2]
    );
    assert!(
        matches!(answers[3], Err(Error::NotFound(_))),
        "{:?}",
        answers[3]
    );
    // Zhao came first for small[0]; Wang's approval of it, in the next round, is refused.
    let zhao = answers[4].as_ref().expect("zhao approves");
    assert_eq!(zhao.status, ApplicationStatus::Approved as i32);
    assert!(
        matches!(answers[5], Err(Error::FailedPrecondition(_))),
        "{:?}",
        answers[5]
    );
    for (app, answer) in small.iter().zip(&answers[5..]).skip(1) {
        let answer = answer.as_ref().expect("wang approves the rest");
        assert_eq!(answer.status, ApplicationStatus::Approved as i32);
        assert_eq!(answer, &application(&svc, &app.id).await);
    }

    // One kc.subsidy.approved per approved application, no more; one audit entry per
    // approval granted; the trail intact.
    let approved: Vec<&str> = std::iter::once(large.id.as_str())
        .chain(small.iter().map(|a| a.id.as_str()))
        .collect();
    eventually(
        Duration::from_secs(10),
        "every approval published",
        || async { svc.events_of("subsidy.approved").await.len() >= approved.len() },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut published: Vec<String> = svc
        .events_of("subsidy.approved")
        .await
        .into_iter()
        .map(|e| e.aggregate_id)
        .collect();
    published.sort();
    let mut expected: Vec<String> = approved.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(published, expected);
    let mut c = client(&svc).await;
    let auditor = svc.token(Role::Auditor, "audit", None);
    let report = c
        .verify_audit_trail(authed(VerifyAuditTrailRequest {}, &auditor))
        .await
        .unwrap()
        .into_inner();
    assert!(report.intact, "{report:?}");
    let granted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'application.approved'")
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    assert_eq!(
        granted, 6,
        "wang and li on the large one, zhao and wang's three others"
    );
    svc.stop().await;
}

#[tokio::test]
async fn concurrent_approval_calls_each_get_their_application_as_a_read_gives_it() {
    let svc = start().await;
    let apps = small_applications(&svc, 12).await;
    let token = approver(&svc, "wang");
    let answers = join_all(apps.iter().map(|app| {
        let svc = &svc;
        let token = token.clone();
        async move {
            let mut c = client(svc).await;
            c.approve_application(authed(
                ApproveApplicationRequest {
                    id: app.id.clone(),
                    note: String::new(),
                },
                &token,
            ))
            .await
            .map(|r| r.into_inner())
        }
    }))
    .await;
    for (app, answer) in apps.iter().zip(answers) {
        let answer = answer.expect("approved");
        assert_eq!(answer.status, ApplicationStatus::Approved as i32);
        assert_eq!(answer, application(&svc, &app.id).await);
    }
    // And approving them again, together, is refused for each.
    let again = join_all(apps.iter().map(|app| {
        let svc = &svc;
        let token = approver(svc, "li");
        async move {
            client(svc)
                .await
                .approve_application(authed(
                    ApproveApplicationRequest {
                        id: app.id.clone(),
                        note: String::new(),
                    },
                    &token,
                ))
                .await
        }
    }))
    .await;
    for refused in again {
        assert_eq!(refused.unwrap_err().code(), tonic::Code::FailedPrecondition);
    }
    eventually(
        Duration::from_secs(10),
        "every approval published",
        || async { svc.events_of("subsidy.approved").await.len() >= apps.len() },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(svc.events_of("subsidy.approved").await.len(), apps.len());
    svc.stop().await;
}
