//! The ledger's gauges, sampled by the platform (see `kechuang_platform::metrics::sampler`):
//! the balance of every fund's available, reserved and disbursed account.

use kechuang_platform::metrics::Sample;
use sqlx::PgPool;

/// A fund account's balance in fen (credits less debits), by `fund` and `account`. Exact as a
/// float: balances stay far below 2^53 fen.
pub const BALANCE_METRIC: &str = "kc_fund_balance_fen";

/// Funds reported at most (in id order): a bound on the series, far above the handful of funds
/// a province runs.
const MAX_FUNDS: i64 = 100;

/// The accounts worth watching; the treasury's balance is only minus what was topped up.
const ACCOUNTS: [&str; 3] = ["available", "reserved", "disbursed"];

pub fn describe() {
    kechuang_platform::metrics::describe_gauge(
        BALANCE_METRIC,
        "Balance of a fund's available, reserved or disbursed account, in fen",
    );
}

/// One sample per fund and account (three index reads per fund).
pub async fn balances(pool: PgPool) -> Result<Vec<Sample>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT a.fund_id, a.kind, a.credits_fen - a.debits_fen \
         FROM (SELECT id FROM funds ORDER BY id LIMIT $1) AS f \
         JOIN accounts AS a ON a.fund_id = f.id AND a.kind = ANY($2)",
    )
    .bind(MAX_FUNDS)
    .bind(&ACCOUNTS[..])
    .fetch_all(&pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(fund, account, balance)| Sample {
            name: BALANCE_METRIC,
            labels: vec![("fund", fund), ("account", account)],
            value: balance as f64,
        })
        .collect())
}
