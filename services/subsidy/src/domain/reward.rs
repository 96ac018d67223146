//! Rewards for brokers (经纪人奖励): the person who facilitated a deal (the broker the
//! enterprise named when it accepted the pairing, else the technology manager who verified the
//! demand) is rewarded when the deal's contract is certified and paid, under a policy of the
//! broker-reward kind.
//!
//! The reward's base is the payment's eligible base: its pro-rata share of the certified
//! technical amount (see [`super::eligibility`]), computed from the certification itself, so
//! a deal is rewarded whether or not a subsidy policy covers the enterprise. The reward
//! policy's tiers apply to the broker's cumulative base in the payment's calendar year; its
//! per-contract cap caps one deal's rewards and its per-enterprise annual cap one broker's
//! rewards in a year. A payment makes no reward when the contract is not certified, has no
//! facilitator, no reward policy in force covers it, or its base is nothing.

use super::calculator::{self, Standing};
use super::eligibility::{Decision, PaymentCase, Registration, pro_rata_base};
use super::money::yuan;
use super::policy::{Choice, Kind, PaymentFacts, Policy, choose};
use super::timing;

/// The reward a payment makes for `facilitator`, or `None` when it makes none.
pub fn judge(
    in_force: &[Policy],
    case: &PaymentCase<'_>,
    facilitator: &str,
    standing: Standing,
) -> Option<Decision> {
    if facilitator.trim().is_empty() {
        return None;
    }
    let Registration::Certified {
        contract_type,
        certified_amount_fen,
    } = case.registration
    else {
        return None;
    };
    let facts = PaymentFacts {
        paid_at: case.paid_at,
        contract_type: *contract_type,
        region_code: case.contract.region_code,
        industry_chain: case.contract.industry_chain,
    };
    let Choice::Applies(policy) = choose(in_force, Kind::BrokerReward, &facts) else {
        return None;
    };
    // A payment claimed after the reward policy's window makes no reward (the subsidy is
    // judged under its own policy's window).
    timing::check_claim_window(case.paid_at, case.claimed_at, policy).ok()?;
    let base = pro_rata_base(
        *certified_amount_fen,
        case.contract.amount_fen,
        case.paid_before_fen,
        case.payment_fen,
    );
    if base <= 0 {
        return None;
    }
    let grant = calculator::compute(policy, standing, base);
    let base_step = format!(
        "经纪人 {}：合同认定技术交易额 {}，本次实付 {}，按比例计入奖励基数 {}",
        facilitator.trim(),
        yuan(*certified_amount_fen),
        yuan(case.payment_fen),
        yuan(base)
    );
    Some(Decision::computed(
        policy,
        base,
        base_step,
        grant,
        "按奖励政策核定的奖励为零（已达上限或金额过小）",
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::application::Status;
    use crate::domain::eligibility::ContractFacts;
    use crate::domain::policy::Tier;
    use crate::domain::policy::tests::hubei_policy;
    use chrono::{DateTime, TimeDelta, TimeZone, Utc};
    use kechuang_proto::common::ContractType;

    const YUAN: i64 = 100;

    /// 2 % of the certified amount paid, at most 50,000 yuan a deal and 80,000 yuan a broker a
    /// year, in Hubei, from its own fund.
    pub fn reward_policy() -> Policy {
        let mut p = hubei_policy();
        p.id = "p-reward".into();
        p.name = "湖北省技术经纪人奖励".into();
        p.kind = Kind::BrokerReward;
        p.fund_id = "fund-rewards".into();
        p.tiers = vec![Tier {
            from_cumulative_fen: 0,
            ratio_bps: 200,
        }];
        p.per_contract_cap_fen = 50_000 * YUAN;
        p.per_enterprise_annual_cap_fen = 80_000 * YUAN;
        p.four_eyes_threshold_fen = 10_000 * YUAN;
        p
    }

    fn paid_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 2, 0, 0).unwrap()
    }

    fn case<'a>(
        registration: &'a Registration,
        contract_fen: i64,
        paid_before: i64,
        payment: i64,
    ) -> PaymentCase<'a> {
        PaymentCase {
            payment_fen: payment,
            paid_at: paid_at(),
            claimed_at: paid_at() + TimeDelta::days(1),
            paid_before_fen: paid_before,
            contract: ContractFacts {
                amount_fen: contract_fen,
                declared_type: ContractType::Development,
                region_code: "420100",
                industry_chain: "高端装备",
            },
            registration,
        }
    }

    fn certified(fen: i64) -> Registration {
        Registration::Certified {
            contract_type: ContractType::Development,
            certified_amount_fen: fen,
        }
    }

    #[test]
    fn the_reward_is_the_ratio_of_the_certified_amount_paid_to_the_fen() {
        // 1,000,000.00 certified at 777,777.77, paid 333,333.33: base ⌊33333333 × 77777777 /
        // 100000000⌋ = 25,925,925 fen; 2 % of it is 518,518.5 fen, rounded down.
        let reg = certified(77_777_777);
        let policies = [hubei_policy(), reward_policy()];
        let d = judge(
            &policies,
            &case(&reg, 100_000_000, 0, 33_333_333),
            "周经理",
            Standing::default(),
        )
        .unwrap();
        assert_eq!(d.status, Status::PendingReview);
        assert_eq!(d.eligible_base_fen, 25_925_925);
        assert_eq!(d.amount_fen, 518_518);
        assert_eq!(
            d.policy,
            Some(("p-reward".to_string(), "fund-rewards".to_string()))
        );
        assert_eq!(d.required_approvals, 1);
        assert!(d.steps[0].contains("周经理"), "{:?}", d.steps);
        assert!(
            d.steps.last().unwrap().starts_with("核定奖励"),
            "{:?}",
            d.steps
        );
    }

    #[test]
    fn no_reward_without_a_facilitator_a_certification_or_a_reward_policy() {
        let reg = certified(1_000_000 * YUAN);
        let c = case(&reg, 1_000_000 * YUAN, 0, 1_000_000 * YUAN);
        let both = [hubei_policy(), reward_policy()];
        assert!(judge(&both, &c, "", Standing::default()).is_none());
        assert!(judge(&both, &c, "  ", Standing::default()).is_none());
        // Only a subsidy policy in force: it never computes a reward.
        assert!(judge(&[hubei_policy()], &c, "周经理", Standing::default()).is_none());
        // A reward policy never computes a subsidy either.
        let d =
            crate::domain::eligibility::judge(&[reward_policy()], &c, Standing::default()).unwrap();
        assert_eq!(d.status, Status::Ineligible);
        assert!(d.policy.is_none());
        for reg in [
            Registration::Waiting {
                deadline: paid_at() + TimeDelta::days(10),
            },
            Registration::Expired,
            Registration::Refused {
                reason: "非技术合同".into(),
            },
        ] {
            let c = case(&reg, 1_000_000 * YUAN, 0, 1_000_000 * YUAN);
            assert!(judge(&both, &c, "周经理", Standing::default()).is_none());
        }
    }

    #[test]
    fn a_deal_is_capped_and_so_is_a_broker_year() {
        let policy = reward_policy();
        // 3,000,000 certified and paid in full: 2 % is 60,000, the deal's cap 50,000.
        let reg = certified(3_000_000 * YUAN);
        let d = judge(
            std::slice::from_ref(&policy),
            &case(&reg, 3_000_000 * YUAN, 0, 3_000_000 * YUAN),
            "周经理",
            Standing::default(),
        )
        .unwrap();
        assert_eq!(d.amount_fen, 50_000 * YUAN);
        assert_eq!(d.required_approvals, 2);
        // A second deal the same year: 2,000,000 → 40,000 by ratio, but only 30,000 of the
        // broker's 80,000 is left.
        let reg = certified(2_000_000 * YUAN);
        let d = judge(
            std::slice::from_ref(&policy),
            &case(&reg, 2_000_000 * YUAN, 0, 2_000_000 * YUAN),
            "周经理",
            Standing {
                enterprise_paid_in_year_fen: 3_000_000 * YUAN,
                enterprise_granted_in_year_fen: 50_000 * YUAN,
                contract_entitled_exact: 0,
                contract_granted_fen: 0,
            },
        )
        .unwrap();
        assert_eq!(d.amount_fen, 30_000 * YUAN);
        assert!(
            d.steps
                .iter()
                .any(|s| s.contains("经纪人年度上限 80,000.00 元")),
            "{:?}",
            d.steps
        );
        // Nothing left: an ineligible reward that says so.
        let d = judge(
            std::slice::from_ref(&policy),
            &case(&reg, 2_000_000 * YUAN, 0, 2_000_000 * YUAN),
            "周经理",
            Standing {
                enterprise_paid_in_year_fen: 5_000_000 * YUAN,
                enterprise_granted_in_year_fen: 80_000 * YUAN,
                contract_entitled_exact: 0,
                contract_granted_fen: 0,
            },
        )
        .unwrap();
        assert_eq!((d.status, d.amount_fen), (Status::Ineligible, 0));
    }
}
