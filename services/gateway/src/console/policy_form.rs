//! The console's form for proposing a policy: what people type (yuan, percent, dates in China
//! time) turned into a `CreatePolicyRequest` in fen, basis points and timestamps. The
//! subsidy service judges the policy; this only reads the form, naming each field it cannot.

use crate::money::hundredths;
use crate::status::{ApiError, FieldViolation};
use chrono::{FixedOffset, NaiveDate, TimeZone};
use kechuang_proto::common::ContractType;
use kechuang_proto::subsidy::{CreatePolicyRequest, PolicyKind, PolicyTier};
use serde::Deserialize;

/// The form's fields, as the browser sends them (all text; absent when left empty).
#[derive(Deserialize, Default, Debug)]
pub struct ProposeForm {
    pub csrf: Option<String>,
    /// Drawn when the form is rendered: submitting it twice proposes once.
    pub request_id: Option<String>,
    pub name: Option<String>,
    pub fund_id: Option<String>,
    /// One tier a line: `<from, yuan> <ratio, percent>`, e.g. `0 15` then `1000000 10`.
    pub tiers: Option<String>,
    pub per_contract_cap_yuan: Option<String>,
    pub per_enterprise_annual_cap_yuan: Option<String>,
    pub four_eyes_threshold_yuan: Option<String>,
    pub ct_development: Option<String>,
    pub ct_transfer: Option<String>,
    pub ct_license: Option<String>,
    pub ct_consulting: Option<String>,
    pub ct_service: Option<String>,
    /// Comma- or space-separated.
    pub region_prefixes: Option<String>,
    pub industry_chains: Option<String>,
    /// `YYYY-MM-DD`, China time.
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// Days after a payment during which it may be claimed; empty: the service's default.
    pub claim_window_days: Option<String>,
    /// A checkbox: present when the policy also subsidises unregistered contracts.
    pub subsidise_unregistered: Option<String>,
    /// `subsidy` (also when absent) or `broker_reward`.
    pub kind: Option<String>,
}

