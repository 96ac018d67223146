//! The subsidy calculator: how much of a payment the fund refunds. Pure arithmetic in fen.
//!
//! The policy's tiers apply to the enterprise's cumulative eligible paid amount in the calendar
//! year, like tax brackets: each part of the cumulative amount is refunded at its tier's ratio.
//! A payment's exact entitlement is the increase of that tiered amount it causes, kept exact
//! (in fen × basis points) and summed per contract; the contract's grant so far is that sum
//! rounded down to the fen, so rounding never accumulates and never overpays. The grant of one
//! payment is the contract's rounded entitlement minus what the contract was already granted,
//! capped by what is left of the per-contract cap and of the enterprise's annual cap.

use super::money::{BPS_SCALE, percent, yuan};
use super::policy::{Kind, Policy, Tier};

/// What is already known when a payment arrives (only payments whose applications are still
/// alive count: not rejected, ineligible or failed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// The enterprise's eligible paid amount this calendar year before this payment.
    pub enterprise_paid_in_year_fen: i64,
    /// What the enterprise has been granted this calendar year.
    pub enterprise_granted_in_year_fen: i64,
    /// Exact entitlement of this contract's earlier payments, in fen × bps.
    pub contract_entitled_exact: i64,
    /// What this contract has been granted.
    pub contract_granted_fen: i64,
}

/// The outcome for one payment, with every step for the people who check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub amount_fen: i64,
    /// This payment's exact entitlement, in fen × bps (before caps).
    pub entitled_exact: i64,
    pub steps: Vec<String>,
}

/// The tiered amount of a cumulative paid amount, exact in fen × bps.
pub fn tiered_exact(tiers: &[Tier], cumulative_fen: i64) -> i64 {
    let mut total: i64 = 0;
    for (i, tier) in tiers.iter().enumerate() {
        if cumulative_fen <= tier.from_cumulative_fen {
            break;
        }
        let upper = tiers.get(i + 1).map_or(cumulative_fen, |next| {
            next.from_cumulative_fen.min(cumulative_fen)
        });
        let portion = upper - tier.from_cumulative_fen;
        total = total.saturating_add(portion.saturating_mul(i64::from(tier.ratio_bps)));
    }
    total
}

