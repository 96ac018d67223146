//! Time is evidence (issue 20, item 2): a payment is made after its contract was signed, not in
//! the future, and claimed within its policy's window; so a year's cap cannot be drawn again by
//! dating payments into past years.

use crate::helpers::*;
use chrono::{DateTime, Duration, Utc};
use kechuang_platform::error::field_violations;
use kechuang_platform::events::timestamp;
use kechuang_platform::testing::{TestService, authed};
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::ApplicationStatus;
use tonic::Code;

/// The service with a ten-year registration window: these tests sign contracts years ago and
/// are about the time rules, so their contracts are certified (at their whole amount) first.
async fn start_long_window() -> TestService {
    let mut settings = kechuang_platform::testing::isolated_settings();
    settings.registration_window_days = 3650;
    TestService::start_with(
        settings,
        kechuang_platform::ServiceKind::Subsidy,
        subsidy::build,
    )
    .await
}

/// [`sign_at`], certified at its whole amount.
async fn signed_and_certified(
    svc: &TestService,
    enterprise: &str,
    amount_fen: i64,
    signed_at: DateTime<Utc>,
) -> String {
    let id = sign_at(
        svc,
        enterprise,
        "420100",
        ContractType::Transfer,
        amount_fen,
        signed_at,
    )
    .await;
    certify(svc, &id, ContractType::Transfer, amount_fen)
        .await
        .unwrap();
    id
}

/// A payment of `contract` at `paid_at`, refused naming paid_at.
async fn refused(svc: &TestService, enterprise: &str, contract: &str, paid_at: DateTime<Utc>) {
    let mut request = payment(
        contract,
        1_000 * YUAN,
        &format!("BANK-{}", uuid::Uuid::new_v4().simple()),
    );
    request.paid_at = Some(timestamp(paid_at));
    let status = client(svc)
        .await
        .record_payment(authed(request, &enterprise_token(svc, enterprise)))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{paid_at}: {status:?}"
    );
    let fields: Vec<String> = field_violations(&status).into_iter().map(|f| f.0).collect();
    assert_eq!(fields, ["paid_at"], "{paid_at}: {status:?}");
}

/// A payment of `contract` at `paid_at`: its application.
async fn paid(
    svc: &TestService,
    enterprise: &str,
    contract: &str,
    amount_fen: i64,
    paid_at: DateTime<Utc>,
) -> kechuang_proto::subsidy::SubsidyApplication {
    let mut request = payment(
        contract,
        amount_fen,
        &format!("BANK-{}", uuid::Uuid::new_v4().simple()),
    );
    request.paid_at = Some(timestamp(paid_at));
    let p = client(svc)
        .await
        .record_payment(authed(request, &enterprise_token(svc, enterprise)))
        .await
        .unwrap()
        .into_inner();
    application(svc, &p.application_id).await
}

async fn payments(svc: &TestService) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&svc.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn payments_before_signing_in_the_future_or_past_the_claim_window_are_refused() {
    let svc = start_long_window().await;
    let now = Utc::now();
    let signed_at = now - Duration::days(30);
    let recent = signed_and_certified(&svc, "e-1", 1_000_000 * YUAN, signed_at).await;
    refused(&svc, "e-1", &recent, signed_at - Duration::seconds(1)).await;
    refused(&svc, "e-1", &recent, signed_at - Duration::days(365)).await;
    refused(&svc, "e-1", &recent, now + Duration::minutes(30)).await;
    // An old contract: a payment made under it 400 days ago is past the seeded 365-day window.
    let old = signed_and_certified(&svc, "e-1", 1_000_000 * YUAN, now - Duration::days(800)).await;
    refused(&svc, "e-1", &old, now - Duration::days(400)).await;
    assert_eq!(payments(&svc).await, 0, "nothing written");

    // The very moment of the signing, and a day inside the window, are fine.
    let at_signing = paid(&svc, "e-1", &recent, 1_000 * YUAN, signed_at).await;
    assert_eq!(at_signing.status, ApplicationStatus::PendingReview as i32);
    let inside = paid(&svc, "e-1", &old, 1_000 * YUAN, now - Duration::days(364)).await;
    assert_eq!(inside.status, ApplicationStatus::PendingReview as i32);
    svc.stop().await;
}

#[tokio::test]
async fn the_policy_in_force_sets_the_claim_window() {
    let svc = start().await;
    let mut request = wuhan("w-30");
    request.claim_window_days = 30;
    let short = propose(&svc, "wang.fang", request).await;
    assert_eq!(short.claim_window_days, 30);
    approve_policy(&svc, "li.na", &short.id).await.unwrap();
    let now = Utc::now();
    let in_wuhan = sign_at(
        &svc,
        "e-1",
        "420100",
        ContractType::Transfer,
        1_000_000 * YUAN,
        now - Duration::days(100),
    )
    .await;
    refused(&svc, "e-1", &in_wuhan, now - Duration::days(40)).await;
    let a = paid(
        &svc,
        "e-1",
        &in_wuhan,
        1_000 * YUAN,
        now - Duration::days(20),
    )
    .await;
    assert_eq!(a.policy_id, short.id);
    // Elsewhere in Hubei the seeded rule's year applies.
    let yichang = sign_at(
        &svc,
        "e-1",
        "420500",
        ContractType::Transfer,
        1_000_000 * YUAN,
        now - Duration::days(100),
    )
    .await;
    let b = paid(
        &svc,
        "e-1",
        &yichang,
        1_000 * YUAN,
        now - Duration::days(40),
    )
    .await;
    assert_eq!(b.policy_id, subsidy::seed::HUBEI_POLICY_ID);

    // A window outside 1..=3650 days is refused at proposal.
    for days in [-1, 3651] {
        let mut request = wuhan(&format!("w-{days}"));
        request.claim_window_days = days;
        let status = policies(&svc)
            .await
            .create_policy(authed(request, &officer(&svc, "wang.fang")))
            .await
            .unwrap_err();
        assert_eq!(
            field_violations(&status)[0].0,
            "claim_window_days",
            "{status:?}"
        );
    }
    svc.stop().await;
}

/// Issue 20: three contracts, each paid in another past year, drew three years' caps (2.94
/// million yuan pending against a cap of 1 million). Payments outside the claim window are
/// refused now; what is pending stays within one year's cap.
#[tokio::test]
async fn backdated_payments_cannot_draw_past_years_caps() {
    let svc = start_long_window().await;
    let now = Utc::now();
    let mut contracts = Vec::new();
    for _ in 0..3 {
        contracts.push(
            signed_and_certified(
                &svc,
                "e-7",
                10_000_000 * YUAN,
                now - Duration::days(3 * 365),
            )
            .await,
        );
    }
    refused(
        &svc,
        "e-7",
        &contracts[0],
        now - Duration::days(2 * 365 + 30),
    )
    .await;
    refused(&svc, "e-7", &contracts[1], now - Duration::days(380)).await;
    let this_year = paid(
        &svc,
        "e-7",
        &contracts[2],
        9_999_999 * YUAN,
        now - Duration::hours(1),
    )
    .await;
    assert_eq!(
        this_year.amount_fen,
        999_999 * YUAN + 90,
        "10 % of 9,999,999 yuan"
    );
    let pending: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount_fen), 0)::BIGINT FROM applications WHERE status = 'PENDING_REVIEW'",
    )
    .fetch_one(&svc.pool)
    .await
    .unwrap();
    assert!(
        pending <= 1_000_000 * YUAN,
        "{pending} fen pending against a 1,000,000-yuan cap"
    );
    svc.stop().await;
}
