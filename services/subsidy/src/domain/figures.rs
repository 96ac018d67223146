//! Monthly registration figures (技术合同登记月报): certified contracts per month (China time,
//! by the certification date) and per city, the technical amount each city's enterprises
//! absorbed (吸纳) and its institutions exported (输出), by statutory type and industry chain.
//! Plain rules, no I/O: the store tallies certified contracts by month and full region code;
//! here the request is checked and the tallies are rolled up into cities.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kechuang_platform::{Error, Role, Violations};
use kechuang_proto::subsidy::{GetMonthlyFiguresRequest, MonthlyFigure};
use std::collections::BTreeMap;

/// Who reads the figures: registrars and the finance office (not enterprises or suppliers).
pub const READERS: &[Role] = &[
    Role::Registrar,
    Role::FinanceOfficer,
    Role::FinanceApprover,
    Role::Auditor,
];

/// The most months one request covers (three years).
pub const MAX_MONTHS: i32 = 36;

/// China time is UTC+8 all year (no daylight saving).
pub const CHINA_OFFSET_HOURS: i64 = 8;

/// A calendar month, China time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl Month {
    /// Exactly `YYYY-MM` (a year from 2000 to 2999, a month from 01 to 12).
    pub fn parse(s: &str) -> Option<Month> {
        let b = s.as_bytes();
        if b.len() != 7
            || b[4] != b'-'
            || !s[..4]
                .bytes()
                .chain(s[5..].bytes())
                .all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let year: i32 = s[..4].parse().ok()?;
        let month: u32 = s[5..].parse().ok()?;
        ((2000..=2999).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    /// Months since year 0 (for differences).
    fn index(self) -> i32 {
        self.year * 12 + self.month as i32 - 1
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The first instant of the month in China time, as UTC.
    pub fn start(self) -> DateTime<Utc> {
        let midnight = NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .expect("a parsed month has a first day")
            .and_hms_opt(0, 0, 0)
            .expect("midnight");
        Utc.from_utc_datetime(&midnight) - chrono::TimeDelta::hours(CHINA_OFFSET_HOURS)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// A checked request: months `from..=to`, cities starting with `region_prefix` (maybe empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub from: Month,
    pub to: Month,
    pub region_prefix: String,
}

impl Query {
    /// The certification instants it covers: `[start, end)`, UTC.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (self.from.start(), self.to.next().start())
    }
}

/// The request's rules, every broken one named.
pub fn query(r: &GetMonthlyFiguresRequest) -> Result<Query, Error> {
    let mut v = Violations::new();
    const FORMAT: &str = "must be a month written YYYY-MM (e.g. 2026-11)";
    let from = Month::parse(r.from_month.trim());
    let to = Month::parse(r.to_month.trim());
    v.check(from.is_some(), "from_month", FORMAT);
    v.check(to.is_some(), "to_month", FORMAT);
    if let (Some(from), Some(to)) = (from, to) {
        v.check(
            to >= from,
            "to_month",
            format!("must not be before from_month ({from})"),
        );
        v.check(
            to.index() - from.index() < MAX_MONTHS,
            "to_month",
            format!("must be at most {MAX_MONTHS} months from from_month, both counted ({from})"),
        );
    }
    let prefix = r.region_prefix.trim();
    v.check(
        prefix.is_empty()
            || ((2..=6).contains(&prefix.len()) && prefix.bytes().all(|c| c.is_ascii_digit())),
        "region_prefix",
        "must be empty or 2 to 6 digits of a region code (e.g. 42 or 420100)",
    );
    v.into_result()?;
    Ok(Query {
        from: from.expect("checked"),
        to: to.expect("checked"),
        region_prefix: prefix.to_string(),
    })
}

/// Which party of a contract a tally counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The enterprise's region: technology absorbed.
    Absorbed,
    /// The supplier's region: technology exported.
    Exported,
}

/// Certified contracts of one month, one side, one full region code, one type and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub month: String,
    pub side: Side,
    pub region_code: String,
    pub contract_type: i32,
    pub industry_chain: String,
    pub contracts: i64,
    pub amount_fen: i64,
}

/// The city of a 6-digit region code: its first 4 digits and "00" (420111 → 420100); a code
/// that is not 6 digits (a contract recorded before the supplier's region was kept) has none.
pub fn city_of(region_code: &str) -> String {
    if region_code.len() == 6 && region_code.bytes().all(|c| c.is_ascii_digit()) {
        format!("{}00", &region_code[..4])
    } else {
        String::new()
    }
}

