//! Tallies of certified registrations for the monthly figures ([`crate::domain::figures`]).

use crate::domain::figures::{CHINA_OFFSET_HOURS, Side, Tally};
use chrono::{DateTime, Utc};
use kechuang_platform::Error;
use sqlx::PgConnection;

#[derive(sqlx::FromRow)]
struct Row {
    month: String,
    exported: bool,
    region_code: String,
    contract_type: i32,
    industry_chain: String,
    contracts: i64,
    amount_fen: i64,
}

/// Certified registrations decided in `[start, end)`, counted twice: once by the enterprise's
/// region (absorbed), once by the supplier's (exported); per month of the certification in
/// China time, full region code, certified type and industry chain.
pub async fn tallies(
    conn: &mut PgConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Tally>, Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT to_char((r.decided_at AT TIME ZONE 'UTC') + make_interval(hours => $3), 'YYYY-MM') \
            AS month, side.exported, side.region_code, r.contract_type, c.industry_chain, \
            count(*)::BIGINT AS contracts, sum(r.certified_amount_fen)::BIGINT AS amount_fen \
         FROM registrations r JOIN contracts c ON c.id = r.contract_id \
         CROSS JOIN LATERAL (VALUES (false, c.region_code), (true, c.supplier_region_code)) \
            AS side (exported, region_code) \
         WHERE r.status = 'CERTIFIED' AND r.decided_at >= $1 AND r.decided_at < $2 \
         GROUP BY 1, 2, 3, 4, 5",
    )
    .bind(start)
    .bind(end)
    .bind(CHINA_OFFSET_HOURS as i32)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Tally {
            month: r.month,
            side: if r.exported {
                Side::Exported
            } else {
                Side::Absorbed
            },
            region_code: r.region_code,
            contract_type: r.contract_type,
            industry_chain: r.industry_chain,
            contracts: r.contracts,
            amount_fen: r.amount_fen,
        })
        .collect())
}
