//! The finance office puts a policy in force the way the rules demand: the officer proposes
//! it, an approver who is another person approves it (maker–checker). Until then the seeded
//! Hubei rule alone computes subsidies.

use super::clients::{Cast, Clients, authed};
use kechuang_proto::subsidy as spb;
use tonic::Code;

/// Wuhan's first-purchase rule (region 4201): 15 % of what an enterprise pays up to 1,000,000
/// yuan in a year, 10 % above, at most 500,000 yuan a contract and 1,000,000 a year.
fn wuhan() -> spb::CreatePolicyRequest {
    let mut r = subsidy::seed::hubei_policy_request();
    r.request_id = "demo:wuhan-first-purchase".into();
    r.name = "武汉市技术合同首购首用补贴".into();
    r.region_prefixes = vec!["4201".into()];
    r.tiers = vec![
        spb::PolicyTier {
            from_cumulative_fen: 0,
            ratio_bps: 1500,
        },
        spb::PolicyTier {
            from_cumulative_fen: 100_000_000,
            ratio_bps: 1000,
        },
    ];
    r.per_contract_cap_fen = 50_000_000;
    r
}

/// Proposed by the officer, approved by the first approver; a rerun finds it decided.
pub async fn wuhan_in_force(clients: &Clients, cast: &Cast) -> anyhow::Result<spb::Policy> {
    let mut c = clients.policy.clone();
    let proposed = c
        .create_policy(authed(wuhan(), &cast.officer))
        .await?
        .into_inner();
    let request = spb::ApprovePolicyRequest {
        policy_id: proposed.id.clone(),
        note: "复核：比例与上限符合市级政策文件".into(),
    };
    match c.approve_policy(authed(request, &cast.approver_1)).await {
        Ok(decided) => Ok(decided.into_inner()),
        // Decided by an earlier run.
        Err(s) if s.code() == Code::FailedPrecondition => Ok(proposed),
        Err(s) => Err(s.into()),
    }
}

/// The broker-reward rule the demo puts in force (issue 24): 1 % of the certified technical
/// amount actually paid, at most 50,000 yuan a deal and 300,000 yuan a broker a year, two
/// approvers above 20,000 yuan, from a fund of its own (created and topped up with
/// `top_up_fen` here). Proposed by the officer, approved by the second approver; a rerun finds
/// the fund and the policy as they were.
pub async fn broker_rewards_in_force(
    clients: &Clients,
    cast: &Cast,
    seed: u64,
    top_up_fen: i64,
) -> anyhow::Result<spb::Policy> {
    let mut fund = clients.fund.clone();
    let created = fund
        .create_fund(authed(
            kechuang_proto::fund::CreateFundRequest {
                request_id: "demo:broker-rewards-fund".into(),
                name: "技术经理人、技术经纪人奖励资金".into(),
                low_balance_fen: top_up_fen / 10,
            },
            &cast.officer,
        ))
        .await?
        .into_inner();
    fund.top_up(authed(
        kechuang_proto::fund::TopUpRequest {
            fund_id: created.id.clone(),
            amount_fen: top_up_fen,
            reference: format!("DEMO-BROKER-TOPUP-{seed}"),
        },
        &cast.officer,
    ))
    .await?;
    let mut r = subsidy::seed::hubei_policy_request();
    r.request_id = "demo:broker-rewards".into();
    r.name = "湖北省技术经理人、技术经纪人促成奖励".into();
    r.kind = spb::PolicyKind::BrokerReward as i32;
    r.fund_id = created.id;
    r.tiers = vec![spb::PolicyTier {
        from_cumulative_fen: 0,
        ratio_bps: 100,
    }];
    r.per_contract_cap_fen = 5_000_000;
    r.per_enterprise_annual_cap_fen = 30_000_000;
    r.four_eyes_threshold_fen = 2_000_000;
    r.contract_types = vec![];
    let mut c = clients.policy.clone();
    let proposed = c
        .create_policy(authed(r, &cast.officer))
        .await?
        .into_inner();
    let request = spb::ApprovePolicyRequest {
        policy_id: proposed.id.clone(),
        note: "复核：奖励比例与上限符合省级政策".into(),
    };
    match c.approve_policy(authed(request, &cast.approver_2)).await {
        Ok(decided) => Ok(decided.into_inner()),
        Err(s) if s.code() == Code::FailedPrecondition => Ok(proposed),
        Err(s) => Err(s.into()),
    }
}
