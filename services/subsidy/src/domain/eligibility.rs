//! Judging a payment: which policy covers it, which part of it counts, and what the
//! application says — under the contract's registration (技术合同认定登记).
//!
//! A policy that requires registration (the default) counts a payment only once its contract
//! is certified, and only its share of the certified technical amount (the contract amount
//! less equipment, materials and other non-technical parts). A contract paid in parts is
//! counted **pro rata**: after payments adding up to `P` of a contract of `A` certified at `C`,
//! the eligible base so far is `⌊P·C/A⌋`, and each payment adds the increase it causes. The
//! technical part is assumed to be paid in the same proportion as the whole, so paying the
//! equipment first or last changes nothing, an enterprise cannot front-load the base, and a
//! contract paid in full counts exactly `C`. Rounding is down (never overpay) and never
//! accumulates, because it is taken on the running total.
//!
//! A refusal is final whatever the policy: the registrar found it is not a technology
//! contract, and a policy that subsidises *unregistered* contracts still only means technology
//! contracts.

use super::application::Status;
use super::calculator::{self, Grant, Standing};
use super::money::yuan;
use super::policy::{Choice, Kind, PaymentFacts, Policy, choose};
use super::timing;
use chrono::{DateTime, FixedOffset, Utc};
use kechuang_platform::Error;
use kechuang_proto::common::ContractType;

/// Where the payment's contract stands in its registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Certified: the statutory type (as certified) and the technical amount.
    Certified {
        contract_type: ContractType,
        certified_amount_fen: i64,
    },
    /// Not decided, the window still open until `deadline`.
    Waiting { deadline: DateTime<Utc> },
    /// Not decided and the window has closed.
    Expired,
    /// Refused as not a technology contract.
    Refused { reason: String },
}

/// The contract a payment is made under.
#[derive(Debug, Clone, Copy)]
pub struct ContractFacts<'a> {
    pub amount_fen: i64,
    /// The type the parties declared; a certification may correct it.
    pub declared_type: ContractType,
    pub region_code: &'a str,
    pub industry_chain: &'a str,
}

/// One payment to judge.
#[derive(Debug, Clone, Copy)]
pub struct PaymentCase<'a> {
    pub payment_fen: i64,
    pub paid_at: DateTime<Utc>,
    /// When the payment was claimed (recorded): the policy's claim window ends there.
    pub claimed_at: DateTime<Utc>,
    /// What the contract's earlier payments add up to.
    pub paid_before_fen: i64,
    pub contract: ContractFacts<'a>,
    pub registration: &'a Registration,
}

/// What the application becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// PENDING_REVIEW, INELIGIBLE or AWAITING_REGISTRATION.
    pub status: Status,
    pub reason: String,
    /// The policy that covers the payment, if one does: `(id, fund_id)`.
    pub policy: Option<(String, String)>,
    pub eligible_base_fen: i64,
    pub amount_fen: i64,
    pub entitled_exact: i64,
    pub required_approvals: i32,
    pub steps: Vec<String>,
}

impl Decision {
    /// The calculator's `grant` on `base` under `policy`: PENDING_REVIEW, or INELIGIBLE with
    /// `zero_reason` when it comes to nothing; `base_step` first among the steps.
    pub(crate) fn computed(
        policy: &Policy,
        base: i64,
        base_step: String,
        grant: Grant,
        zero_reason: &str,
    ) -> Decision {
        let granted = grant.amount_fen > 0;
        let mut steps = vec![base_step];
        steps.extend(grant.steps);
        Decision {
            status: if granted {
                Status::PendingReview
            } else {
                Status::Ineligible
            },
            reason: if granted {
                String::new()
            } else {
                zero_reason.into()
            },
            policy: Some((policy.id.clone(), policy.fund_id.clone())),
            eligible_base_fen: base,
            amount_fen: grant.amount_fen,
            entitled_exact: if granted { grant.entitled_exact } else { 0 },
            required_approvals: policy.required_approvals(grant.amount_fen),
            steps,
        }
    }

    pub(crate) fn without_grant(
        status: Status,
        policy: Option<&Policy>,
        reason: String,
    ) -> Decision {
        Decision {
            status,
            steps: vec![reason.clone()],
            reason,
            policy: policy.map(|p| (p.id.clone(), p.fund_id.clone())),
            eligible_base_fen: 0,
            amount_fen: 0,
            entitled_exact: 0,
            required_approvals: 1,
        }
    }
}

/// The eligible base a payment of `payment_fen` adds, after `paid_before_fen` was paid under a
/// contract of `contract_fen` certified at `certified_fen` (see the module's rule).
pub fn pro_rata_base(
    certified_fen: i64,
    contract_fen: i64,
    paid_before_fen: i64,
    payment_fen: i64,
) -> i64 {
    if contract_fen <= 0 {
        return 0;
    }
    // The certified amount never exceeds the contract's; clamp anyway, so that a bad row
    // cannot make a base larger than the payment.
    let certified = i128::from(certified_fen.clamp(0, contract_fen));
    let share = |paid: i64| {
        let paid = i128::from(paid.clamp(0, contract_fen));
        // ≤ contract_fen, so it fits back in an i64.
        (paid * certified / i128::from(contract_fen)) as i64
    };
    share(paid_before_fen.saturating_add(payment_fen)) - share(paid_before_fen)
}

