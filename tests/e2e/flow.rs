//! One demand, end to end, through the four real services: DESIGN.md's flow.

use kechuang_e2e::{TestPlatform, authed};
use kechuang_platform::vocabulary::credit_code_check_char;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::common::{ContractType, TransferMode};
use kechuang_proto::demand::{self as dpb, demand_service_client::DemandServiceClient};
use kechuang_proto::fund::{self as fpb, fund_service_client::FundServiceClient};
use kechuang_proto::matching::catalog_service_client::CatalogServiceClient;
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::matching::{self as mpb};
use kechuang_proto::subsidy::{self as spb, subsidy_service_client::SubsidyServiceClient};
use std::future::Future;
use std::time::{Duration, Instant};

const YUAN: i64 = 100;

async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
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

fn credit_code(seed: &str) -> String {
    let body = format!("91420100{seed:0>9}");
    format!("{body}{}", credit_code_check_char(&body).unwrap())
}

fn achievement(
    title: &str,
    abstract_text: &str,
    keywords: &[&str],
    chain: &str,
    price_yuan: i64,
) -> mpb::RegisterAchievementRequest {
    mpb::RegisterAchievementRequest {
        request_id: format!("ach-{title}"),
        institution: "华中科技大学".into(),
        title: title.into(),
        r#abstract: abstract_text.into(),
        keywords: keywords.iter().map(|k| k.to_string()).collect(),
        industry_chain: chain.into(),
        trl: 7,
        transfer_modes: vec![
            TransferMode::Assignment as i32,
            TransferMode::License as i32,
        ],
        asking_price_fen: price_yuan * YUAN,
        region_code: "420111".into(),
    }
}

