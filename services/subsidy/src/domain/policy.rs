//! Policies (政策包): who qualifies and at what ratio. Versioned: a policy is never edited; a
//! new version of the same name is proposed, and once another person approves it, it
//! supersedes the earlier ones (see [`review`]).

mod draft;
pub mod review;

pub use draft::{
    CLAIM_WINDOW_DAYS, DEFAULT_CAP_CEILING_FEN, DEFAULT_CLAIM_WINDOW_DAYS, Limits, MAX_MONEY_FEN,
    PolicyDraft, claim_window_or_default, validate,
};
pub use review::PolicyStatus;

pub use super::kind::Kind;

use chrono::{DateTime, Utc};
use kechuang_proto::common::ContractType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tier {
    pub from_cumulative_fen: i64,
    pub ratio_bps: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub id: String,
    /// A subsidy policy or a broker-reward policy (see [`Kind`]); each kind chooses among its
    /// own. For a reward, the per-contract cap is per deal and the per-enterprise annual cap
    /// per broker.
    pub kind: Kind,
    pub name: String,
    pub version: i32,
    pub fund_id: String,
    pub tiers: Vec<Tier>,
    pub per_contract_cap_fen: i64,
    pub per_enterprise_annual_cap_fen: i64,
    /// Empty: every type.
    pub contract_types: Vec<ContractType>,
    /// Empty: every region.
    pub region_prefixes: Vec<String>,
    /// Empty: every chain.
    pub industry_chains: Vec<String>,
    pub valid_from: DateTime<Utc>,
    /// None: open-ended.
    pub valid_to: Option<DateTime<Utc>>,
    pub four_eyes_threshold_fen: i64,
    /// A payment older than this many days when it is recorded is not claimed.
    pub claim_window_days: i32,
    /// Whether payments under contracts not (yet) registered count too, on their whole amount;
    /// false: only certified contracts, up to the certified technical amount.
    pub subsidise_unregistered: bool,
    /// The proposer.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub status: PolicyStatus,
    /// Who approved or rejected it ("seed" for the seeded policy); empty while undecided.
    pub decided_by: String,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_note: String,
    /// The version whose approval superseded this one; empty otherwise.
    pub superseded_by: String,
    pub superseded_at: Option<DateTime<Utc>>,
}

/// What a policy is judged against.
#[derive(Debug, Clone)]
pub struct PaymentFacts<'a> {
    pub paid_at: DateTime<Utc>,
    pub contract_type: ContractType,
    pub region_code: &'a str,
    pub industry_chain: &'a str,
}

impl Policy {
    /// Why this policy does not cover the payment, or `None` when it does.
    pub fn refusal(&self, facts: &PaymentFacts<'_>) -> Option<String> {
        if facts.paid_at < self.valid_from || self.valid_to.is_some_and(|to| facts.paid_at >= to) {
            return Some(format!("{}：支付日期不在政策有效期内", self.name));
        }
        if !self.contract_types.is_empty() && !self.contract_types.contains(&facts.contract_type) {
            return Some(format!(
                "{}：合同类型“{}”不在补贴范围内",
                self.name,
                kechuang_vocabulary::contract_type_name(facts.contract_type)
            ));
        }
        if !self.region_prefixes.is_empty() && self.matched_prefix(facts.region_code).is_none() {
            return Some(format!(
                "{}：技术使用地 {} 不在补贴地区（{}）内",
                self.name,
                facts.region_code,
                self.region_prefixes.join("、")
            ));
        }
        if !self.industry_chains.is_empty()
            && !self
                .industry_chains
                .iter()
                .any(|c| c == facts.industry_chain)
        {
            return Some(format!(
                "{}：产业链“{}”不在补贴范围内",
                self.name, facts.industry_chain
            ));
        }
        None
    }

    fn matched_prefix(&self, region_code: &str) -> Option<usize> {
        self.region_prefixes
            .iter()
            .filter(|p| region_code.starts_with(p.as_str()))
            .map(|p| p.len())
            .max()
    }