/// Computes the grant for a payment of `payment_fen` under `policy`.
pub fn compute(policy: &Policy, standing: Standing, payment_fen: i64) -> Grant {
    let mut steps = Vec::new();
    let tiers = &policy.tiers;
    // A reward's tiers and annual cap are the broker's; a subsidy's the enterprise's.
    let (who, what) = match policy.kind {
        Kind::Subsidy => ("企业", "补贴"),
        Kind::BrokerReward => ("经纪人", "奖励"),
    };
    steps.push(format!(
        "适用政策：{}（第 {} 版），分档比例：{}",
        policy.name,
        policy.version,
        tiers
            .iter()
            .map(|t| format!(
                "累计 {} 起 {}",
                yuan(t.from_cumulative_fen),
                percent(t.ratio_bps)
            ))
            .collect::<Vec<_>>()
            .join("；")
    ));
    let before = standing.enterprise_paid_in_year_fen;
    let after = before.saturating_add(payment_fen);
    let entitled_exact = tiered_exact(tiers, after) - tiered_exact(tiers, before);
    steps.push(format!(
        "本次计补基数 {}；{who}本年度此前累计基数 {}，累计至 {}；按档应补 {}",
        yuan(payment_fen),
        yuan(before),
        yuan(after),
        yuan(entitled_exact / BPS_SCALE)
    ));
    let contract_exact = standing
        .contract_entitled_exact
        .saturating_add(entitled_exact);
    let contract_due = contract_exact / BPS_SCALE;
    let by_ratio = (contract_due - standing.contract_granted_fen).max(0);
    steps.push(format!(
        "合同累计应补 {}（向下取整到分），已核定 {}，本次按比例 {}",
        yuan(contract_due),
        yuan(standing.contract_granted_fen),
        yuan(by_ratio)
    ));
    let contract_room = (policy.per_contract_cap_fen - standing.contract_granted_fen).max(0);
    let year_room =
        (policy.per_enterprise_annual_cap_fen - standing.enterprise_granted_in_year_fen).max(0);
    let mut amount = by_ratio;
    if amount > contract_room {
        steps.push(format!(
            "单合同上限 {}，本合同尚余 {}",
            yuan(policy.per_contract_cap_fen),
            yuan(contract_room)
        ));
        amount = contract_room;
    }
    if amount > year_room {
        steps.push(format!(
            "{who}年度上限 {}，本年度已核定 {}，尚余 {}",
            yuan(policy.per_enterprise_annual_cap_fen),
            yuan(standing.enterprise_granted_in_year_fen),
            yuan(year_room)
        ));
        amount = year_room;
    }
    steps.push(format!("核定{what} {}", yuan(amount)));
    Grant {
        amount_fen: amount,
        entitled_exact,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::tests::hubei_policy;
    use proptest::prelude::*;

    const YUAN: i64 = 100;

    /// Applies payments in order, as the service does, returning each grant.
    fn run(policy: &Policy, payments: &[(usize, i64)]) -> Vec<i64> {
        let mut standing_year = (0i64, 0i64);
        let mut contracts: std::collections::HashMap<usize, (i64, i64)> = Default::default();
        payments
            .iter()
            .map(|&(contract, paid)| {
                let (exact, granted) = contracts.get(&contract).copied().unwrap_or_default();
                let g = compute(
                    policy,
                    Standing {
                        enterprise_paid_in_year_fen: standing_year.0,
                        enterprise_granted_in_year_fen: standing_year.1,
                        contract_entitled_exact: exact,
                        contract_granted_fen: granted,
                    },
                    paid,
                );
                standing_year = (standing_year.0 + paid, standing_year.1 + g.amount_fen);
                contracts.insert(contract, (exact + g.entitled_exact, granted + g.amount_fen));
                g.amount_fen
            })
            .collect()
    }

    #[test]
    fn three_payments_of_one_million_yuan_give_three_hundred_thousand() {
        let grants = run(&hubei_policy(), &[(1, 1_000_000 * YUAN); 3]);
        assert_eq!(grants, [100_000 * YUAN; 3]);
    }

    #[test]
    fn fifteen_million_paid_is_capped_at_one_million() {
        assert_eq!(
            run(&hubei_policy(), &[(1, 15_000_000 * YUAN)]),
            [1_000_000 * YUAN]
        );
    }

    #[test]
    fn a_second_contract_in_the_same_year_shares_the_cap() {
        let grants = run(
            &hubei_policy(),
            &[
                (1, 8_000_000 * YUAN),
                (2, 4_000_000 * YUAN),
                (2, 1_000_000 * YUAN),
            ],
        );
        assert_eq!(grants, [800_000 * YUAN, 200_000 * YUAN, 0]);
    }

    #[test]
    fn a_new_year_resets_the_cap() {
        let policy = hubei_policy();
        let last_year = run(&policy, &[(1, 15_000_000 * YUAN)]);
        // A new year: the standing starts from zero again; the contract's own history stays.
        let g = compute(
            &policy,
            Standing {
                enterprise_paid_in_year_fen: 0,
                enterprise_granted_in_year_fen: 0,
                contract_entitled_exact: 0,
                contract_granted_fen: 0,
            },
            2_000_000 * YUAN,
        );
        assert_eq!(last_year, [1_000_000 * YUAN]);
        assert_eq!(g.amount_fen, 200_000 * YUAN);
    }

    #[test]
    fn tiers_refund_each_part_at_its_ratio() {
        let mut policy = hubei_policy();
        policy.tiers = vec![
            Tier {
                from_cumulative_fen: 0,
                ratio_bps: 1000,
            },
            Tier {
                from_cumulative_fen: 1_000_000 * YUAN,
                ratio_bps: 500,
            },
        ];
        // 1.5 M: 1 M at 10 % + 0.5 M at 5 % = 125,000; paid in two parts crossing the tier.
        assert_eq!(
            run(&policy, &[(1, 600_000 * YUAN), (1, 900_000 * YUAN)]),
            [60_000 * YUAN, 65_000 * YUAN]
        );
    }

    #[test]
    fn rounding_is_down_and_does_not_accumulate() {
        // 10 % of 0.05 yuan is half a fen: the first grant is 0, the second catches up.
        assert_eq!(run(&hubei_policy(), &[(1, 5), (1, 5)]), [0, 1]);
        assert_eq!(run(&hubei_policy(), &[(1, 19)]), [1]);
    }

    #[test]
    fn the_per_contract_cap_does_not_leak_into_another_contract() {
        let mut policy = hubei_policy();
        policy.per_contract_cap_fen = 100 * YUAN;
        let grants = run(&policy, &[(1, 2_000 * YUAN), (2, 10 * YUAN)]);
        assert_eq!(grants, [100 * YUAN, YUAN]);
    }

    #[test]
    fn the_steps_explain_the_cap() {
        let mut policy = hubei_policy();
        policy.per_contract_cap_fen = 2_000_000 * YUAN;
        let g = compute(&policy, Standing::default(), 15_000_000 * YUAN);
        assert!(
            g.steps
                .iter()
                .any(|s| s.contains("企业年度上限 1,000,000.00 元")),
            "{:?}",
            g.steps
        );
        assert_eq!(g.steps.last().unwrap(), "核定补贴 1,000,000.00 元");
    }

    proptest! {
        /// Within an enterprise-year the total granted never exceeds the annual cap, nor the
        /// tiered amount of the total paid (ratio × paid for one tier), nor any contract's cap.
        #[test]
        fn grants_never_exceed_caps_or_ratio(
            payments in proptest::collection::vec((0usize..4, 1i64..5_000_000 * YUAN), 1..30),
            ratio in 1i32..=10_000,
            contract_cap in 1i64..2_000_000 * YUAN,
            annual_cap in 1i64..3_000_000 * YUAN,
        ) {
            let mut policy = hubei_policy();
            policy.tiers = vec![Tier { from_cumulative_fen: 0, ratio_bps: ratio }];
            policy.per_contract_cap_fen = contract_cap;
            policy.per_enterprise_annual_cap_fen = annual_cap;
            let grants = run(&policy, &payments);
            let total: i64 = grants.iter().sum();
            let paid: i64 = payments.iter().map(|p| p.1).sum();
            prop_assert!(grants.iter().all(|g| *g >= 0));
            prop_assert!(total <= annual_cap);
            prop_assert!(i128::from(total) * 10_000 <= i128::from(paid) * i128::from(ratio));
            for c in 0..4 {
                let per: i64 = payments.iter().zip(&grants).filter(|(p, _)| p.0 == c).map(|(_, g)| g).sum();
                prop_assert!(per <= contract_cap);
            }
        }

        /// Without caps biting, paying in parts grants exactly what one payment would: rounding
        /// happens once, on the contract's cumulative entitlement.
        #[test]
        fn splitting_a_payment_never_pays_more(parts in proptest::collection::vec(1i64..1_000_000, 1..10)) {
            let policy = hubei_policy();
            let whole: i64 = parts.iter().sum();
            let split: i64 = run(&policy, &parts.iter().map(|p| (0usize, *p)).collect::<Vec<_>>()).iter().sum();
            let single = run(&policy, &[(0, whole)])[0];
            prop_assert_eq!(split, single);
        }
    }
}
