//! Policies (政策包): who qualifies and at what ratio. Versioned: a policy is never edited; a
//! new version of the same name supersedes the earlier ones.

use chrono::{DateTime, Utc};
use kechuang_platform::Violations;
use kechuang_platform::vocabulary::{INDUSTRY_CHAINS, is_industry_chain};
use kechuang_proto::common::ContractType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tier {
    pub from_cumulative_fen: i64,
    pub ratio_bps: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub id: String,
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
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// What a policy is judged against.
#[derive(Debug, Clone)]
pub struct PaymentFacts<'a> {
    pub paid_at: DateTime<Utc>,
    pub contract_type: ContractType,
    pub region_code: &'a str,
    pub industry_chain: &'a str,
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
}

/// Every rule a new policy must meet, each broken one named by its field.
pub fn validate(draft: &PolicyDraft) -> Violations {
    let mut v = Violations::new();
    let name_len = draft.name.trim().chars().count();
    v.check(
        (2..=100).contains(&name_len),
        "name",
        "must be 2 to 100 characters",
    );
    v.check(!draft.fund_id.trim().is_empty(), "fund_id", "is required");
    if draft.tiers.is_empty() || draft.tiers.len() > 10 {
        v.add("tiers", "must have 1 to 10 tiers");
    } else {
        v.check(
            draft.tiers[0].from_cumulative_fen == 0,
            "tiers[0].from_cumulative_fen",
            "the first tier must start at 0",
        );
        for (i, t) in draft.tiers.iter().enumerate() {
            v.check(
                (0..=10_000).contains(&t.ratio_bps),
                &format!("tiers[{i}].ratio_bps"),
                "must be 0 to 10000 basis points",
            );
            if i > 0 && t.from_cumulative_fen <= draft.tiers[i - 1].from_cumulative_fen {
                v.add(
                    &format!("tiers[{i}].from_cumulative_fen"),
                    "tiers must start at strictly increasing amounts",
                );
            }
        }
    }
    v.check(
        draft.per_contract_cap_fen > 0,
        "per_contract_cap_fen",
        "must be positive",
    );
    v.check(
        draft.per_enterprise_annual_cap_fen > 0,
        "per_enterprise_annual_cap_fen",
        "must be positive",
    );
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
        draft.four_eyes_threshold_fen >= 0,
        "four_eyes_threshold_fen",
        "must not be negative",
    );
    v
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
                kechuang_platform::vocabulary::contract_type_name(facts.contract_type)
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

/// The rule, documented in the README: only the newest version of each policy name is in
/// force; among those that cover the payment, the most specific wins (most restricted
/// dimensions, then the longest matching region prefix), then the newest.
pub fn choose<'a>(policies: &'a [Policy], facts: &PaymentFacts<'_>) -> Choice<'a> {
    let current: Vec<&Policy> = policies
        .iter()
        .filter(|p| {
            !policies
                .iter()
                .any(|q| q.name == p.name && q.version > p.version)
        })
        .collect();
    if current.is_empty() {
        return Choice::Ineligible(vec!["尚无任何补贴政策".into()]);
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
            created_by: "seed".into(),
            created_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
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
        match choose(&policies, &facts("110100", ContractType::Transfer, "北斗")) {
            Choice::Ineligible(r) => assert!(r[0].contains("110100"), "{r:?}"),
            other => panic!("{other:?}"),
        }
        match choose(
            &policies,
            &facts("420100", ContractType::Consulting, "北斗"),
        ) {
            Choice::Ineligible(r) => assert!(r[0].contains("技术咨询"), "{r:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            choose(&policies, &facts("420100", ContractType::License, "北斗")),
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
            &facts("420500", ContractType::Transfer, "新材料"),
        ) {
            Choice::Applies(p) => assert_eq!(p.id, "p-other"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_new_version_supersedes_the_old() {
        let v1 = hubei_policy();
        let mut v2 = hubei_policy();
        v2.id = "p-hubei-2".into();
        v2.version = 2;
        v2.region_prefixes = vec!["4201".into()];
        let policies = [v1, v2];
        // v1 would cover 420500; v2 does not, and v2 is the one in force.
        assert!(matches!(
            choose(&policies, &facts("420500", ContractType::Transfer, "北斗")),
            Choice::Ineligible(_)
        ));
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
        };
        let status: tonic::Status = validate(&draft).into_result().unwrap_err().into();
        let fields: Vec<String> = kechuang_platform::error::field_violations(&status)
            .into_iter()
            .map(|f| f.0)
            .collect();
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
            "four_eyes_threshold_fen",
        ] {
            assert!(
                fields.contains(&f.to_string()),
                "{f} missing from {fields:?}"
            );
        }
    }
}