const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// Judges a payment under the policies in force. `Err` only when the chosen policy's claim
/// window had closed when the payment was claimed.
pub fn judge(
    in_force: &[Policy],
    case: &PaymentCase<'_>,
    standing: Standing,
) -> Result<Decision, Error> {
    let contract_type = match case.registration {
        Registration::Certified { contract_type, .. } => *contract_type,
        _ => case.contract.declared_type,
    };
    let facts = PaymentFacts {
        paid_at: case.paid_at,
        contract_type,
        region_code: case.contract.region_code,
        industry_chain: case.contract.industry_chain,
    };
    let policy = match choose(in_force, Kind::Subsidy, &facts) {
        Choice::Applies(policy) => policy,
        Choice::Ineligible(reasons) => {
            let mut d = Decision::without_grant(Status::Ineligible, None, reasons.join("；"));
            d.steps = reasons;
            return Ok(d);
        }
    };
    timing::check_claim_window(case.paid_at, case.claimed_at, policy)?;
    let (base, base_step) = match case.registration {
        Registration::Refused { reason } => {
            return Ok(Decision::without_grant(
                Status::Ineligible,
                Some(policy),
                format!("技术合同认定登记未通过，不予补贴：{reason}"),
            ));
        }
        Registration::Certified {
            certified_amount_fen,
            ..
        } => {
            let base = pro_rata_base(
                *certified_amount_fen,
                case.contract.amount_fen,
                case.paid_before_fen,
                case.payment_fen,
            );
            let step = format!(
                "合同金额 {}，认定技术交易额 {}；合同累计实付 {} 至 {}，按比例计入补贴基数 {}",
                yuan(case.contract.amount_fen),
                yuan(*certified_amount_fen),
                yuan(case.paid_before_fen),
                yuan(case.paid_before_fen.saturating_add(case.payment_fen)),
                yuan(base)
            );
            (base, step)
        }
        Registration::Waiting { .. } | Registration::Expired if policy.subsidise_unregistered => (
            case.payment_fen,
            format!(
                "合同尚未认定登记，本政策亦补贴未登记的技术合同：按实付全额 {} 计入补贴基数",
                yuan(case.payment_fen)
            ),
        ),
        Registration::Waiting { deadline } => {
            return Ok(Decision::without_grant(
                Status::AwaitingRegistration,
                Some(policy),
                format!(
                    "等待技术合同认定登记（登记截止 {}）：本政策只补贴已登记的合同，登记后按认定的技术交易额核定",
                    deadline
                        .with_timezone(&CHINA)
                        .format("%Y-%m-%d %H:%M UTC+8")
                ),
            ));
        }
        Registration::Expired => {
            return Ok(Decision::without_grant(
                Status::Ineligible,
                Some(policy),
                "合同未在登记期限内完成技术合同认定登记，本政策只补贴已登记的合同".into(),
            ));
        }
    };
    let grant = calculator::compute(policy, standing, base);
    Ok(Decision::computed(
        policy,
        base,
        base_step,
        grant,
        "按政策核定的补贴为零（已达上限或金额过小）",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::tests::hubei_policy as hubei;
    use chrono::{TimeDelta, TimeZone};
    use proptest::prelude::*;

    const YUAN: i64 = 100;

    fn paid_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 2, 0, 0).unwrap()
    }

    fn case<'a>(registration: &'a Registration, paid_before: i64, payment: i64) -> PaymentCase<'a> {
        PaymentCase {
            payment_fen: payment,
            paid_at: paid_at(),
            claimed_at: paid_at() + TimeDelta::days(1),
            paid_before_fen: paid_before,
            contract: ContractFacts {
                amount_fen: 10_000_000 * YUAN,
                declared_type: ContractType::Development,
                region_code: "420100",
                industry_chain: "高端装备",
            },
            registration,
        }
    }

    fn certified(amount: i64) -> Registration {
        Registration::Certified {
            contract_type: ContractType::Development,
            certified_amount_fen: amount,
        }
    }

    #[test]
    fn ten_million_certified_at_six_paid_in_full_is_subsidised_on_six() {
        let policy = hubei();
        let reg = certified(6_000_000 * YUAN);
        let d = judge(
            std::slice::from_ref(&policy),
            &case(&reg, 0, 10_000_000 * YUAN),
            Standing::default(),
        )
        .unwrap();
        assert_eq!(d.status, Status::PendingReview);
        assert_eq!(d.eligible_base_fen, 6_000_000 * YUAN);
        assert_eq!(d.amount_fen, 600_000 * YUAN);
        assert!(
            d.steps[0].contains("认定技术交易额 6,000,000.00 元"),
            "{:?}",
            d.steps
        );
    }

    #[test]
    fn a_contract_paid_in_parts_counts_its_certified_amount_pro_rata() {
        // 10,000,000 certified at 6,000,000, paid 3,000,000 + 7,000,000: 60 % of each part.
        assert_eq!(pro_rata_base(600, 1000, 0, 300), 180);
        assert_eq!(pro_rata_base(600, 1000, 300, 700), 420);
        // Rounding is on the running total: three thirds of 1 fen certified at 2 of 3.
        let parts = [1, 1, 1];
        let mut paid = 0;
        let bases: Vec<i64> = parts
            .iter()
            .map(|p| {
                let b = pro_rata_base(2, 3, paid, *p);
                paid += p;
                b
            })
            .collect();
        assert_eq!(bases, [0, 1, 1]);
    }

    #[test]
    fn before_registration_the_application_waits_and_says_until_when() {
        let policy = hubei();
        let reg = Registration::Waiting {
            deadline: Utc.with_ymd_and_hms(2026, 7, 1, 4, 0, 0).unwrap(),
        };
        let d = judge(
            std::slice::from_ref(&policy),
            &case(&reg, 0, 1000 * YUAN),
            Standing::default(),
        )
        .unwrap();
        assert_eq!(d.status, Status::AwaitingRegistration);
        assert_eq!((d.amount_fen, d.eligible_base_fen), (0, 0));
        assert!(d.reason.contains("2026-07-01 12:00 UTC+8"), "{}", d.reason);
        assert_eq!(
            d.policy.as_ref().map(|p| p.0.as_str()),
            Some(policy.id.as_str())
        );
    }

    #[test]
    fn a_refusal_or_a_lapsed_window_leaves_the_payment_ineligible_with_the_reason() {
        let mut policy = hubei();
        let refused = Registration::Refused {
            reason: "设备采购合同，非技术合同".into(),
        };
        for p in [policy.clone(), {
            policy.subsidise_unregistered = true;
            policy.clone()
        }] {
            let d = judge(&[p], &case(&refused, 0, 1000 * YUAN), Standing::default()).unwrap();
            assert_eq!(d.status, Status::Ineligible);
            assert!(d.reason.contains("设备采购合同，非技术合同"));
            assert_eq!(d.amount_fen, 0);
        }
        let d = judge(
            &[hubei()],
            &case(&Registration::Expired, 0, 1000 * YUAN),
            Standing::default(),
        )
        .unwrap();
        assert_eq!(d.status, Status::Ineligible);
        assert!(d.reason.contains("登记期限"));
    }

    #[test]
    fn a_policy_that_subsidises_unregistered_contracts_counts_the_whole_payment() {
        let mut policy = hubei();
        policy.subsidise_unregistered = true;
        for reg in [
            Registration::Expired,
            Registration::Waiting {
                deadline: paid_at() + TimeDelta::days(30),
            },
        ] {
            let d = judge(
                std::slice::from_ref(&policy),
                &case(&reg, 0, 1000 * YUAN),
                Standing::default(),
            )
            .unwrap();
            assert_eq!(d.status, Status::PendingReview);
            assert_eq!(d.eligible_base_fen, 1000 * YUAN);
            assert_eq!(d.amount_fen, 100 * YUAN);
        }
    }

    #[test]
    fn the_certified_type_chooses_the_policy() {
        // Declared as development, certified as a consulting contract, which the Hubei policy
        // does not cover.
        let reg = Registration::Certified {
            contract_type: ContractType::Consulting,
            certified_amount_fen: 1000 * YUAN,
        };
        let d = judge(&[hubei()], &case(&reg, 0, 1000 * YUAN), Standing::default()).unwrap();
        assert_eq!(d.status, Status::Ineligible);
        assert!(d.policy.is_none());
    }

    proptest! {
        /// However a contract is paid in parts, the bases add up to the certified amount's
        /// share of what was paid (the certified amount when paid in full), each never more
        /// than its payment.
        #[test]
        fn parts_add_up_to_the_certified_share(
            contract in 1i64..10_000_000_000_000,
            certified_per_mille in 1i64..=1000,
            cuts in proptest::collection::vec(1i64..1000, 1..12),
        ) {
            let certified = (contract / 1000 * certified_per_mille).max(1).min(contract);
            let total_cuts: i64 = cuts.iter().sum();
            let mut paid = 0i64;
            let mut bases = 0i64;
            for (i, c) in cuts.iter().enumerate() {
                let part = if i + 1 == cuts.len() {
                    contract - paid
                } else {
                    (i128::from(contract) * i128::from(*c) / i128::from(total_cuts)) as i64
                };
                let base = pro_rata_base(certified, contract, paid, part);
                prop_assert!((0..=part).contains(&base));
                paid += part;
                bases += base;
            }
            prop_assert_eq!(paid, contract);
            prop_assert_eq!(bases, certified);
        }
    }
}
