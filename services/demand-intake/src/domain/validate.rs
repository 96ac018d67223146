//! Input rules for every write. Each broken rule is one field violation, all reported at once.

use chrono::{DateTime, Duration, Utc};
use kechuang_platform::error::{Error, Violations};
use kechuang_platform::events::from_timestamp;
use kechuang_platform::input::{self, Text};
use kechuang_proto::common::ContractType;
use kechuang_proto::demand::{
    RegisterEnterpriseRequest, SubmitDemandRequest, VerifyDemandRequest, WithdrawDemandRequest,
};
use kechuang_vocabulary::{check_credit_code, check_region_code, is_industry_chain};

pub const NAME: Text = Text {
    min: 2,
    ..Text::line(100)
};
pub const TITLE: Text = Text {
    min: 4,
    ..Text::line(100)
};
pub const DESCRIPTION: Text = Text {
    min: 10,
    ..Text::paragraphs(5000)
};
pub const NOTE: Text = Text::paragraphs(2000).optional();
pub const REQUEST_ID_MAX_CHARS: usize = 200;
pub const ID_MAX_CHARS: usize = 100;
/// A deadline further out than this is a typo, not a plan.
pub const MAX_DEADLINE_YEARS: i64 = 10;

/// A valid enterprise registration. The enterprise's id is its credit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnterprise {
    pub name: String,
    pub credit_code: String,
    pub region_code: String,
    pub industry_chain: String,
}

/// A valid demand submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDemand {
    pub enterprise_id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: ContractType,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
    pub deadline: DateTime<Utc>,
}

fn industry_chain(v: &mut Violations, value: &str) {
    v.check_with(is_industry_chain(value), "industry_chain", || {
        format!(
            "{} is not in the catalog of industry chains ({})",
            input::quote(value),
            kechuang_vocabulary::INDUSTRY_CHAINS.join(", ")
        )
    });
}

fn region(v: &mut Violations, value: &str) {
    if let Err(why) = check_region_code(value) {
        v.add("region_code", why);
    }
}

pub fn enterprise(req: &RegisterEnterpriseRequest) -> Result<NewEnterprise, Error> {
    let mut v = Violations::new();
    let name = req.name.trim();
    NAME.check(&mut v, "name", &req.name);
    if let Err(why) = check_credit_code(&req.credit_code) {
        v.add("credit_code", why);
    }
    region(&mut v, &req.region_code);
    industry_chain(&mut v, &req.industry_chain);
    v.into_result()?;
    Ok(NewEnterprise {
        name: name.to_string(),
        credit_code: req.credit_code.clone(),
        region_code: req.region_code.clone(),
        industry_chain: req.industry_chain.clone(),
    })
}

/// Optional: without one, a retried submission is a second demand.
pub fn request_id(v: &mut Violations, request_id: &str) {
    if !request_id.is_empty() {
        input::check_id(v, "request_id", request_id, REQUEST_ID_MAX_CHARS);
    }
}

pub fn demand(req: &SubmitDemandRequest, now: DateTime<Utc>) -> Result<NewDemand, Error> {
    let mut v = Violations::new();
    request_id(&mut v, &req.request_id);
    input::check_id(&mut v, "enterprise_id", &req.enterprise_id, ID_MAX_CHARS);
    let title = req.title.trim();
    TITLE.check(&mut v, "title", &req.title);
    let description = req.description.trim();
    DESCRIPTION.check(&mut v, "description", &req.description);
    industry_chain(&mut v, &req.industry_chain);
    let contract_type = match ContractType::try_from(req.contract_type) {
        Ok(ContractType::Unspecified) | Err(_) => {
            v.add(
                "contract_type",
                "must be one of DEVELOPMENT, TRANSFER, LICENSE, CONSULTING, SERVICE",
            );
            ContractType::Unspecified
        }
        Ok(t) => t,
    };
    for (field, amount) in [
        ("budget_min_fen", req.budget_min_fen),
        ("budget_max_fen", req.budget_max_fen),
    ] {
        input::check_fen(&mut v, field, amount, 0);
    }
    v.check(
        req.budget_min_fen <= req.budget_max_fen,
        "budget_max_fen",
        "must not be below budget_min_fen",
    );
    region(&mut v, &req.region_code);
    let deadline = match req.deadline.as_ref().map(from_timestamp) {
        None => {
            v.add("deadline", "is required");
            None
        }
        Some(None) => {
            v.add("deadline", "is not a valid timestamp");
            None
        }
        Some(Some(t)) => {
            v.check(t > now, "deadline", "must be in the future");
            v.check_with(
                t <= now + Duration::days(365 * MAX_DEADLINE_YEARS),
                "deadline",
                || format!("must be within {MAX_DEADLINE_YEARS} years"),
            );
            Some(t)
        }
    };
    v.into_result()?;
    Ok(NewDemand {
        enterprise_id: req.enterprise_id.clone(),
        title: title.to_string(),
        description: description.to_string(),
        industry_chain: req.industry_chain.clone(),
        contract_type,
        budget_min_fen: req.budget_min_fen,
        budget_max_fen: req.budget_max_fen,
        region_code: req.region_code.clone(),
        // Postgres keeps microseconds: truncate so the stored value is the one we return.
        deadline: deadline
            .and_then(|t| DateTime::from_timestamp_micros(t.timestamp_micros()))
            .ok_or_else(|| Error::invalid("deadline", "is not a valid timestamp"))?,
    })
}

