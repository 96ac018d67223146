//! The disbursement saga between the finance net and the real fund ledger: a short fund
//! waitlists and a top-up pays; a failed payout voids the reservation and frees the money.

use kechuang_e2e::{TestPlatform, authed, settings};
use kechuang_platform::events::timestamp;
use kechuang_platform::vocabulary::credit_code_check_char;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand::{self as dpb, demand_service_client::DemandServiceClient};
use kechuang_proto::fund::{self as fpb, fund_service_client::FundServiceClient};
use kechuang_proto::matching::catalog_service_client::CatalogServiceClient;
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::matching::{self as mpb};
use kechuang_proto::subsidy::{self as spb, subsidy_service_client::SubsidyServiceClient};
use std::time::{Duration, Instant};

const YUAN: i64 = 100;

async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Drives one demand to a signed contract and a recorded, approved payment of `paid_fen`;
/// returns the application id.
async fn approved_application(p: &TestPlatform, paid_fen: i64) -> String {
    let matching_channel = p.channel(ServiceKind::Matching).await;
    let mut catalog = CatalogServiceClient::new(matching_channel.clone());
    let mut matching = MatchingServiceClient::new(matching_channel);
    let mut demands = DemandServiceClient::new(p.channel(ServiceKind::DemandIntake).await);
    let mut subsidy = SubsidyServiceClient::new(p.channel(ServiceKind::Subsidy).await);
    let body = "91420100KHGA00001";
    let enterprise_id = format!("{body}{}", credit_code_check_char(body).unwrap());
    let enterprise = p.token(Role::Enterprise, "财务", Some(&enterprise_id));
    let manager = p.token(Role::TechManager, "经理", None);
    catalog
        .register_achievement(authed(
            mpb::RegisterAchievementRequest {
                request_id: "saga-ach".into(),
                institution: "武汉理工大学".into(),
                title: "数据中心液冷与智能温控节能技术".into(),
                r#abstract: "针对机房空调能耗高、PUE偏高的问题，采用液冷与智能温控降低数据中心能耗。".into(),
                keywords: vec!["液冷".into(), "PUE".into(), "节能".into()],
                industry_chain: "节能环保".into(),
                trl: 8,
                transfer_modes: vec![TransferMode::License as i32],
                asking_price_fen: 500_000 * YUAN,
                region_code: "420111".into(),
            },
            &p.token(Role::Supplier, "供方", None),
        ))
        .await
        .unwrap();
    demands
        .register_enterprise(authed(
            dpb::RegisterEnterpriseRequest {
                name: "武汉云端数据有限公司".into(),
                credit_code: enterprise_id.clone(),
                region_code: "420100".into(),
                industry_chain: "节能环保".into(),
            },
            &manager,
        ))
        .await
        .unwrap();
    let demand =
        demands
            .submit_demand(authed(
                dpb::SubmitDemandRequest {
                    request_id: "saga-demand".into(),
                    enterprise_id: enterprise_id.clone(),
                    title: "数据中心机房空调电费太高".into(),
                    description:
                        "我公司数据中心机房空调电费太高，PUE 长期在 1.8 以上，希望引进节能技术。"
                            .into(),
                    industry_chain: "节能环保".into(),
                    contract_type: ContractType::License as i32,
                    budget_min_fen: 100_000 * YUAN,
                    budget_max_fen: 1_000_000 * YUAN,
                    region_code: "420100".into(),
                    deadline: Some(timestamp(chrono::Utc::now() + chrono::Duration::days(60))),
                },
                &enterprise,
            ))
            .await
            .unwrap()
            .into_inner();
    demands
        .verify_demand(authed(
            dpb::VerifyDemandRequest {
                demand_id: demand.id.clone(),
                approve: true,
                note: String::new(),
            },
            &manager,
        ))
        .await
        .unwrap();
    let pairing = poll("a pairing", || {
        let (mut m, id, t) = (matching.clone(), demand.id.clone(), enterprise.clone());
        async move {
            let r = mpb::ListPairingsRequest {
                demand_id: id,
                page_size: 5,
                page_token: String::new(),
            };
            m.list_pairings(authed(r, &t))
                .await
                .ok()?
                .into_inner()
                .pairings
                .into_iter()
                .find(|x| x.rank == 1)
        }
    })
    .await;
    matching
        .respond_to_pairing(authed(
            mpb::RespondToPairingRequest {
                pairing_id: pairing.id.clone(),
                accept: true,
                note: String::new(),
            },
            &enterprise,
        ))
        .await
        .unwrap();
    let contract = matching
        .sign_contract(authed(
            mpb::SignContractRequest {
                request_id: "saga-contract".into(),
                pairing_id: pairing.id,
                contract_no: "鄂技许2026-0042".into(),
                contract_type: ContractType::License as i32,
                amount_fen: paid_fen,
                signed_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::days(1))),
            },
            &enterprise,
        ))
        .await
        .unwrap()
        .into_inner();
    let request = spb::RecordPaymentRequest {
        contract_id: contract.id,
        amount_fen: paid_fen,
        paid_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::hours(1))),
        bank_reference: "CCB-SAGA-0001".into(),
    };
    let payment = poll("the contract in the finance net", || {
        let (mut s, r, t) = (subsidy.clone(), request.clone(), enterprise.clone());
        async move { s.record_payment(authed(r, &t)).await.ok() }
    })
    .await
    .into_inner();
    let approver = p.token(Role::FinanceApprover, "审批人", None);
    subsidy
        .approve_application(authed(
            spb::ApproveApplicationRequest {
                id: payment.application_id.clone(),
                note: String::new(),
            },
            &approver,
        ))
        .await
        .unwrap();
    payment.application_id
}

