//! A proposed policy before it has an id and a version, and the bounds it must keep: a
//! proposal that would switch the safeguards off (a 100 % ratio with caps of a hundred billion
//! yuan and four eyes above them) never reaches a second person's desk.

use super::Tier;
use crate::domain::money::yuan;
use chrono::{DateTime, Utc};
use kechuang_platform::Violations;
use kechuang_platform::input::{self, Text};
use kechuang_proto::common::ContractType;
use kechuang_vocabulary::{INDUSTRY_CHAINS, is_industry_chain};

/// No amount in a policy is above this: 10^13 fen, 100 billion yuan. (The calculator works
/// in fen × basis points, which stays far inside an `i64` below it.)
pub const MAX_MONEY_FEN: i64 = 10_000_000_000_000;
/// The default ceiling of a policy's caps: 10^11 fen, 1 billion yuan (`KC_POLICY_CAP_CEILING_FEN`).
pub const DEFAULT_CAP_CEILING_FEN: i64 = 100_000_000_000;
/// A payment may be claimed up to this many days after it was made, unless a policy says.
pub const DEFAULT_CLAIM_WINDOW_DAYS: i32 = 365;
/// The claim windows a policy may set: a day to ten years.
pub const CLAIM_WINDOW_DAYS: std::ops::RangeInclusive<i32> = 1..=3650;

/// The claim window a request asks for: 0 (unset) is the default.
pub fn claim_window_or_default(days: i32) -> i32 {
    if days == 0 {
        DEFAULT_CLAIM_WINDOW_DAYS
    } else {
        days
    }
}

/// A tier refunds at least one basis point and at most everything paid.
pub const RATIO_BPS: std::ops::RangeInclusive<i32> = 1..=10_000;

/// The installation's bounds on proposals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    cap_ceiling_fen: i64,
}

impl Limits {
    /// Caps at most `cap_ceiling_fen` (itself kept within 1 fen and [`MAX_MONEY_FEN`]).
    pub fn new(cap_ceiling_fen: i64) -> Self {
        Self {
            cap_ceiling_fen: cap_ceiling_fen.clamp(1, MAX_MONEY_FEN),
        }
    }

    pub fn cap_ceiling_fen(&self) -> i64 {
        self.cap_ceiling_fen
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(DEFAULT_CAP_CEILING_FEN)
    }
}

/// The fields of a new policy, before it has an id and a version.
#[derive(Debug, Clone)]
pub struct PolicyDraft {
    pub name: String,
    pub fund_id: String,
    pub tiers: Vec<Tier>,
    pub per_contract_cap_fen: i64,
    pub per_enterprise_annual_cap_fen: i64,
    pub contract_types: Vec<i32>,
    pub region_prefixes: Vec<String>,
    pub industry_chains: Vec<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub four_eyes_threshold_fen: i64,
    /// Days after a payment during which it may be claimed (see [`claim_window_or_default`]).
    pub claim_window_days: i32,
    /// See [`super::Policy::subsidise_unregistered`].
    pub subsidise_unregistered: bool,
    /// A subsidy or a broker-reward policy: the same fields and bounds (see [`super::Kind`]).
    pub kind: super::Kind,
}

fn check_tiers(v: &mut Violations, tiers: &[Tier]) {
    if tiers.is_empty() || tiers.len() > 10 {
        v.add("tiers", "must have 1 to 10 tiers");
        return;
    }
    v.check(
        tiers[0].from_cumulative_fen == 0,
        "tiers[0].from_cumulative_fen",
        "the first tier must start at 0",
    );
    for (i, t) in tiers.iter().enumerate() {
        v.check(
            RATIO_BPS.contains(&t.ratio_bps),
            &format!("tiers[{i}].ratio_bps"),
            "must be 1 to 10000 basis points",
        );
        let from = format!("tiers[{i}].from_cumulative_fen");
        if t.from_cumulative_fen > MAX_MONEY_FEN {
            v.add(&from, format!("must be at most {}", yuan(MAX_MONEY_FEN)));
        } else if i > 0 && t.from_cumulative_fen <= tiers[i - 1].from_cumulative_fen {
            v.add(&from, "tiers must start at strictly increasing amounts");
        }
    }
}

fn check_cap(v: &mut Violations, field: &str, fen: i64, limits: &Limits) {
    if fen <= 0 {
        v.add(field, "must be positive");
    } else if fen > limits.cap_ceiling_fen {
        v.add(
            field,
            format!(
                "must be at most {} (the installation's ceiling)",
                yuan(limits.cap_ceiling_fen)
            ),
        );
    }
}

fn check_scope(v: &mut Violations, draft: &PolicyDraft) {
    for (i, t) in draft.contract_types.iter().enumerate() {
        let known = ContractType::try_from(*t).is_ok_and(|t| t != ContractType::Unspecified);
        v.check(
            known,
            &format!("contract_types[{i}]"),
            "must be one of the five contract types",
        );
    }
    for (i, p) in draft.region_prefixes.iter().enumerate() {
        let ok = (2..=6).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
        v.check(
            ok,
            &format!("region_prefixes[{i}]"),
            "must be 2 to 6 digits of a region code",
        );
    }
    for (i, c) in draft.industry_chains.iter().enumerate() {
        v.check_with(
            is_industry_chain(c),
            &format!("industry_chains[{i}]"),
            || format!("must be one of {}", INDUSTRY_CHAINS.join("、")),
        );
    }
}

