//! Monthly registration figures (技术合同登记月报) for registrars and the finance office:
//! certified technical amounts per month and city, absorbed by the city's enterprises and
//! exported by its institutions, by statutory type and industry chain; a month range filter,
//! the table, and the same rows as a CSV download.

use super::layout::{Nav, contract_type, page_response};
use super::{FIGURE_READERS, Session, require_role, service_error};
use crate::AppState;
use crate::money::yuan;
use crate::pages::forms::Problems;
use crate::pages::layout::urlencode;
use crate::status::ApiError;
use crate::upstream::authed;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, FixedOffset, Months, Utc};
use kechuang_proto::subsidy::{self as spb, MonthlyFigure};
use maud::{Markup, html};
use serde::Deserialize;

/// Months shown when the filter names none: this month (China time) and the eleven before.
const DEFAULT_MONTHS: u32 = 12;

#[derive(Deserialize, Default)]
pub struct FiguresQuery {
    from: Option<String>,
    to: Option<String>,
    region: Option<String>,
}

/// The months and region asked for, the defaults filled in.
struct Range {
    from: String,
    to: String,
    region: String,
}

impl Range {
    fn of(q: FiguresQuery) -> Range {
        let now = Utc::now().with_timezone(&FixedOffset::east_opt(8 * 3600).expect("UTC+8"));
        let month = |d: chrono::DateTime<FixedOffset>| format!("{:04}-{:02}", d.year(), d.month());
        let earliest = now
            .checked_sub_months(Months::new(DEFAULT_MONTHS - 1))
            .unwrap_or(now);
        let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        Range {
            from: given(q.from).unwrap_or_else(|| month(earliest)),
            to: given(q.to).unwrap_or_else(|| month(now)),
            region: given(q.region).unwrap_or_default(),
        }
    }

    fn query_string(&self) -> String {
        format!(
            "from={}&to={}&region={}",
            urlencode(&self.from),
            urlencode(&self.to),
            urlencode(&self.region)
        )
    }
}

async fn read(
    state: &AppState,
    session: &Session,
    r: &Range,
) -> Result<spb::MonthlyFigures, ApiError> {
    let request = spb::GetMonthlyFiguresRequest {
        from_month: r.from.clone(),
        to_month: r.to.clone(),
        region_prefix: r.region.clone(),
    };
    Ok(state
        .upstream
        .registration
        .clone()
        .get_monthly_figures(authed(request, &session.token)?)
        .await?
        .into_inner())
}

/// The city as people read it: its name and code, or "unknown" for the supplier side of
/// contracts recorded before the supplier's region was kept.
fn city(r: &MonthlyFigure) -> String {
    match (r.city_code.as_str(), r.city_name.as_str()) {
        ("", _) => "未知 unknown".into(),
        (code, "") => code.into(),
        (code, name) => format!("{name} {code}"),
    }
}

/// Sums of every row: (absorbed contracts, absorbed fen, exported contracts, exported fen).
fn totals(rows: &[MonthlyFigure]) -> (i64, i64, i64, i64) {
    rows.iter().fold((0, 0, 0, 0), |t, r| {
        (
            t.0 + r.absorbed_contracts,
            t.1 + r.absorbed_amount_fen,
            t.2 + r.exported_contracts,
            t.3 + r.exported_amount_fen,
        )
    })
}