/// The tallies rolled up into rows per month, city, type and chain (absorbed and exported
/// side by side), only cities starting with `region_prefix`, ordered by those keys.
pub fn rows(tallies: &[Tally], region_prefix: &str) -> Vec<MonthlyFigure> {
    let mut rows: BTreeMap<(String, String, i32, String), MonthlyFigure> = BTreeMap::new();
    for t in tallies {
        let city = city_of(&t.region_code);
        if !region_prefix.is_empty() && !city.starts_with(region_prefix) {
            continue;
        }
        let key = (
            t.month.clone(),
            city.clone(),
            t.contract_type,
            t.industry_chain.clone(),
        );
        let row = rows.entry(key).or_insert_with(|| MonthlyFigure {
            month: t.month.clone(),
            city_name: kechuang_vocabulary::region_name(&city)
                .unwrap_or_default()
                .to_string(),
            city_code: city,
            contract_type: t.contract_type,
            industry_chain: t.industry_chain.clone(),
            ..MonthlyFigure::default()
        });
        let (contracts, amount) = match t.side {
            Side::Absorbed => (&mut row.absorbed_contracts, &mut row.absorbed_amount_fen),
            Side::Exported => (&mut row.exported_contracts, &mut row.exported_amount_fen),
        };
        *contracts = contracts.saturating_add(t.contracts);
        *amount = amount.saturating_add(t.amount_fen);
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_proto::common::ContractType;

    fn request(from: &str, to: &str, prefix: &str) -> GetMonthlyFiguresRequest {
        GetMonthlyFiguresRequest {
            from_month: from.into(),
            to_month: to.into(),
            region_prefix: prefix.into(),
        }
    }

    fn fields(e: Error) -> Vec<String> {
        match e {
            Error::InvalidArgument(v) => v.into_iter().map(|f| f.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn months_are_exactly_year_dash_month() {
        assert_eq!(
            Month::parse("2026-11"),
            Some(Month {
                year: 2026,
                month: 11
            })
        );
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "",
            "１９９９-01",
            "1999-12",
            "+026-11",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Month::parse("2026-12").unwrap().next().to_string(),
            "2027-01"
        );
    }

    #[test]
    fn a_month_starts_at_midnight_china_time() {
        let nov = Month::parse("2026-11").unwrap();
        assert_eq!(nov.start().to_rfc3339(), "2026-10-31T16:00:00+00:00");
        let q = query(&request("2026-11", "2026-12", "")).unwrap();
        let (start, end) = q.window();
        assert_eq!(start, nov.start());
        assert_eq!(end.to_rfc3339(), "2026-12-31T16:00:00+00:00");
    }

    #[test]
    fn bad_requests_name_their_fields() {
        assert_eq!(
            fields(query(&request("2026-13", "x", "")).unwrap_err()),
            ["from_month", "to_month"]
        );
        assert_eq!(
            fields(query(&request("2026-11", "2026-10", "")).unwrap_err()),
            ["to_month"]
        );
        assert!(
            query(&request("2026-01", "2028-12", "")).is_ok(),
            "36 months pass"
        );
        assert_eq!(
            fields(query(&request("2026-01", "2029-01", "")).unwrap_err()),
            ["to_month"]
        );
        assert_eq!(
            fields(query(&request("2026-01", "2026-01", "4")).unwrap_err()),
            ["region_prefix"]
        );
        assert_eq!(
            fields(query(&request("2026-01", "2026-01", "42010x")).unwrap_err()),
            ["region_prefix"]
        );
        let q = query(&request(" 2026-01 ", "2026-01", " 4201 ")).unwrap();
        assert_eq!(
            (q.from, q.to, q.region_prefix.as_str()),
            (
                Month {
                    year: 2026,
                    month: 1
                },
                Month {
                    year: 2026,
                    month: 1
                },
                "4201"
            )
        );
    }

    fn tally(
        month: &str,
        side: Side,
        region: &str,
        t: ContractType,
        chain: &str,
        n: i64,
        fen: i64,
    ) -> Tally {
        Tally {
            month: month.into(),
            side,
            region_code: region.into(),
            contract_type: t as i32,
            industry_chain: chain.into(),
            contracts: n,
            amount_fen: fen,
        }
    }

    #[test]
    fn districts_roll_up_into_cities_with_both_sides_in_one_row() {
        use ContractType::{Development, Transfer};
        let tallies = [
            tally(
                "2026-11",
                Side::Absorbed,
                "420111",
                Transfer,
                "高端装备",
                1,
                100,
            ),
            tally(
                "2026-11",
                Side::Absorbed,
                "420102",
                Transfer,
                "高端装备",
                2,
                250,
            ),
            tally(
                "2026-11",
                Side::Exported,
                "420100",
                Transfer,
                "高端装备",
                1,
                40,
            ),
            tally(
                "2026-11",
                Side::Exported,
                "420600",
                Transfer,
                "高端装备",
                2,
                310,
            ),
            tally(
                "2026-11",
                Side::Absorbed,
                "420111",
                Development,
                "北斗",
                1,
                7,
            ),
            tally("2026-10", Side::Exported, "", Development, "北斗", 1, 9),
        ];
        let rows = rows(&tallies, "");
        let keys: Vec<(&str, &str, &str, i32)> = rows
            .iter()
            .map(|r| {
                (
                    r.month.as_str(),
                    r.city_code.as_str(),
                    r.city_name.as_str(),
                    r.contract_type,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("2026-10", "", "", Development as i32),
                ("2026-11", "420100", "武汉市", Development as i32),
                ("2026-11", "420100", "武汉市", Transfer as i32),
                ("2026-11", "420600", "襄阳市", Transfer as i32),
            ]
        );
        let wuhan = &rows[2];
        assert_eq!(
            (wuhan.absorbed_contracts, wuhan.absorbed_amount_fen),
            (3, 350)
        );
        assert_eq!(
            (wuhan.exported_contracts, wuhan.exported_amount_fen),
            (1, 40)
        );
        assert_eq!(
            (rows[3].absorbed_contracts, rows[3].exported_amount_fen),
            (0, 310)
        );
        // Every fen of every tally is in exactly one row.
        let total: i64 = rows
            .iter()
            .map(|r| r.absorbed_amount_fen + r.exported_amount_fen)
            .sum();
        assert_eq!(total, tallies.iter().map(|t| t.amount_fen).sum::<i64>());

        let only_xiangyang = super::rows(&tallies, "4206");
        assert_eq!(only_xiangyang.len(), 1);
        assert_eq!(only_xiangyang[0].city_code, "420600");
    }

    #[test]
    fn a_city_is_a_six_digit_codes_first_four_digits() {
        assert_eq!(city_of("420111"), "420100");
        assert_eq!(city_of("429004"), "429000");
        assert_eq!(city_of(""), "");
        assert_eq!(city_of("4201"), "");
    }
}
