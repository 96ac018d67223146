//! The rows a run leaves in the services' own tables, counted, to compare with what the flow
//! implies.

use super::Books;
use kechuang_platform::ServiceKind;
use sqlx::PgPool;
use std::collections::BTreeMap;

/// Rows the flow leaves in the services' own tables.
#[derive(Debug, PartialEq, Eq)]
pub struct Tally {
    /// Per demand (matching).
    pub pairings_per_demand: Vec<i64>,
    /// Contracts known to matching and to subsidy.
    pub contracts: (i64, i64),
    pub payments: i64,
    /// Applications per status.
    pub applications: BTreeMap<String, i64>,
    pub approvals: i64,
    /// Payouts per state, with the bank attempts they took.
    pub payouts: BTreeMap<String, (i64, i64)>,
    /// Ledger transfers per kind: (count, distinct references, sum in fen).
    pub transfers: BTreeMap<String, (i64, i64, i64)>,
    /// Per demand, its status moves in order ("submitted>verified>...").
    pub demand_paths: Vec<String>,
}

impl Books {
    /// The rows the flow left, counted.
    pub async fn tally(&self) -> Tally {
        let matching = self.pool(ServiceKind::Matching);
        let subsidy = self.pool(ServiceKind::Subsidy);
        let ledger = self.pool(ServiceKind::FundLedger);
        let demand = self.pool(ServiceKind::DemandIntake);
        let scalar = |pool: &PgPool, sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        };
        let pairings_per_demand = sqlx::query_scalar(
            "SELECT count(*) FROM pairings GROUP BY demand_id ORDER BY demand_id",
        )
        .fetch_all(matching)
        .await
        .expect("pairings");
        let applications = sqlx::query_as::<_, (String, i64)>(
            "SELECT status, count(*) FROM applications GROUP BY status",
        )
        .fetch_all(subsidy)
        .await
        .expect("applications")
        .into_iter()
        .collect();
        let payouts = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT state, count(*), sum(attempts)::BIGINT FROM payouts GROUP BY state",
        )
        .fetch_all(subsidy)
        .await
        .expect("payouts")
        .into_iter()
        .map(|(state, n, attempts)| (state, (n, attempts)))
        .collect();
        let transfers = sqlx::query_as::<_, (String, i64, i64, i64)>(
            "SELECT kind, count(*), count(DISTINCT reference), sum(amount_fen)::BIGINT \
             FROM transfers GROUP BY kind",
        )
        .fetch_all(ledger)
        .await
        .expect("transfers")
        .into_iter()
        .map(|(kind, n, references, sum)| (kind, (n, references, sum)))
        .collect();
        let demand_paths = sqlx::query_scalar(
            // A demand records its submission itself; its later moves are rows.
            "SELECT 'submitted' || coalesce('>' || string_agg(c.to_status, '>' ORDER BY c.id), '') \
             FROM demands d LEFT JOIN demand_status_changes c ON c.demand_id = d.id \
             GROUP BY d.id ORDER BY d.id",
        )
        .fetch_all(demand)
        .await
        .expect("status changes");
        Tally {
            pairings_per_demand,
            contracts: (
                scalar(matching, "SELECT count(*) FROM contracts").await,
                scalar(subsidy, "SELECT count(*) FROM contracts").await,
            ),
            payments: scalar(subsidy, "SELECT count(*) FROM payments").await,
            applications,
            approvals: scalar(subsidy, "SELECT count(*) FROM approvals").await,
            payouts,
            transfers,
            demand_paths,
        }
    }
}