fn list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or_default()
        .split([',', '，', '、', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn date(text: &str) -> Option<prost_types::Timestamp> {
    let day = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()?;
    let cst = FixedOffset::east_opt(8 * 3600)?;
    let at = cst
        .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .single()?;
    Some(kechuang_platform::events::timestamp(at.to_utc()))
}

impl ProposeForm {
    /// The request, or a 400 naming every field that could not be read.
    pub fn request(&self) -> Result<CreatePolicyRequest, ApiError> {
        let mut bad = Vec::new();
        let mut money = |field: &str, text: &Option<String>| -> i64 {
            let text = text.as_deref().unwrap_or_default();
            hundredths(text).unwrap_or_else(|| {
                bad.push((
                    field.to_string(),
                    "must be an amount in yuan, e.g. 1000000 or 1,000,000.00".to_string(),
                ));
                0
            })
        };
        let per_contract_cap_fen = money("per_contract_cap_fen", &self.per_contract_cap_yuan);
        let per_enterprise_annual_cap_fen = money(
            "per_enterprise_annual_cap_fen",
            &self.per_enterprise_annual_cap_yuan,
        );
        let four_eyes_threshold_fen =
            money("four_eyes_threshold_fen", &self.four_eyes_threshold_yuan);
        let mut tiers = Vec::new();
        for (i, line) in self
            .tiers
            .as_deref()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
        {
            let parts: Vec<&str> = line
                .split([' ', '\t', ':', '：'])
                .filter(|s| !s.is_empty())
                .collect();
            let tier = match parts.as_slice() {
                [from, ratio] => hundredths(from).zip(hundredths(ratio.trim_end_matches('%'))),
                _ => None,
            };
            match tier {
                Some((from, bps)) => tiers.push(PolicyTier {
                    from_cumulative_fen: from,
                    ratio_bps: i32::try_from(bps).unwrap_or(i32::MAX),
                }),
                None => bad.push((
                    format!("tiers[{i}]"),
                    "must be “<from, yuan> <ratio, %>”, e.g. “0 10”".into(),
                )),
            }
        }
        let valid_from = match self
            .valid_from
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => None, // the service says it is required
            Some(t) => date(t).or_else(|| {
                bad.push(("valid_from".into(), "must be a date, YYYY-MM-DD".into()));
                None
            }),
        };
        let valid_to = match self
            .valid_to
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => None,
            Some(t) => date(t).or_else(|| {
                bad.push(("valid_to".into(), "must be a date, YYYY-MM-DD".into()));
                None
            }),
        };
        let claim_window_days = match self
            .claim_window_days
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => 0,
            Some(t) => t.parse::<i32>().unwrap_or_else(|_| {
                bad.push((
                    "claim_window_days".into(),
                    "must be a whole number of days".into(),
                ));
                0
            }),
        };
        let kind = match self.kind.as_deref().map(str::trim).unwrap_or("") {
            "" | "subsidy" => PolicyKind::Subsidy,
            "broker_reward" => PolicyKind::BrokerReward,
            _ => {
                bad.push(("kind".into(), "must be subsidy or broker_reward".into()));
                PolicyKind::Unspecified
            }
        };
        if !bad.is_empty() {
            let mut e = ApiError::invalid(bad[0].0.clone(), bad[0].1.clone());
            e.body.field_violations = bad
                .into_iter()
                .map(|(field, description)| FieldViolation { field, description })
                .collect();
            return Err(e);
        }
        let types = [
            (&self.ct_development, ContractType::Development),
            (&self.ct_transfer, ContractType::Transfer),
            (&self.ct_license, ContractType::License),
            (&self.ct_consulting, ContractType::Consulting),
            (&self.ct_service, ContractType::Service),
        ];
        Ok(CreatePolicyRequest {
            request_id: self.request_id.clone().unwrap_or_default(),
            name: self.name.clone().unwrap_or_default().trim().to_string(),
            fund_id: self.fund_id.clone().unwrap_or_default().trim().to_string(),
            tiers,
            per_contract_cap_fen,
            per_enterprise_annual_cap_fen,
            contract_types: types
                .iter()
                .filter(|(on, _)| on.is_some())
                .map(|(_, t)| *t as i32)
                .collect(),
            region_prefixes: list(self.region_prefixes.as_deref()),
            industry_chains: list(self.industry_chains.as_deref()),
            valid_from,
            valid_to,
            four_eyes_threshold_fen,
            claim_window_days,
            subsidise_unregistered: self.subsidise_unregistered.is_some(),
            kind: kind as i32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_percentages_are_read_in_hundredths() {
        assert_eq!(hundredths("1,000,000"), Some(100_000_000));
        assert_eq!(hundredths("12.5"), Some(1250));
        assert_eq!(hundredths("0.05"), Some(5));
        for bad in ["", "1.234", "-5", "abc", "1e9", "99999999999999999999"] {
            assert_eq!(hundredths(bad), None, "{bad}");
        }
    }

    fn filled() -> ProposeForm {
        ProposeForm {
            name: Some(" 武汉市首购首用补贴 ".into()),
            fund_id: Some("fund-default".into()),
            tiers: Some("0 15\n1000000 10%\n".into()),
            per_contract_cap_yuan: Some("500,000".into()),
            per_enterprise_annual_cap_yuan: Some("1000000".into()),
            four_eyes_threshold_yuan: Some("100000".into()),
            ct_transfer: Some("on".into()),
            ct_license: Some("on".into()),
            region_prefixes: Some("4201, 4205".into()),
            valid_from: Some("2027-01-01".into()),
            claim_window_days: Some(" 180 ".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_filled_form_becomes_a_request_in_fen_and_basis_points() {
        let r = filled().request().unwrap();
        assert_eq!(r.name, "武汉市首购首用补贴");
        assert_eq!(
            r.tiers,
            [
                PolicyTier {
                    from_cumulative_fen: 0,
                    ratio_bps: 1500
                },
                PolicyTier {
                    from_cumulative_fen: 100_000_000,
                    ratio_bps: 1000
                }
            ]
        );
        assert_eq!(
            (r.per_contract_cap_fen, r.four_eyes_threshold_fen),
            (50_000_000, 10_000_000)
        );
        assert_eq!(
            r.contract_types,
            [ContractType::Transfer as i32, ContractType::License as i32]
        );
        assert_eq!(r.region_prefixes, ["4201", "4205"]);
        // Midnight in China is 16:00 UTC the day before.
        assert_eq!(r.valid_from.unwrap().seconds, 1_798_761_600 - 8 * 3600);
        assert!(r.valid_to.is_none() && r.industry_chains.is_empty());
        assert_eq!(r.claim_window_days, 180);
        let unset = ProposeForm {
            claim_window_days: None,
            ..filled()
        };
        assert_eq!(unset.request().unwrap().claim_window_days, 0, "the default");
        assert!(
            !r.subsidise_unregistered,
            "registration is required unless ticked"
        );
        let ticked = ProposeForm {
            subsidise_unregistered: Some("on".into()),
            ..filled()
        };
        assert!(ticked.request().unwrap().subsidise_unregistered);
        assert_eq!(
            r.kind,
            PolicyKind::Subsidy as i32,
            "a subsidy unless chosen"
        );
        let reward = ProposeForm {
            kind: Some("broker_reward".into()),
            ..filled()
        };
        assert_eq!(
            reward.request().unwrap().kind,
            PolicyKind::BrokerReward as i32
        );
        let odd = ProposeForm {
            kind: Some("bonus".into()),
            ..filled()
        };
        assert_eq!(
            odd.request().unwrap_err().body.field_violations[0].field,
            "kind"
        );
    }

    #[test]
    fn unreadable_fields_are_named() {
        let form = ProposeForm {
            tiers: Some("0\n5 x".into()),
            per_contract_cap_yuan: Some("lots".into()),
            valid_to: Some("tomorrow".into()),
            claim_window_days: Some("a year".into()),
            ..filled()
        };
        let e = form.request().unwrap_err();
        let fields: Vec<&str> = e
            .body
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "per_contract_cap_fen",
                "tiers[0]",
                "tiers[1]",
                "valid_to",
                "claim_window_days"
            ]
        );
    }
}
