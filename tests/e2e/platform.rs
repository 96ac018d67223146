use kechuang_e2e::{TestPlatform, authed};
use kechuang_platform::ServiceKind;
use kechuang_platform::auth::{Caller, Issuer, Role, unix_now};
use kechuang_proto::demand::{GetDemandRequest, demand_service_client::DemandServiceClient};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn every_service_is_healthy_and_refuses_bad_tokens() {
    let platform = TestPlatform::start().await;
    let expected = [
        (
            ServiceKind::DemandIntake,
            vec!["kechuang.demand.v1.DemandService"],
        ),
        (
            ServiceKind::Matching,
            vec![
                "kechuang.matching.v1.CatalogService",
                "kechuang.matching.v1.MatchingService",
            ],
        ),
        (
            ServiceKind::Subsidy,
            vec![
                "kechuang.subsidy.v1.PolicyService",
                "kechuang.subsidy.v1.SubsidyService",
                "kechuang.subsidy.v1.RegistrationService",
            ],
        ),
        (
            ServiceKind::FundLedger,
            vec!["kechuang.fund.v1.FundService"],
        ),
    ];
    for (kind, names) in expected {
        let mut health = HealthClient::new(platform.channel(kind).await);
        for name in names.into_iter().chain([""]) {
            let status = health
                .check(HealthCheckRequest {
                    service: name.into(),
                })
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .into_inner()
                .status;
            assert_eq!(
                status,
                ServingStatus::Serving as i32,
                "{} {name}",
                kind.name()
            );
        }
    }

    let mut demand = DemandServiceClient::new(platform.channel(ServiceKind::DemandIntake).await);
    let request = || GetDemandRequest {
        demand_id: "d-1".into(),
    };
    let missing = demand.get_demand(request()).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);

    let caller = Caller::new(Role::Auditor, "auditor");
    let issuer = platform.settings.issuer().expect("the test issuer");
    let now = unix_now();
    let expired = issuer.mint_at(&caller, now - 7200, now - 3600);
    let status = demand
        .get_demand(authed(request(), &expired))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("xpired"), "{}", status.message());

    // Another issuer's key, however well formed the token.
    let stranger = Issuer::generate(platform.settings.tokens().rules)
        .mint(&caller, std::time::Duration::from_secs(60));
    let status = demand
        .get_demand(authed(request(), &stranger))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // A token signed with the shared development secret of old (HS256): refused, whatever
    // it claims.
    let claims = serde_json::json!({
        "sub": "li", "roles": ["finance_approver"], "role": "finance_approver",
        "iss": platform.settings.token_issuer, "aud": platform.settings.token_audience,
        "iat": now, "exp": now + 600,
    });
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(
            b"kechuang-development-secret-do-not-use-in-production",
        ),
    )
    .unwrap();
    let status = demand
        .get_demand(authed(request(), &hs256))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("HS256"), "{}", status.message());

    let status = demand
        .get_demand(authed(request(), "garbage"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let good = platform.token(Role::Auditor, "auditor", None);
    let outcome = demand.get_demand(authed(request(), &good)).await;
    assert_ne!(outcome.err().map(|s| s.code()), Some(Code::Unauthenticated));

    platform.stop().await;
}