#[tokio::test]
async fn one_demand_from_submission_to_subsidy() {
    let platform = TestPlatform::start().await;
    let demand_channel = platform.channel(ServiceKind::DemandIntake).await;
    let matching_channel = platform.channel(ServiceKind::Matching).await;
    let mut demands = DemandServiceClient::new(demand_channel);
    let mut catalog = CatalogServiceClient::new(matching_channel.clone());
    let mut matching = MatchingServiceClient::new(matching_channel);
    let mut subsidy = SubsidyServiceClient::new(platform.channel(ServiceKind::Subsidy).await);
    let mut fund = FundServiceClient::new(platform.channel(ServiceKind::FundLedger).await);

    let enterprise_id = credit_code("WELD00001");
    let officer = platform.token(Role::FinanceOfficer, "王会计", None);
    let manager = platform.token(Role::TechManager, "周经理", None);
    let supplier = platform.token(Role::Supplier, "陈老师", None);
    let enterprise = platform.token(Role::Enterprise, "刘总", Some(&enterprise_id));
    let approver_a = platform.token(Role::FinanceApprover, "李处长", None);
    let approver_b = platform.token(Role::FinanceApprover, "赵科长", None);
    let auditor = platform.token(Role::Auditor, "孙审计", None);

    // The treasury tops up the seeded fund.
    fund.top_up(authed(
        fpb::TopUpRequest {
            fund_id: "fund-default".into(),
            amount_fen: 1_000_000 * YUAN,
            reference: "财预〔2026〕1号".into(),
        },
        &officer,
    ))
    .await
    .unwrap();

    // Suppliers publish achievements: the one that solves the problem, and others.
    for a in [
        achievement(
            "激光-电弧复合焊接工艺参数自适应调控",
            "针对焊缝气孔、未熔合等缺陷，提出激光-电弧复合焊接工艺参数在线自适应调控方法，显著降低返修率。",
            &["激光焊接", "电弧焊", "气孔", "焊缝质量"],
            "高端装备",
            800_000,
        ),
        achievement(
            "分布式光纤振动传感与入侵识别",
            "利用分布式光纤振动传感实现管道沿线第三方施工入侵的实时识别与定位。",
            &["分布式光纤传感", "入侵识别"],
            "光电子信息",
            500_000,
        ),
        achievement(
            "动力电池低温自加热与热管理技术",
            "解决动力电池低温续航衰减问题。",
            &["电池热管理", "低温加热"],
            "新能源与智能网联汽车",
            600_000,
        ),
    ] {
        catalog
            .register_achievement(authed(a, &supplier))
            .await
            .unwrap();
    }

    // The ground net: an enterprise is registered and posts a demand; a manager verifies it.
    demands
        .register_enterprise(authed(
            dpb::RegisterEnterpriseRequest {
                name: "武汉楚天焊装科技有限公司".into(),
                credit_code: enterprise_id.clone(),
                region_code: "420100".into(),
                industry_chain: "高端装备".into(),
            },
            &manager,
        ))
        .await
        .unwrap();
    let demand = demands
        .submit_demand(authed(
            dpb::SubmitDemandRequest {
                request_id: "flow-demand-1".into(),
                enterprise_id: enterprise_id.clone(),
                title: "汽车焊装线焊缝经常出现气孔，返修率高".into(),
                description: "我公司生产汽车白车身，焊装线焊缝经常出现气孔，返修率高达8%，希望引进焊接工艺改进技术。".into(),
                industry_chain: "高端装备".into(),
                contract_type: ContractType::Transfer as i32,
                budget_min_fen: 100_000 * YUAN,
                budget_max_fen: 1_000_000 * YUAN,
                region_code: "420100".into(),
                deadline: Some(kechuang_platform::events::timestamp(chrono::Utc::now() + chrono::Duration::days(90))),
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
                note: "需求明确".into(),
            },
            &manager,
        ))
        .await
        .unwrap();

    let demand_status = |want: dpb::DemandStatus| {
        let (c, id, token) = (demands.clone(), demand.id.clone(), enterprise.clone());
        async move {
            wait_for(&format!("demand {want:?}"), || {
                let (mut c, id, token) = (c.clone(), id.clone(), token.clone());
                async move {
                    let d = c
                        .get_demand(authed(dpb::GetDemandRequest { demand_id: id }, &token))
                        .await
                        .ok()?
                        .into_inner();
                    (d.status == want as i32).then_some(d)
                }
            })
            .await
        }
    };

    // The sky net pushes pairings; the welding achievement ranks first, with reasons.
    let pairings = wait_for("pairings", || {
        let (mut m, id, token) = (matching.clone(), demand.id.clone(), enterprise.clone());
        async move {
            let page = m
                .list_pairings(authed(
                    mpb::ListPairingsRequest {
                        demand_id: id,
                        page_size: 10,
                        page_token: String::new(),
                    },
                    &token,
                ))
                .await
                .ok()?
                .into_inner();
            (!page.pairings.is_empty()).then_some(page.pairings)
        }
    })
    .await;
    let best = pairings
        .iter()
        .find(|p| p.rank == 1)
        .expect("a rank-1 pairing");
    let best_achievement = catalog
        .get_achievement(authed(
            mpb::GetAchievementRequest {
                achievement_id: best.achievement_id.clone(),
            },
            &enterprise,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        best_achievement.title.contains("焊接"),
        "best pairing: {}",
        best_achievement.title
    );
    assert!(!best.reasons.is_empty());
    demand_status(dpb::DemandStatus::Matching).await;

    // Docking, then a contract.
    matching
        .respond_to_pairing(authed(
            mpb::RespondToPairingRequest {
                pairing_id: best.id.clone(),
                accept: true,
                note: String::new(),
            },
            &enterprise,
        ))
        .await
        .unwrap();
    demand_status(dpb::DemandStatus::Docking).await;
    let contract = matching
        .sign_contract(authed(
            mpb::SignContractRequest {
                request_id: "flow-contract-1".into(),
                pairing_id: best.id.clone(),
                contract_no: "鄂技合字2026-0001".into(),
                contract_type: ContractType::Transfer as i32,
                amount_fen: 5_000_000 * YUAN,
                signed_at: Some(kechuang_platform::events::timestamp(
                    chrono::Utc::now() - chrono::Duration::days(2),
                )),
            },
            &enterprise,
        ))
        .await
        .unwrap()
        .into_inner();
    demand_status(dpb::DemandStatus::Contracted).await;

    // The enterprise pays in two instalments; each makes an application.
    let mut application_ids = Vec::new();
    for (k, amount) in [1_000_000 * YUAN, 2_000_000 * YUAN].into_iter().enumerate() {
        let request = spb::RecordPaymentRequest {
            contract_id: contract.id.clone(),
            amount_fen: amount,
            paid_at: Some(kechuang_platform::events::timestamp(
                chrono::Utc::now() - chrono::Duration::hours(5 - k as i64),
            )),
            bank_reference: format!("ICBC-2026-{k:04}"),
        };
        let payment = wait_for("the contract to reach the finance net", || {
            let (mut s, r, token) = (subsidy.clone(), request.clone(), enterprise.clone());
            async move { s.record_payment(authed(r, &token)).await.ok() }
        })
        .await
        .into_inner();
        application_ids.push(payment.application_id);
    }
    let reader = subsidy.clone();
    let get = |id: String| {
        let (mut s, token) = (reader.clone(), auditor.clone());
        async move {
            s.get_application(authed(spb::GetApplicationRequest { id }, &token))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let small = get(application_ids[0].clone()).await;
    let large = get(application_ids[1].clone()).await;
    assert_eq!(
        (small.amount_fen, small.required_approvals),
        (100_000 * YUAN, 1)
    );
    assert_eq!(
        (large.amount_fen, large.required_approvals),
        (200_000 * YUAN, 2),
        "four eyes above 100,000 yuan"
    );

    // Approval: one approver for the small one; two different ones for the large one.
    let approve = |id: &str| spb::ApproveApplicationRequest {
        id: id.to_string(),
        note: "同意".into(),
    };
    subsidy
        .approve_application(authed(approve(&small.id), &approver_a))
        .await
        .unwrap();
    subsidy
        .approve_application(authed(approve(&large.id), &approver_a))
        .await
        .unwrap();
    let waiting = get(large.id.clone()).await;
    assert_eq!(
        waiting.status,
        spb::ApplicationStatus::PendingReview as i32,
        "one approval is not enough"
    );
    subsidy
        .approve_application(authed(approve(&large.id), &approver_b))
        .await
        .unwrap();

    for id in &application_ids {
        wait_for("the subsidy to be disbursed", || {
            let fut = get(id.clone());
            async move {
                let a = fut.await;
                (a.status == spb::ApplicationStatus::Disbursed as i32).then_some(())
            }
        })
        .await;
    }
    demand_status(dpb::DemandStatus::Completed).await;

    // The ledger is exact to the fen and reconciles.
    let f = wait_for("the ledger to post both transfers", || {
        let (mut f, token) = (fund.clone(), auditor.clone());
        async move {
            let f = f
                .get_fund(authed(
                    fpb::GetFundRequest {
                        fund_id: "fund-default".into(),
                    },
                    &token,
                ))
                .await
                .ok()?
                .into_inner();
            (f.reserved_fen == 0 && f.disbursed_fen == 300_000 * YUAN).then_some(f)
        }
    })
    .await;
    assert_eq!(f.available_fen, 700_000 * YUAN);
    assert_eq!(f.total_fen, 1_000_000 * YUAN);
    let report = fund
        .reconcile(authed(
            fpb::ReconcileRequest {
                fund_id: String::new(),
            },
            &auditor,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(report.violations.is_empty(), "{:?}", report.violations);

    platform.stop().await;
}