async fn wait_status(
    p: &TestPlatform,
    id: &str,
    want: spb::ApplicationStatus,
) -> spb::SubsidyApplication {
    let mut s = SubsidyServiceClient::new(p.channel(ServiceKind::Subsidy).await);
    let auditor = p.token(Role::Auditor, "审计", None);
    poll(&format!("{want:?}"), || {
        let (mut s, t, id) = (s.clone(), auditor.clone(), id.to_string());
        async move {
            let a = s
                .get_application(authed(spb::GetApplicationRequest { id }, &t))
                .await
                .ok()?
                .into_inner();
            (a.status == want as i32).then_some(a)
        }
    })
    .await;
    s.get_application(authed(
        spb::GetApplicationRequest { id: id.into() },
        &auditor,
    ))
    .await
    .unwrap()
    .into_inner()
}

async fn fund(p: &TestPlatform) -> (fpb::Fund, Vec<String>) {
    let mut f = FundServiceClient::new(p.channel(ServiceKind::FundLedger).await);
    let auditor = p.token(Role::Auditor, "审计", None);
    let fund = f
        .get_fund(authed(
            fpb::GetFundRequest {
                fund_id: "fund-default".into(),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    let report = f
        .reconcile(authed(
            fpb::ReconcileRequest {
                fund_id: String::new(),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    (fund, report.violations)
}

#[tokio::test]
async fn a_short_fund_waitlists_and_a_top_up_pays() {
    let p = TestPlatform::start().await;
    // The seeded fund starts empty: the approved subsidy (100,000 yuan) must wait.
    let id = approved_application(&p, 1_000_000 * YUAN).await;
    let waiting = wait_status(&p, &id, spb::ApplicationStatus::Waitlisted).await;
    assert!(
        waiting.status_reason.contains("资金不足"),
        "{}",
        waiting.status_reason
    );
    let mut f = FundServiceClient::new(p.channel(ServiceKind::FundLedger).await);
    let officer = p.token(Role::FinanceOfficer, "专员", None);
    f.top_up(authed(
        fpb::TopUpRequest {
            fund_id: "fund-default".into(),
            amount_fen: 500_000 * YUAN,
            reference: "财预〔2026〕7号".into(),
        },
        &officer,
    ))
    .await
    .unwrap();
    wait_status(&p, &id, spb::ApplicationStatus::Disbursed).await;
    let (fund_after, violations) = poll("the post", || {
        let p = &p;
        async move {
            let (f, v) = fund(p).await;
            (f.disbursed_fen == 100_000 * YUAN).then_some((f, v))
        }
    })
    .await;
    assert_eq!(
        (fund_after.available_fen, fund_after.reserved_fen),
        (400_000 * YUAN, 0)
    );
    assert!(violations.is_empty(), "{violations:?}");
    p.stop().await;
}

#[tokio::test]
async fn a_failed_payout_voids_the_reservation_and_frees_the_money() {
    let mut s = settings();
    s.payout_failure_rate = 1.0;
    s.payout_max_attempts = 2;
    let p = TestPlatform::start_with(s).await;
    let mut f = FundServiceClient::new(p.channel(ServiceKind::FundLedger).await);
    let officer = p.token(Role::FinanceOfficer, "专员", None);
    f.top_up(authed(
        fpb::TopUpRequest {
            fund_id: "fund-default".into(),
            amount_fen: 500_000 * YUAN,
            reference: "财预〔2026〕8号".into(),
        },
        &officer,
    ))
    .await
    .unwrap();
    let id = approved_application(&p, 1_000_000 * YUAN).await;
    let failed = wait_status(&p, &id, spb::ApplicationStatus::DisbursementFailed).await;
    assert!(
        failed.status_reason.contains("simulated bank"),
        "{}",
        failed.status_reason
    );
    let (fund_after, violations) = poll("the void", || {
        let p = &p;
        async move {
            let (f, v) = fund(p).await;
            (f.reserved_fen == 0 && f.available_fen == 500_000 * YUAN).then_some((f, v))
        }
    })
    .await;
    assert_eq!(fund_after.disbursed_fen, 0, "nothing was paid");
    assert!(violations.is_empty(), "{violations:?}");
    p.stop().await;
}