pub fn demand_id(v: &mut Violations, id: &str) {
    input::check_id(v, "demand_id", id, ID_MAX_CHARS);
}

fn note(v: &mut Violations, field: &str, text: &str) {
    NOTE.check(v, field, text);
}

pub fn verification(req: &VerifyDemandRequest) -> Result<(), Error> {
    let mut v = Violations::new();
    demand_id(&mut v, &req.demand_id);
    note(&mut v, "note", &req.note);
    v.check(
        req.approve || !req.note.trim().is_empty(),
        "note",
        "is required to reject a demand: tell the enterprise why",
    );
    v.into_result()
}

pub fn withdrawal(req: &WithdrawDemandRequest) -> Result<(), Error> {
    let mut v = Violations::new();
    demand_id(&mut v, &req.demand_id);
    note(&mut v, "reason", &req.reason);
    v.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_platform::error::FieldViolation;
    use kechuang_platform::events::timestamp;

    fn good(now: DateTime<Utc>) -> SubmitDemandRequest {
        SubmitDemandRequest {
            request_id: "r-1".into(),
            enterprise_id: "91350100M000100Y43".into(),
            title: "焊缝气孔返修率高".into(),
            description: "焊缝经常出现气孔，返修率高，需要改进焊接工艺".into(),
            industry_chain: "高端装备".into(),
            contract_type: ContractType::Development as i32,
            budget_min_fen: 0,
            budget_max_fen: 50_000_000,
            region_code: "420100".into(),
            deadline: Some(timestamp(now + Duration::days(30))),
        }
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::InvalidArgument(v) => v
                .into_iter()
                .map(|FieldViolation { field, .. }| field)
                .collect(),
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn a_good_demand_passes_trimmed() {
        let now = Utc::now();
        let mut req = good(now);
        req.title = "  焊缝气孔返修率高 ".into();
        let d = demand(&req, now).unwrap();
        assert_eq!(d.title, "焊缝气孔返修率高");
        assert_eq!(d.contract_type, ContractType::Development);
    }

    #[test]
    fn each_rule_names_its_field() {
        let now = Utc::now();
        type Breaker = fn(&mut SubmitDemandRequest, DateTime<Utc>);
        let cases: Vec<(&str, Breaker)> = vec![
            ("title", |r, _| r.title = "短".into()),
            ("title", |r, _| r.title = "长".repeat(101)),
            ("description", |r, _| r.description = "太短".into()),
            ("industry_chain", |r, _| r.industry_chain = "造船".into()),
            ("contract_type", |r, _| r.contract_type = 0),
            ("contract_type", |r, _| r.contract_type = 99),
            ("budget_min_fen", |r, _| r.budget_min_fen = -1),
            ("budget_max_fen", |r, _| {
                r.budget_min_fen = 10;
                r.budget_max_fen = 9
            }),
            ("budget_max_fen", |r, _| r.budget_max_fen = i64::MAX),
            ("region_code", |r, _| r.region_code = "4201".into()),
            ("deadline", |r, _| r.deadline = None),
            ("deadline", |r, now| {
                r.deadline = Some(timestamp(now - Duration::seconds(1)))
            }),
            ("enterprise_id", |r, _| r.enterprise_id.clear()),
            ("request_id", |r, _| r.request_id = "x".repeat(201)),
        ];
        for (field, breaker) in cases {
            let mut req = good(now);
            breaker(&mut req, now);
            assert_eq!(
                fields(demand(&req, now).unwrap_err()),
                vec![field],
                "{req:?}"
            );
        }
    }

    #[test]
    fn every_broken_rule_is_reported_at_once() {
        let now = Utc::now();
        let req = SubmitDemandRequest::default();
        let got = fields(demand(&req, now).unwrap_err());
        for f in [
            "enterprise_id",
            "title",
            "description",
            "industry_chain",
            "contract_type",
            "region_code",
            "deadline",
        ] {
            assert!(got.contains(&f.to_string()), "{f} missing from {got:?}");
        }
    }

    #[test]
    fn enterprise_rules() {
        let ok = RegisterEnterpriseRequest {
            name: "武汉光谷激光有限公司".into(),
            credit_code: "91350100M000100Y43".into(),
            region_code: "420100".into(),
            industry_chain: "光电子信息".into(),
        };
        assert!(enterprise(&ok).is_ok());
        let bad = RegisterEnterpriseRequest {
            credit_code: "91350100M000100Y44".into(),
            ..ok.clone()
        };
        assert_eq!(fields(enterprise(&bad).unwrap_err()), vec!["credit_code"]);
        let got = fields(enterprise(&RegisterEnterpriseRequest::default()).unwrap_err());
        assert_eq!(
            got,
            vec!["name", "credit_code", "region_code", "industry_chain"]
        );
    }

    #[test]
    fn a_rejection_needs_a_note() {
        let req = VerifyDemandRequest {
            demand_id: "d".into(),
            approve: false,
            note: " ".into(),
        };
        assert_eq!(fields(verification(&req).unwrap_err()), vec!["note"]);
        let approve = VerifyDemandRequest {
            approve: true,
            note: String::new(),
            ..req
        };
        assert!(verification(&approve).is_ok());
    }
}