    /// How narrowly the policy targets the payment: restricted dimensions, then the length of
    /// the matched region prefix.
    fn specificity(&self, facts: &PaymentFacts<'_>) -> (usize, usize) {
        let dims = usize::from(!self.contract_types.is_empty())
            + usize::from(!self.region_prefixes.is_empty())
            + usize::from(!self.industry_chains.is_empty());
        (dims, self.matched_prefix(facts.region_code).unwrap_or(0))
    }

    /// How many distinct approvers an application of `amount_fen` needs.
    pub fn required_approvals(&self, amount_fen: i64) -> i32 {
        if amount_fen > self.four_eyes_threshold_fen {
            2
        } else {
            1
        }
    }
}

/// The choice among policies for one payment.
#[derive(Debug)]
pub enum Choice<'a> {
    Applies(&'a Policy),
    /// No policy covers the payment; why each candidate did not.
    Ineligible(Vec<String>),
}

/// The rule, documented in the README: only versions in force of `kind` count (approved by a
/// second person, or seeded), the newest in force of each name; among those that cover the
/// payment, the most specific wins (most restricted dimensions, then the longest matching
/// region prefix), then the newest. A proposed, rejected or superseded version never computes,
/// nor does a policy of the other kind.
pub fn choose<'a>(policies: &'a [Policy], kind: Kind, facts: &PaymentFacts<'_>) -> Choice<'a> {
    let in_force = || {
        policies
            .iter()
            .filter(|p| p.status == PolicyStatus::InForce && p.kind == kind)
    };
    let current: Vec<&Policy> = in_force()
        .filter(|p| !in_force().any(|q| q.name == p.name && q.version > p.version))
        .collect();
    if current.is_empty() {
        return Choice::Ineligible(vec![match kind {
            Kind::Subsidy => "尚无生效的补贴政策".into(),
            Kind::BrokerReward => "尚无生效的经纪人奖励政策".into(),
        }]);
    }
    let mut reasons = Vec::new();
    let mut best: Option<&Policy> = None;
    for p in current {
        match p.refusal(facts) {
            Some(reason) => reasons.push(reason),
            None => {
                let better = best.is_none_or(|b| {
                    (p.specificity(facts), p.created_at, &p.id)
                        > (b.specificity(facts), b.created_at, &b.id)
                });
                if better {
                    best = Some(p);
                }
            }
        }
    }
    match best {
        Some(p) => Choice::Applies(p),
        None => Choice::Ineligible(reasons),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The published Hubei rule: 10 %, at most 1,000,000 yuan per enterprise a year, province 42.
    pub fn hubei_policy() -> Policy {
        Policy {
            id: "p-hubei".into(),
            kind: Kind::Subsidy,
            name: "湖北省技术合同实付补贴".into(),
            version: 1,
            fund_id: "fund-default".into(),
            tiers: vec![Tier {
                from_cumulative_fen: 0,
                ratio_bps: 1000,
            }],
            per_contract_cap_fen: 100_000_000,
            per_enterprise_annual_cap_fen: 100_000_000,
            contract_types: vec![
                ContractType::Development,
                ContractType::Transfer,
                ContractType::License,
            ],
            region_prefixes: vec!["42".into()],
            industry_chains: vec![],
            valid_from: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            valid_to: None,
            four_eyes_threshold_fen: 10_000_000,
            claim_window_days: 365,
            subsidise_unregistered: false,
            created_by: "seed".into(),
            created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
            status: PolicyStatus::InForce,
            decided_by: "seed".into(),
            decided_at: Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()),
            decision_note: String::new(),
            superseded_by: String::new(),
            superseded_at: None,
        }
    }

    fn facts<'a>(region: &'a str, t: ContractType, chain: &'a str) -> PaymentFacts<'a> {
        PaymentFacts {
            paid_at: Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap(),
            contract_type: t,
            region_code: region,
            industry_chain: chain,
        }
    }

    #[test]
    fn out_of_province_and_consulting_are_ineligible_with_reasons() {
        let policies = [hubei_policy()];
        match choose(
            &policies,
            Kind::Subsidy,
            &facts("110100", ContractType::Transfer, "北斗"),
        ) {
            Choice::Ineligible(r) => assert!(r[0].contains("110100"), "{r:?}"),
            other => panic!("{other:?}"),
        }
        match choose(
            &policies,
            Kind::Subsidy,
            &facts("420100", ContractType::Consulting, "北斗"),
        ) {
            Choice::Ineligible(r) => assert!(r[0].contains("技术咨询"), "{r:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            choose(
                &policies,
                Kind::Subsidy,
                &facts("420100", ContractType::License, "北斗")
            ),
            Choice::Applies(_)
        ));
    }

    #[test]
    fn the_most_specific_policy_wins_then_the_newest() {
        let general = hubei_policy();
        let mut wuhan = hubei_policy();
        wuhan.id = "p-wuhan".into();
        wuhan.name = "武汉市补贴".into();
        wuhan.region_prefixes = vec!["4201".into()];
        let mut chain = hubei_policy();
        chain.id = "p-chain".into();
        chain.name = "北斗专项".into();
        chain.industry_chains = vec!["北斗".into()];
        let policies = [general.clone(), wuhan, chain];
        let chosen = |region, industry| match choose(
            &policies,
            Kind::Subsidy,
            &facts(region, ContractType::Transfer, industry),
        ) {
            Choice::Applies(p) => p.id.clone(),
            Choice::Ineligible(r) => panic!("{r:?}"),
        };
        assert_eq!(chosen("420100", "北斗"), "p-chain"); // three dimensions beat two
        assert_eq!(chosen("420100", "新材料"), "p-wuhan"); // longer prefix
        assert_eq!(chosen("420500", "新材料"), "p-hubei");

        let mut newer = general.clone();
        newer.id = "p-other".into();
        newer.name = "另一省级政策".into();
        newer.created_at = general.created_at + chrono::Duration::days(1);
        let policies = [general, newer];
        match choose(
            &policies,
            Kind::Subsidy,
            &facts("420500", ContractType::Transfer, "新材料"),
        ) {
            Choice::Applies(p) => assert_eq!(p.id, "p-other"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_a_version_in_force_computes() {
        let v1 = hubei_policy();
        let mut v2 = hubei_policy();
        v2.id = "p-hubei-2".into();
        v2.version = 2;
        v2.region_prefixes = vec!["4201".into()];
        v2.status = PolicyStatus::Proposed;
        let chosen = |policies: &[Policy]| match choose(
            policies,
            Kind::Subsidy,
            &facts("420500", ContractType::Transfer, "北斗"),
        ) {
            Choice::Applies(p) => Some(p.id.clone()),
            Choice::Ineligible(_) => None,
        };
        // v2 is only proposed: v1 stays in force and covers 420500.
        assert_eq!(chosen(&[v1.clone(), v2.clone()]), Some("p-hubei".into()));
        // Approved, v2 supersedes v1; v2 does not cover 420500.
        v2.status = PolicyStatus::InForce;
        let mut old = v1.clone();
        old.status = PolicyStatus::Superseded;
        assert_eq!(chosen(&[old.clone(), v2.clone()]), None);
        // Rejected or alone as a proposal, nothing is in force.
        v2.status = PolicyStatus::Rejected;
        assert_eq!(chosen(&[old, v2.clone()]), None);
        v2.status = PolicyStatus::Proposed;
        let mut generous = v2;
        generous.region_prefixes = vec![];
        match choose(
            &[generous],
            Kind::Subsidy,
            &facts("420500", ContractType::Transfer, "北斗"),
        ) {
            Choice::Ineligible(r) => assert_eq!(r, ["尚无生效的补贴政策"]),
            other => panic!("{other:?}"),
        }
        // Defensive: two versions in force (never stored), the newer counts.
        let mut newer = v1.clone();
        newer.id = "p-hubei-3".into();
        newer.version = 3;
        assert_eq!(chosen(&[v1, newer]), Some("p-hubei-3".into()));
    }

    #[test]
    fn validity_window_and_four_eyes() {
        let mut p = hubei_policy();
        p.valid_to = Some(Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap());
        assert!(
            p.refusal(&facts("420100", ContractType::Transfer, "北斗"))
                .unwrap()
                .contains("有效期")
        );
        assert_eq!(p.required_approvals(10_000_000), 1);
        assert_eq!(p.required_approvals(10_000_001), 2);
    }
}