fn filter(r: &Range, problems: &Problems) -> Markup {
    let bad = |name: &str| problems.get(name).map(|_| "true");
    html! {
        form.card #range method="get" action="/console/figures" {
            div.cols {
                div.field.invalid[problems.get("from_month").is_some()] data-field="from_month" {
                    label for="from" { "起始月份 From month" }
                    input #from type="month" name="from" value=(r.from) placeholder="2026-01" aria-invalid=[bad("from_month")];
                    @if let Some(p) = problems.get("from_month") { div.why #from-error role="alert" { (p) } }
                }
                div.field.invalid[problems.get("to_month").is_some()] data-field="to_month" {
                    label for="to" { "截止月份 To month" }
                    input #to type="month" name="to" value=(r.to) placeholder="2026-12" aria-invalid=[bad("to_month")];
                    @if let Some(p) = problems.get("to_month") { div.why #to-error role="alert" { (p) } }
                }
            }
            div.field.invalid[problems.get("region_prefix").is_some()] data-field="region_prefix" {
                label for="region" { "地区代码前缀 Region prefix (optional: 42 湖北, 4201 武汉)" }
                input #region type="text" name="region" value=(r.region) maxlength="6" inputmode="numeric" aria-invalid=[bad("region_prefix")];
                @if let Some(p) = problems.get("region_prefix") { div.why #region-error role="alert" { (p) } }
            }
            button type="submit" { "查询 Show" }
        }
    }
}

fn table(r: &Range, f: &spb::MonthlyFigures) -> Markup {
    let (an, af, en, ef) = totals(&f.rows);
    html! {
        p {
            a #csv href={"/console/figures.csv?" (r.query_string())} download { "下载 CSV Download CSV" }
            span.muted { " " (f.from_month) " – " (f.to_month) }
        }
        table #figures {
            thead {
                tr {
                    th { "月份 Month" } th { "城市 City" } th { "认定类型 Type" } th { "产业链 Chain" }
                    th.num { "吸纳项数 Absorbed" } th.num { "吸纳金额 Absorbed amount" }
                    th.num { "输出项数 Exported" } th.num { "输出金额 Exported amount" }
                }
            }
            tbody {
                @for row in &f.rows {
                    tr data-month=(row.month) data-city=(row.city_code) {
                        td { (row.month) } td { (city(row)) } td { (contract_type(row.contract_type)) } td { (row.industry_chain) }
                        td.num { (row.absorbed_contracts) } td.num { (yuan(row.absorbed_amount_fen)) }
                        td.num { (row.exported_contracts) } td.num { (yuan(row.exported_amount_fen)) }
                    }
                }
                @if f.rows.is_empty() {
                    tr { td colspan="8" .muted #empty { "这段时间没有认定登记的合同。No contract was certified in these months." } }
                }
            }
            tfoot {
                tr #totals {
                    th colspan="4" { "合计 Total" }
                    th.num { (an) } th.num #absorbed-total { (yuan(af)) }
                    th.num { (en) } th.num #exported-total { (yuan(ef)) }
                }
            }
        }
        p.muted { "吸纳：企业在该市的合同；输出：供方在该市的合同。金额为认定的技术交易额，按认定日期（北京时间）计月。Absorbed: contracts of the city's enterprises; exported: of its institutions. Amounts are certified technical amounts, by the month of certification (China time)." }
    }
}

pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FiguresQuery>,
) -> Response {
    let session = match require_role(&state, &headers, FIGURE_READERS).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let range = Range::of(q);
    let (status, problems, result) = match read(&state, &session, &range).await {
        Ok(f) => (StatusCode::OK, Problems::default(), Ok(f)),
        Err(e) if !e.body.field_violations.is_empty() => (e.status, Problems::of(&e), Err(None)),
        Err(e) => (e.status, Problems::default(), Err(Some(e))),
    };
    let body = html! {
        h1 { "技术合同登记月报 Monthly registration figures" }
        (filter(&range, &problems))
        @match &result {
            Ok(f) => { (table(&range, f)) }
            Err(Some(e)) => { (super::refused("无法读取月报 Cannot read the figures", e)) }
            Err(None) => { div.error #error role="alert" { "请更正标出的字段。Correct the marked field." } }
        }
    };
    let mut response = page_response(&session, "登记月报 Monthly figures", Nav::Figures, body);
    *response.status_mut() = status;
    response
}

/// A text cell a spreadsheet must not take for a formula: one starting with `=`, `+`, `-`,
/// `@` or a control character gets a leading apostrophe.
fn text_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// Fen as a plain yuan figure with two decimals (no grouping: spreadsheets read it as a number).
fn plain_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The rows as CSV (RFC 4180 quoting), a header row first, with a UTF-8 BOM so Excel reads
/// the Chinese right.
pub fn to_csv(rows: &[MonthlyFigure]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let header = [
        "month",
        "city_code",
        "city_name",
        "contract_type",
        "industry_chain",
        "absorbed_contracts",
        "absorbed_amount_yuan",
        "exported_contracts",
        "exported_amount_yuan",
    ];
    w.write_record(header).expect("writing to memory");
    for r in rows {
        w.write_record([
            r.month.clone(),
            r.city_code.clone(),
            text_cell(&r.city_name),
            contract_type(r.contract_type).to_string(),
            text_cell(&r.industry_chain),
            r.absorbed_contracts.to_string(),
            plain_yuan(r.absorbed_amount_fen),
            r.exported_contracts.to_string(),
            plain_yuan(r.exported_amount_fen),
        ])
        .expect("writing to memory");
    }
    let bytes = w.into_inner().expect("writing to memory");
    format!(
        "\u{feff}{}",
        String::from_utf8(bytes).expect("the cells are UTF-8")
    )
}

pub async fn csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<FiguresQuery>,
) -> Response {
    let session = match require_role(&state, &headers, FIGURE_READERS).await {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let range = Range::of(q);
    match read(&state, &session, &range).await {
        Ok(f) => (
            [
                (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"registration-figures-{}-{}.csv\"",
                        f.from_month, f.to_month
                    ),
                ),
            ],
            to_csv(&f.rows),
        )
            .into_response(),
        Err(e) => service_error(&session, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_proto::common::ContractType;

    fn row(city: &str, name: &str, chain: &str, fen: i64) -> MonthlyFigure {
        MonthlyFigure {
            month: "2026-11".into(),
            city_code: city.into(),
            city_name: name.into(),
            contract_type: ContractType::Transfer as i32,
            industry_chain: chain.into(),
            absorbed_contracts: 2,
            absorbed_amount_fen: fen,
            exported_contracts: 0,
            exported_amount_fen: 0,
        }
    }

    #[test]
    fn the_csv_has_a_bom_a_header_and_quoted_cells() {
        let csv = to_csv(&[
            row("420100", "武汉市", "高端装备", 123_456_789),
            row("", "", "新材料, \"特种\"", 5),
            row("420600", "襄阳市", "=HYPERLINK(\"x\")", 0),
        ]);
        assert!(csv.starts_with('\u{feff}'));
        let mut lines = csv.trim_start_matches('\u{feff}').split("\r\n");
        assert_eq!(
            lines.next().unwrap(),
            "month,city_code,city_name,contract_type,industry_chain,absorbed_contracts,absorbed_amount_yuan,exported_contracts,exported_amount_yuan"
        );
        assert_eq!(
            lines.next().unwrap(),
            "2026-11,420100,武汉市,技术转让,高端装备,2,1234567.89,0,0.00"
        );
        assert_eq!(
            lines.next().unwrap(),
            "2026-11,,,技术转让,\"新材料, \"\"特种\"\"\",2,0.05,0,0.00"
        );
        assert_eq!(
            lines.next().unwrap(),
            "2026-11,420600,襄阳市,技术转让,\"'=HYPERLINK(\"\"x\"\")\",2,0.00,0,0.00"
        );
    }

    #[test]
    fn totals_add_every_row() {
        let rows = [
            row("420100", "武汉市", "北斗", 100),
            row("420600", "襄阳市", "北斗", 250),
        ];
        assert_eq!(totals(&rows), (4, 350, 0, 0));
        assert_eq!(plain_yuan(-5), "-0.05");
    }
}
