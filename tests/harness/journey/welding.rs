//! The whole flow of one demand: a car-body maker's welding defects, cured by a university's
//! adaptive laser-arc welding; the contract is paid in two instalments and 10 % of each comes
//! back from the fund (the large one after two approvers, four eyes).
//!
//! In two halves, [`to_contract`] and [`to_subsidy`], so a test can act in between.

use super::{Journey, achievement, publish};
use crate::books::Tally;
use crate::{Api, YUAN};
use kechuang_platform::Role;
use kechuang_platform::events::timestamp;
use kechuang_proto::common::ContractType;
use kechuang_proto::demand as dpb;
use kechuang_proto::matching as mpb;
use kechuang_proto::subsidy as spb;

pub const CONTRACT_FEN: i64 = 5_000_000 * YUAN;
/// The two instalments the enterprise pays.
pub const INSTALMENTS_FEN: [i64; 2] = [1_000_000 * YUAN, 2_000_000 * YUAN];
/// What one journey disburses: 10 % of what was paid.
pub const SUBSIDY_FEN: i64 = 300_000 * YUAN;

/// The catalog: the achievement that solves the problem and two that share its world only.
pub async fn publish_catalog(api: &Api) {
    publish(
        api,
        vec![
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
        ],
    )
    .await;
}

/// A demand that reached a signed contract.
pub struct Contracted<'a> {
    pub journey: Journey<'a>,
    pub demand_id: String,
    pub contract_id: String,
    /// Every pairing pushed to the demand.
    pub pairings: Vec<mpb::Pairing>,
}

/// The enterprise `seed` (unique on the platform) registers and posts its welding demand, a
/// manager verifies it, the sky net pairs it (the welding achievement first, with reasons),
/// the enterprise accepts that pairing and signs a contract: the demand is CONTRACTED.
pub async fn to_contract<'a>(api: &'a Api, seed: &str) -> Contracted<'a> {
    let journey = Journey::new(api, seed);
    journey
        .register("武汉楚天焊装科技有限公司", "高端装备")
        .await;
    let deadline = timestamp(chrono::Utc::now() + chrono::Duration::days(90));
    let demand = journey
        .submit_verified(dpb::SubmitDemandRequest {
            request_id: format!("demand-{seed}"),
            enterprise_id: String::new(),
            title: "汽车焊装线焊缝经常出现气孔，返修率高".into(),
            description:
                "我公司生产汽车白车身，焊装线焊缝经常出现气孔，返修率高达8%，希望引进焊接工艺改进技术。"
                    .into(),
            industry_chain: "高端装备".into(),
            contract_type: ContractType::Transfer as i32,
            budget_min_fen: 100_000 * YUAN,
            budget_max_fen: 1_000_000 * YUAN,
            region_code: "420100".into(),
            deadline: Some(deadline),
        })
        .await;

    let pairings = journey.pairings(&demand.id).await;
    let best = &pairings[0];
    assert_eq!(best.rank, 1, "{pairings:?}");
    let best_achievement = journey.achievement(&best.achievement_id).await;
    assert!(
        best_achievement.title.contains("焊接"),
        "best pairing: {}",
        best_achievement.title
    );
    assert!(!best.reasons.is_empty());
    journey
        .demand_in(&demand.id, dpb::DemandStatus::Matching)
        .await;

    journey.accept(&best.id).await;
    journey
        .demand_in(&demand.id, dpb::DemandStatus::Docking)
        .await;
    let contract = journey
        .sign(mpb::SignContractRequest {
            request_id: format!("contract-{seed}"),
            pairing_id: best.id.clone(),
            contract_no: format!("鄂技合字2026-{seed}"),
            contract_type: ContractType::Transfer as i32,
            amount_fen: CONTRACT_FEN,
            signed_at: None,
        })
        .await;
    journey
        .demand_in(&demand.id, dpb::DemandStatus::Contracted)
        .await;
    Contracted {
        journey,
        demand_id: demand.id,
        contract_id: contract.id,
        pairings,
    }
}

/// The enterprise pays in two instalments, each making an application: the first before the
/// registrar certifies the contract (it waits for the registration, then is judged), the
/// second after. One approver approves the small one, two different approvers the large one;
/// both are disbursed and the demand is COMPLETED. Returns the application ids.
pub async fn to_subsidy(contracted: &Contracted<'_>) -> Vec<String> {
    let journey = &contracted.journey;
    let seed = &journey.seed;
    let mut application_ids = Vec::new();
    for (k, amount) in INSTALMENTS_FEN.into_iter().enumerate() {
        let reference = format!("ICBC-{seed}-{k:04}");
        let payment = journey
            .pay(&contracted.contract_id, amount, &reference)
            .await;
        if k == 0 {
            let waiting = journey.application(&payment.application_id).await;
            assert_eq!(
                waiting.status,
                spb::ApplicationStatus::AwaitingRegistration as i32,
                "before registration: {}",
                waiting.status_reason
            );
            // The whole contract is technical (a transfer of the process itself).
            journey
                .certify(
                    &contracted.contract_id,
                    ContractType::Transfer,
                    CONTRACT_FEN,
                )
                .await;
        }
        application_ids.push(payment.application_id);
    }
    let small = journey.application(&application_ids[0]).await;
    let large = journey.application(&application_ids[1]).await;
    assert_eq!(
        (small.amount_fen, small.required_approvals),
        (100_000 * YUAN, 1)
    );
    assert_eq!(
        (large.amount_fen, large.required_approvals),
        (200_000 * YUAN, 2),
        "four eyes above 100,000 yuan"
    );

    let approver_a = journey.api.token(Role::FinanceApprover, "李处长", None);
    let approver_b = journey.api.token(Role::FinanceApprover, "赵科长", None);
    journey.approve(&small.id, &approver_a).await;
    let waiting = journey.approve(&large.id, &approver_a).await;
    assert_eq!(
        waiting.status,
        spb::ApplicationStatus::PendingReview as i32,
        "one approval is not enough"
    );
    journey.approve(&large.id, &approver_b).await;

    for id in &application_ids {
        journey
            .application_in(id, spb::ApplicationStatus::Disbursed)
            .await;
    }
    journey
        .demand_in(&contracted.demand_id, dpb::DemandStatus::Completed)
        .await;
    application_ids
}

/// The rows `journeys` runs of this flow leave, each demand paired `pairings` times, after a
/// top-up of `top_up_fen`: one contract, two payments, two disbursed applications (three
/// approvals), two payouts paid at the first attempt, one reservation and one post per
/// application; each demand moved once through every status.
pub fn tally(journeys: i64, pairings: i64, top_up_fen: i64) -> Tally {
    let n = usize::try_from(journeys).expect("a count");
    let subsidies = journeys * SUBSIDY_FEN;
    Tally {
        pairings_per_demand: vec![pairings; n],
        contracts: (journeys, journeys),
        payments: 2 * journeys,
        applications: [("DISBURSED".to_string(), 2 * journeys)].into(),
        approvals: 3 * journeys,
        payouts: [("PAID".to_string(), (2 * journeys, 2 * journeys))].into(),
        transfers: [
            ("top_up".to_string(), (1, 1, top_up_fen)),
            (
                "reserve".to_string(),
                (2 * journeys, 2 * journeys, subsidies),
            ),
            ("post".to_string(), (2 * journeys, 2 * journeys, subsidies)),
        ]
        .into(),
        demand_paths: vec!["submitted>verified>matching>docking>contracted>completed".into(); n],
    }
}
