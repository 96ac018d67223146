use crate::helpers::*;
use kechuang_platform::Role;
use kechuang_platform::error::field_violations;
use kechuang_platform::testing::authed;
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::ApplicationStatus;
use tonic::Code;

#[tokio::test]
async fn payments_create_applications_computed_by_the_seeded_policy() {
    let svc = start().await;
    let contract = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        5_000_000 * YUAN,
    )
    .await;
    let (p1, a1) = pay(&svc, "e-1", &contract, 1_000_000 * YUAN).await;
    assert_eq!(a1.status, ApplicationStatus::PendingReview as i32);
    assert_eq!(a1.amount_fen, 100_000 * YUAN);
    assert_eq!(
        a1.required_approvals, 1,
        "exactly the threshold: one approver"
    );
    assert_eq!(a1.policy_id, "pol-hubei-tech-contract");
    assert!(
        a1.computation.last().unwrap().contains("100,000.00 元"),
        "{:?}",
        a1.computation
    );
    let (_, a2) = pay(&svc, "e-1", &contract, 2_000_000 * YUAN).await;
    assert_eq!(a2.amount_fen, 200_000 * YUAN);
    assert_eq!(a2.required_approvals, 2, "above 100,000 yuan: four eyes");

    // A repeated bank reference returns the first payment; with another amount it is refused.
    let mut c = client(&svc).await;
    let token = enterprise_token(&svc, "e-1");
    let again = c
        .record_payment(authed(
            payment(&contract, 1_000_000 * YUAN, &p1.bank_reference),
            &token,
        ))
        .await;
    let refused = again.unwrap_err();
    assert_eq!(
        refused.code(),
        Code::InvalidArgument,
        "paid_at differs: {refused:?}"
    );
    let mut same = payment(&contract, p1.amount_fen, &p1.bank_reference);
    same.paid_at = p1.paid_at;
    let repeat = c
        .record_payment(authed(same, &token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repeat.id, p1.id);
    assert_eq!(repeat.application_id, p1.application_id);

    // The total paid never exceeds the contract.
    let over = c
        .record_payment(authed(
            payment(&contract, 2_000_001 * YUAN, "BANK-OVER-1"),
            &token,
        ))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&over)[0].0, "amount_fen");

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM applications")
        .fetch_one(&svc.pool)
        .await
        .unwrap();
    assert_eq!(count, 2);
    svc.stop().await;
}

#[tokio::test]
async fn bad_payments_name_the_field_and_write_nothing() {
    let svc = start().await;
    let contract = sign(&svc, "e-1", "420100", ContractType::Transfer, 1_000 * YUAN).await;
    let mut c = client(&svc).await;
    let token = enterprise_token(&svc, "e-1");
    let future = chrono::Utc::now() + chrono::Duration::days(2);
    let cases: Vec<(&str, kechuang_proto::subsidy::RecordPaymentRequest)> = vec![
        ("amount_fen", payment(&contract, 0, "BANK-0001")),
        ("amount_fen", payment(&contract, -5, "BANK-0002")),
        ("contract_id", payment("", 100, "BANK-0003")),
        ("bank_reference", payment(&contract, 100, "")),
        ("bank_reference", payment(&contract, 100, &"X".repeat(65))),
        ("paid_at", {
            let mut p = payment(&contract, 100, "BANK-0004");
            p.paid_at = None;
            p
        }),
        ("paid_at", {
            let mut p = payment(&contract, 100, "BANK-0005");
            p.paid_at = Some(kechuang_platform::events::timestamp(future));
            p
        }),
        ("paid_at", {
            let mut p = payment(&contract, 100, "BANK-0006");
            p.paid_at = Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -3,
            });
            p
        }),
    ];
    for (field, request) in cases {
        let status = c.record_payment(authed(request, &token)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            field_violations(&status).iter().any(|(f, _)| f == field),
            "{field}: {status:?}"
        );
    }
    let (payments, applications): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM applications)",
    )
    .fetch_one(&svc.pool)
    .await
    .unwrap();
    assert_eq!((payments, applications), (0, 0));

    // Someone else's contract does not exist for this enterprise; other roles may not pay.
    let other = enterprise_token(&svc, "e-2");
    let status = c
        .record_payment(authed(payment(&contract, 100, "BANK-0007"), &other))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let officer = svc.token(Role::FinanceOfficer, "officer", None);
    let status = c
        .record_payment(authed(payment(&contract, 100, "BANK-0008"), &officer))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    svc.stop().await;
}