/// Every rule a proposed policy must meet, each broken one named by its field.
pub fn validate(draft: &PolicyDraft, limits: &Limits) -> Violations {
    let mut v = Violations::new();
    Text {
        min: 2,
        ..Text::line(100)
    }
    .check(&mut v, "name", &draft.name);
    input::check_id(&mut v, "fund_id", &draft.fund_id, 100);
    check_tiers(&mut v, &draft.tiers);
    check_cap(
        &mut v,
        "per_contract_cap_fen",
        draft.per_contract_cap_fen,
        limits,
    );
    check_cap(
        &mut v,
        "per_enterprise_annual_cap_fen",
        draft.per_enterprise_annual_cap_fen,
        limits,
    );
    check_scope(&mut v, draft);
    v.check(
        !(draft.kind == super::Kind::BrokerReward && draft.subsidise_unregistered),
        "subsidise_unregistered",
        "a broker's reward is only for certified contracts",
    );
    match (draft.valid_from, draft.valid_to) {
        (None, _) => {
            v.add("valid_from", "is required");
        }
        (Some(from), Some(to)) if to <= from => {
            v.add("valid_to", "must be after valid_from");
        }
        _ => {}
    }
    v.check(
        CLAIM_WINDOW_DAYS.contains(&draft.claim_window_days),
        "claim_window_days",
        "must be 1 to 3650 days (0: the default, 365)",
    );
    let threshold = draft.four_eyes_threshold_fen;
    if threshold <= 0 {
        v.add("four_eyes_threshold_fen", "must be positive");
    } else if threshold > MAX_MONEY_FEN {
        v.add(
            "four_eyes_threshold_fen",
            format!("must be at most {}", yuan(MAX_MONEY_FEN)),
        );
    } else if threshold > draft.per_contract_cap_fen.max(0) {
        v.add(
            "four_eyes_threshold_fen",
            "must not be above per_contract_cap_fen (else four eyes never apply)",
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn fields(draft: &PolicyDraft, limits: &Limits) -> Vec<String> {
        match validate(draft, limits).into_result() {
            Ok(()) => vec![],
            Err(kechuang_platform::Error::InvalidArgument(v)) => {
                v.into_iter().map(|f| f.field).collect()
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    /// The seeded Hubei rule as a draft: 10 %, 1,000,000 yuan caps, four eyes above 100,000.
    pub(crate) fn hubei() -> PolicyDraft {
        PolicyDraft {
            name: "湖北省技术合同实付补贴".into(),
            fund_id: "fund-default".into(),
            tiers: vec![Tier {
                from_cumulative_fen: 0,
                ratio_bps: 1000,
            }],
            per_contract_cap_fen: 100_000_000,
            per_enterprise_annual_cap_fen: 100_000_000,
            contract_types: vec![ContractType::Transfer as i32],
            region_prefixes: vec!["42".into()],
            industry_chains: vec![],
            valid_from: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            valid_to: None,
            four_eyes_threshold_fen: 10_000_000,
            claim_window_days: DEFAULT_CLAIM_WINDOW_DAYS,
            subsidise_unregistered: false,
            kind: Default::default(),
        }
    }

    #[test]
    fn a_reward_policy_keeps_the_bounds_and_never_rewards_unregistered_contracts() {
        let mut reward = hubei();
        reward.kind = crate::domain::policy::Kind::BrokerReward;
        assert!(fields(&reward, &Limits::default()).is_empty());
        reward.subsidise_unregistered = true;
        assert_eq!(
            fields(&reward, &Limits::default()),
            ["subsidise_unregistered"]
        );
        reward.subsidise_unregistered = false;
        reward.tiers[0].ratio_bps = 10_001;
        reward.per_enterprise_annual_cap_fen = DEFAULT_CAP_CEILING_FEN + 1;
        assert_eq!(
            fields(&reward, &Limits::default()),
            ["tiers[0].ratio_bps", "per_enterprise_annual_cap_fen"]
        );
    }

    #[test]
    fn drafts_are_validated_field_by_field() {
        let draft = PolicyDraft {
            name: "x".into(),
            fund_id: "".into(),
            tiers: vec![
                Tier {
                    from_cumulative_fen: 5,
                    ratio_bps: 20_000,
                },
                Tier {
                    from_cumulative_fen: 5,
                    ratio_bps: 10,
                },
            ],
            per_contract_cap_fen: 0,
            per_enterprise_annual_cap_fen: -1,
            contract_types: vec![0, 9],
            region_prefixes: vec!["4".into()],
            industry_chains: vec!["炼金术".into()],
            valid_from: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
            valid_to: Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()),
            four_eyes_threshold_fen: -5,
            claim_window_days: 3651,
            subsidise_unregistered: false,
            kind: Default::default(),
        };
        let found = fields(&draft, &Limits::default());
        for f in [
            "name",
            "fund_id",
            "tiers[0].from_cumulative_fen",
            "tiers[0].ratio_bps",
            "tiers[1].from_cumulative_fen",
            "per_contract_cap_fen",
            "per_enterprise_annual_cap_fen",
            "contract_types[0]",
            "contract_types[1]",
            "region_prefixes[0]",
            "industry_chains[0]",
            "valid_to",
            "claim_window_days",
            "four_eyes_threshold_fen",
        ] {
            assert!(found.contains(&f.to_string()), "{f} missing from {found:?}");
        }
        assert_eq!(fields(&hubei(), &Limits::default()), Vec::<String>::new());
    }

    #[test]
    fn a_proposal_that_switches_the_safeguards_off_is_refused_field_by_field() {
        // The draft of issue 20: everything refunded, caps of 10^13 fen, four eyes at 10^15.
        let mut d = hubei();
        d.tiers[0].ratio_bps = 10_000;
        d.per_contract_cap_fen = MAX_MONEY_FEN;
        d.per_enterprise_annual_cap_fen = MAX_MONEY_FEN;
        d.four_eyes_threshold_fen = 1_000_000_000_000_000;
        assert_eq!(
            fields(&d, &Limits::default()),
            [
                "per_contract_cap_fen",
                "per_enterprise_annual_cap_fen",
                "four_eyes_threshold_fen"
            ]
        );
        // With a ceiling that high, the caps pass; four eyes above the per-contract cap do not.
        let generous = Limits::new(MAX_MONEY_FEN);
        d.four_eyes_threshold_fen = MAX_MONEY_FEN;
        assert_eq!(fields(&d, &generous), Vec::<String>::new());
        d.per_contract_cap_fen = 1_000;
        assert_eq!(fields(&d, &generous), ["four_eyes_threshold_fen"]);
    }

    #[test]
    fn ratios_keep_between_one_basis_point_and_everything() {
        let mut d = hubei();
        d.tiers = vec![
            Tier {
                from_cumulative_fen: 0,
                ratio_bps: 0,
            },
            Tier {
                from_cumulative_fen: MAX_MONEY_FEN + 1,
                ratio_bps: 10_001,
            },
        ];
        assert_eq!(
            fields(&d, &Limits::default()),
            [
                "tiers[0].ratio_bps",
                "tiers[1].ratio_bps",
                "tiers[1].from_cumulative_fen"
            ]
        );
        assert_eq!(Limits::new(i64::MAX).cap_ceiling_fen(), MAX_MONEY_FEN);
        let mut d = hubei();
        for (days, ok) in [
            (1, true),
            (3650, true),
            (0, false),
            (-1, false),
            (3651, false),
        ] {
            d.claim_window_days = days;
            assert_eq!(fields(&d, &Limits::default()).is_empty(), ok, "{days}");
        }
        assert_eq!(claim_window_or_default(0), 365);
        assert_eq!(claim_window_or_default(30), 30);
        assert_eq!(Limits::new(-3).cap_ceiling_fen(), 1);
    }

    proptest! {
        /// Whatever the numbers, validation answers (never panics), and a draft it passes keeps
        /// every bound: ratios 1..=10000, caps positive and under the ceiling, money under
        /// 10^13 fen, four eyes positive and not above the per-contract cap.
        #[test]
        fn a_passing_draft_keeps_every_bound(
            ratios in proptest::collection::vec(any::<i32>(), 1..4),
            steps in proptest::collection::vec(any::<i64>(), 3),
            contract_cap in any::<i64>(),
            annual_cap in any::<i64>(),
            threshold in any::<i64>(),
            ceiling in any::<i64>(),
        ) {
            let limits = Limits::new(ceiling);
            let mut d = hubei();
            let mut from = 0i64;
            d.tiers = ratios.iter().zip(&steps).enumerate().map(|(i, (r, s))| {
                if i > 0 { from = from.saturating_add(s.rem_euclid(MAX_MONEY_FEN)); }
                Tier { from_cumulative_fen: from, ratio_bps: *r }
            }).collect();
            d.per_contract_cap_fen = contract_cap;
            d.per_enterprise_annual_cap_fen = annual_cap;
            d.four_eyes_threshold_fen = threshold;
            if validate(&d, &limits).is_empty() {
                prop_assert!(d.tiers.iter().all(|t| RATIO_BPS.contains(&t.ratio_bps)));
                prop_assert!(d.tiers.iter().all(|t| (0..=MAX_MONEY_FEN).contains(&t.from_cumulative_fen)));
                for cap in [contract_cap, annual_cap] {
                    prop_assert!(cap > 0 && cap <= limits.cap_ceiling_fen() && cap <= MAX_MONEY_FEN);
                }
                prop_assert!(threshold > 0 && threshold <= contract_cap);
            }
        }
    }
}
