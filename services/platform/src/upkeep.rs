//! Table upkeep: each service keeps the planner's idea of its tables' sizes close to the truth.
//!
//! A prepared statement is planned once for all (a generic plan) after a few runs, with each
//! table's size as the planner knew it then. A fresh deployment's tables are empty at that
//! moment, so the plan scans them whole, and goes on doing so as they grow to thousands of rows,
//! until an ANALYZE invalidates it. Autovacuum analyzes a database once a minute at best, and
//! not at all where it is off (as on the development machines): measured on the approval saga,
//! whole-table scans of 3,000–7,000 rows took 1.5–2.6 ms a call where an index takes 0.03.
//!
//! Plans care about a table's size to within a factor, not its last row, so a table is analyzed
//! when its live rows are twice or half what the planner last counted: a handful of times as it
//! grows from nothing to millions, where autovacuum's rule (a tenth changed) analyzed the
//! approval saga's tables every few seconds and the replanning that followed cost as much as
//! the scans it saved. Dead rows are left to autovacuum: clearing them here (where it is off)
//! measured dearer than it saved.

use crate::metrics;
use sqlx::{AssertSqlSafe, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the service looks at its tables' counters (Postgres reports them about once a
/// second).
pub const EVERY: Duration = Duration::from_secs(2);

/// Rows a table may gain or lose before its size counts as changed at all (autovacuum's base).
const SLACK_ROWS: f64 = 50.0;

/// Whether the planner's count of a table's rows, `planned` (negative if the table was never
/// analyzed), is off by more than a factor of two from its `live` rows.
pub fn size_is_stale(planned: f64, live: i64) -> bool {
    let (planned, live) = (planned.max(0.0), live.max(0) as f64);
    live > 2.0 * planned + SLACK_ROWS || planned > 2.0 * live + SLACK_ROWS
}

/// Analyzes the database's own tables whose size the planner has wrong; returns their names.
/// A table another session holds (a migration, autovacuum itself) waits for the next look.
pub async fn tend(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    // regclass prints the name quoted where it must be, so it can be put into a statement.
    let tables: Vec<(String, f32, i64)> = sqlx::query_as(
        "SELECT s.relid::regclass::text, c.reltuples, s.n_live_tup \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         ORDER BY s.relid",
    )
    .fetch_all(pool)
    .await?;
    let mut analyzed = Vec::new();
    for (table, planned, live) in tables {
        if size_is_stale(f64::from(planned), live) {
            let sql = format!("ANALYZE (SKIP_LOCKED) {table}");
            sqlx::query(AssertSqlSafe(sql)).execute(pool).await?;
            analyzed.push(table);
        }
    }
    Ok(analyzed)
}

/// Tends `service`'s tables every [`EVERY`] until `shutdown`. Failures (a restarting server, a
/// dropped database) are logged and the next look tries again.
pub async fn run(pool: PgPool, service: &'static str, shutdown: CancellationToken) {
    metrics::count_upkeep(service, "analyze", 0);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        match tend(&pool).await {
            Ok(analyzed) if !analyzed.is_empty() => {
                metrics::count_upkeep(service, "analyze", analyzed.len());
                tracing::debug!(service, ?analyzed, "tables analyzed");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(service, error = %e, "table upkeep failed; next look retries")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::size_is_stale;

    #[test]
    fn a_new_table_is_analyzed_once_it_holds_more_than_a_handful_of_rows() {
        assert!(!size_is_stale(-1.0, 50));
        assert!(size_is_stale(-1.0, 51));
        assert!(size_is_stale(0.0, 51));
    }

    #[test]
    fn a_table_is_analyzed_again_when_it_doubles_or_halves() {
        assert!(!size_is_stale(10_000.0, 20_050));
        assert!(size_is_stale(10_000.0, 20_051));
        assert!(!size_is_stale(10_000.0, 4_975));
        assert!(size_is_stale(10_000.0, 4_974));
    }

    #[test]
    fn a_queue_drained_as_fast_as_it_fills_is_left_alone() {
        // An outbox: thousands of rows a second pass through, a few are there at any time.
        assert!(!size_is_stale(3.0, 40));
        assert!(!size_is_stale(0.0, 0));
    }
}