#[tokio::test]
async fn ineligible_payments_get_an_application_that_says_why() {
    let svc = start().await;
    let beijing = sign(
        &svc,
        "e-1",
        "110100",
        ContractType::Transfer,
        1_000_000 * YUAN,
    )
    .await;
    let (_, a) = pay(&svc, "e-1", &beijing, 100_000 * YUAN).await;
    assert_eq!(a.status, ApplicationStatus::Ineligible as i32);
    assert_eq!(a.amount_fen, 0);
    assert!(a.status_reason.contains("110100"), "{}", a.status_reason);
    let consulting = sign(
        &svc,
        "e-1",
        "420100",
        ContractType::Consulting,
        1_000_000 * YUAN,
    )
    .await;
    let (_, a) = pay(&svc, "e-1", &consulting, 100_000 * YUAN).await;
    assert_eq!(a.status, ApplicationStatus::Ineligible as i32);
    assert!(a.status_reason.contains("技术咨询"), "{}", a.status_reason);
    svc.stop().await;
}

#[tokio::test]
async fn concurrent_payments_of_one_enterprise_never_exceed_the_annual_cap() {
    let svc = start().await;
    let a = sign(
        &svc,
        "e-9",
        "420100",
        ContractType::Transfer,
        100_000_000 * YUAN,
    )
    .await;
    let b = sign(
        &svc,
        "e-9",
        "420500",
        ContractType::License,
        100_000_000 * YUAN,
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let contract = if i % 2 == 0 { a.clone() } else { b.clone() };
        let channel = svc.channel().await;
        let token = enterprise_token(&svc, "e-9");
        tasks.push(tokio::spawn(async move {
            let mut c =
                kechuang_proto::subsidy::subsidy_service_client::SubsidyServiceClient::new(channel);
            c.record_payment(authed(
                payment(&contract, 500_000 * YUAN, &format!("BANK-CAP-{i:04}")),
                &token,
            ))
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // 24 × 500,000 paid = 12 M; 10 % = 1.2 M, capped at exactly 1,000,000 yuan.
    let granted: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM applications")
            .fetch_one(&svc.pool)
            .await
            .unwrap();
    assert_eq!(granted, 1_000_000 * YUAN);
    svc.stop().await;
}

/// Another enterprise learns nothing of a payment it does not own: not by naming the contract,
/// not by reusing its bank reference.
#[tokio::test]
async fn another_enterprises_payments_are_invisible_to_it() {
    let svc = start().await;
    let contract_a = sign(
        &svc,
        "e-a",
        "420100",
        ContractType::Transfer,
        1_000_000 * YUAN,
    )
    .await;
    let contract_b = sign(
        &svc,
        "e-b",
        "420100",
        ContractType::Transfer,
        1_000_000 * YUAN,
    )
    .await;
    let (paid_a, _) = pay(&svc, "e-a", &contract_a, 100_000 * YUAN).await;
    let mut c = client(&svc).await;
    let b = enterprise_token(&svc, "e-b");

    // A's exact request, replayed by B: as if the contract did not exist.
    let mut replay = payment(&contract_a, paid_a.amount_fen, &paid_a.bank_reference);
    replay.paid_at = paid_a.paid_at;
    let refused = c.record_payment(authed(replay, &b)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let unknown = c
        .record_payment(authed(payment("c-nobody", 100, "BANK-NOBODY"), &b))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(
        refused.message().replace(&contract_a, "ID"),
        unknown.message().replace("c-nobody", "ID"),
        "another's contract answers exactly like an unknown one"
    );

    // B's own contract with A's bank reference: B's own reference space, not "already used".
    let own = c
        .record_payment(authed(
            payment(&contract_b, 100_000 * YUAN, &paid_a.bank_reference),
            &b,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(own.id, paid_a.id);
    assert_eq!(own.contract_id, contract_b);
    svc.stop().await;
}
