//! The ledger's tables: small parameterised queries on one connection (usually a
//! transaction). Which transfer to write is decided by `domain`; `ledger` sequences these.

use crate::domain::audit::{AccountFigures, FundFigures, TransferGroup};
use crate::domain::{
    AccountKind, Balances, Fen, PriorTopUp, Reservation, Transfer, TransferKind, transfer_id,
};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A fund with its balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fund {
    pub id: String,
    pub name: String,
    pub low_balance_fen: Fen,
    pub low_balance_alerted: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub balances: Balances,
}

#[derive(sqlx::FromRow)]
struct FundRow {
    id: String,
    name: String,
    low_balance_fen: i64,
    low_balance_alerted: bool,
    version: i64,
    created_at: DateTime<Utc>,
    available: i64,
    reserved: i64,
    disbursed: i64,
}

impl From<FundRow> for Fund {
    fn from(r: FundRow) -> Self {
        Fund {
            id: r.id,
            name: r.name,
            low_balance_fen: r.low_balance_fen,
            low_balance_alerted: r.low_balance_alerted,
            version: r.version,
            created_at: r.created_at,
            balances: Balances {
                available: r.available,
                reserved: r.reserved,
                disbursed: r.disbursed,
            },
        }
    }
}

const FUND_COLUMNS: &str = "SELECT f.id, f.name, f.low_balance_fen, f.low_balance_alerted, f.version, f.created_at, \
       (SELECT credits_fen - debits_fen FROM accounts WHERE id = f.id || ':available') AS available, \
       (SELECT credits_fen - debits_fen FROM accounts WHERE id = f.id || ':reserved') AS reserved, \
       (SELECT credits_fen - debits_fen FROM accounts WHERE id = f.id || ':disbursed') AS disbursed \
     FROM funds f WHERE f.id = $1";

/// Creates a fund and its four empty accounts; false (and nothing written) if the id exists.
pub async fn insert_fund(
    conn: &mut PgConnection,
    id: &str,
    name: &str,
    low_balance_fen: Fen,
    alerted: bool,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO funds (id, name, low_balance_fen, low_balance_alerted) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(low_balance_fen)
    .bind(alerted)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let kinds: Vec<&str> = AccountKind::ALL.iter().map(|k| k.as_str()).collect();
        let ids: Vec<String> = AccountKind::ALL.iter().map(|k| k.account_id(id)).collect();
        sqlx::query(
            "INSERT INTO accounts (id, fund_id, kind) SELECT a, $1, k FROM unnest($2::text[], $3::text[]) AS x(a, k)",
        )
        .bind(id)
        .bind(&ids)
        .bind(&kinds)
        .execute(&mut *conn)
        .await?;
    }
    Ok(inserted)
}

/// Reads a fund without locking it.
pub async fn fund(conn: &mut PgConnection, id: &str) -> Result<Option<Fund>, sqlx::Error> {
    let row: Option<FundRow> = sqlx::query_as(sqlx::AssertSqlSafe(FUND_COLUMNS))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Fund::from))
}

/// Locks a fund's row until the transaction ends, then reads it. Every movement of a fund's
/// money takes this lock first, so balances read here cannot change before commit: two
/// concurrent reservations can never both spend the same available fen.
///
/// Two statements on purpose: under READ COMMITTED a `SELECT … FOR UPDATE` that waited for
/// the lock re-reads the locked row but evaluates the rest of the statement (the balances in
/// `accounts`) in its old snapshot. The read after the lock takes a fresh snapshot. (The
/// concurrency test caught the one-statement version; `accounts_no_overdraft` refused it.)
pub async fn lock_fund(conn: &mut PgConnection, id: &str) -> Result<Option<Fund>, sqlx::Error> {
    let locked: Option<i32> = sqlx::query_scalar("SELECT 1 FROM funds WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    if locked.is_none() {
        return Ok(None);
    }
    fund(conn, id).await
}

/// Saves what the fund row tracks besides money: its event version and alarm state.
pub async fn save_fund_state(
    conn: &mut PgConnection,
    id: &str,
    version: i64,
    alerted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE funds SET version = $2, low_balance_alerted = $3 WHERE id = $1")
        .bind(id)
        .bind(version)
        .bind(alerted)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes a transfer and moves its amount between the two accounts, in one statement.
/// The primary key refuses a transfer id written before; `transfers_resolved_once` a second
/// resolution; `accounts_no_overdraft` a debit beyond an account's credits.
pub async fn write_transfer(
    conn: &mut PgConnection,
    fund_id: &str,
    t: &Transfer,
) -> Result<(), sqlx::Error> {
    let (debit, credit) = t.kind.accounts();
    sqlx::query(
        "WITH t AS (INSERT INTO transfers (id, fund_id, debit_account, credit_account, amount_fen, kind, pending_id, reference) \
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)), \
              d AS (UPDATE accounts SET debits_fen = debits_fen + $5 WHERE id = $3), \
              c AS (UPDATE accounts SET credits_fen = credits_fen + $5 WHERE id = $4) \
         SELECT 1",
    )
    .bind(t.id)
    .bind(fund_id)
    .bind(debit.account_id(fund_id))
    .bind(credit.account_id(fund_id))
    .bind(t.amount)
    .bind(t.kind.as_str())
    .bind(t.pending_id)
    .bind(&t.reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a batch leaves the fund row at besides money: its event version and alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundState {
    pub version: i64,
    pub low_balance_alerted: bool,
}

/// Writes `transfers` in the order given (their `seq` follows it) and moves each amount
/// between its two accounts, all in one statement: a batch's transfers in one round trip. The
/// accounts are checked once, as the batch leaves them; the batch was decided step by step
/// against the running balance, so no step in between overdrew either. The fund's `state`,
/// when it changed, is saved in the same statement.
pub async fn write_transfers(
    conn: &mut PgConnection,
    fund_id: &str,
    transfers: &[Transfer],
    state: Option<FundState>,
) -> Result<(), sqlx::Error> {
    if transfers.is_empty() {
        if let Some(state) = state {
            save_fund_state(conn, fund_id, state.version, state.low_balance_alerted).await?;
        }
        return Ok(());
    }
    let ids: Vec<Uuid> = transfers.iter().map(|t| t.id).collect();
    let accounts = |side: fn((AccountKind, AccountKind)) -> AccountKind| -> Vec<String> {
        transfers
            .iter()
            .map(|t| side(t.kind.accounts()).account_id(fund_id))
            .collect()
    };
    let amounts: Vec<i64> = transfers.iter().map(|t| t.amount).collect();
    let kinds: Vec<&str> = transfers.iter().map(|t| t.kind.as_str()).collect();
    let pending: Vec<Option<Uuid>> = transfers.iter().map(|t| t.pending_id).collect();
    let references: Vec<&str> = transfers.iter().map(|t| t.reference.as_str()).collect();
    sqlx::query(
        "WITH t AS ( \
             INSERT INTO transfers (id, fund_id, debit_account, credit_account, amount_fen, kind, pending_id, reference) \
             SELECT id, $2, debit, credit, amount, kind, pending, reference \
             FROM unnest($1::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::uuid[], $8::text[]) \
                  WITH ORDINALITY AS x(id, debit, credit, amount, kind, pending, reference, position) \
             ORDER BY position \
             RETURNING debit_account, credit_account, amount_fen), \
         fund_state AS ( \
             UPDATE funds SET version = $9, low_balance_alerted = $10 WHERE id = $2 AND $11), \
         moves AS ( \
             SELECT debit_account AS account, amount_fen AS debit, 0::BIGINT AS credit FROM t \
             UNION ALL SELECT credit_account, 0, amount_fen FROM t) \
         UPDATE accounts a SET debits_fen = a.debits_fen + m.debit, credits_fen = a.credits_fen + m.credit \
         FROM (SELECT account, sum(debit)::BIGINT AS debit, sum(credit)::BIGINT AS credit \
               FROM moves GROUP BY account) m \
         WHERE a.id = m.account",
    )
    .bind(&ids)
    .bind(fund_id)
    .bind(accounts(|(debit, _)| debit))
    .bind(accounts(|(_, credit)| credit))
    .bind(&amounts)
    .bind(&kinds)
    .bind(&pending)
    .bind(&references)
    .bind(state.map_or(0, |s| s.version))
    .bind(state.is_some_and(|s| s.low_balance_alerted))
    .bind(state.is_some())
    .execute(conn)
    .await?;
    Ok(())
}

/// The reservations of `application_ids` the ledger holds, with their funds.
pub async fn reservations(
    conn: &mut PgConnection,
    application_ids: &[&str],
) -> Result<Vec<(String, Reservation)>, sqlx::Error> {
    let ids: Vec<Uuid> = application_ids
        .iter()
        .map(|a| transfer_id(TransferKind::Reserve, a))
        .collect();
    let rows: Vec<(String, Uuid, i64, String, Option<String>)> = sqlx::query_as(
        "SELECT p.fund_id, p.id, p.amount_fen, p.reference, r.kind FROM transfers p \
         LEFT JOIN transfers r ON r.pending_id = p.id \
         WHERE p.id = ANY($1) AND p.kind = 'reserve'",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(fund_id, id, amount, application_id, resolution)| {
            (
                fund_id,
                Reservation {
                    id,
                    application_id,
                    amount,
                    resolution: resolution.as_deref().and_then(TransferKind::parse),
                },
            )
        })
        .collect())
}

/// An application's reservation and its fund, if the ledger has one.
pub async fn reservation(
    conn: &mut PgConnection,
    application_id: &str,
) -> Result<Option<(String, Reservation)>, sqlx::Error> {
    let row: Option<(String, Uuid, i64, Option<String>)> = sqlx::query_as(
        "SELECT p.fund_id, p.id, p.amount_fen, r.kind FROM transfers p \
         LEFT JOIN transfers r ON r.pending_id = p.id \
         WHERE p.id = $1 AND p.kind = 'reserve'",
    )
    .bind(transfer_id(TransferKind::Reserve, application_id))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(fund_id, id, amount, resolution)| {
        (
            fund_id,
            Reservation {
                id,
                application_id: application_id.to_string(),
                amount,
                resolution: resolution.as_deref().and_then(TransferKind::parse),
            },
        )
    }))
}

/// The top-up written under `reference`, if any.
pub async fn prior_top_up(
    conn: &mut PgConnection,
    reference: &str,
) -> Result<Option<PriorTopUp>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT fund_id, amount_fen FROM transfers WHERE id = $1 AND kind = 'top_up'",
    )
    .bind(transfer_id(TransferKind::TopUp, reference))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(fund_id, amount)| PriorTopUp { fund_id, amount }))
}

/// A written transfer, with its resolution when it is a reservation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TransferRecord {
    pub seq: i64,
    pub id: Uuid,
    pub fund_id: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount_fen: i64,
    pub kind: String,
    pub pending_id: Option<Uuid>,
    pub reference: String,
    pub created_at: DateTime<Utc>,
    pub resolution: Option<String>,
}

/// A fund's transfers after position `after_seq`, oldest first.
pub async fn list_transfers(
    conn: &mut PgConnection,
    fund_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<TransferRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.seq, t.id, t.fund_id, t.debit_account, t.credit_account, t.amount_fen, t.kind, \
                t.pending_id, t.reference, t.created_at, r.kind AS resolution \
         FROM transfers t LEFT JOIN transfers r ON r.pending_id = t.id \
         WHERE t.fund_id = $1 AND t.seq > $2 ORDER BY t.seq LIMIT $3",
    )
    .bind(fund_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn fund_ids(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM funds ORDER BY id")
        .fetch_all(conn)
        .await
}

pub async fn transfer_count(
    conn: &mut PgConnection,
    fund_id: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM transfers WHERE $1::text IS NULL OR fund_id = $1")
        .bind(fund_id)
        .fetch_one(conn)
        .await
}

/// At most this many offending ids per finding: enough to act on, bounded to report.
const FINDINGS_LIMIT: i64 = 100;

/// What the invariants need about one fund, computed from the account rows and, separately,
/// from the transfers themselves. Run it in one snapshot (REPEATABLE READ) for a consistent view.
pub async fn fund_figures(
    conn: &mut PgConnection,
    fund_id: &str,
) -> Result<FundFigures, sqlx::Error> {
    let stored: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT kind, debits_fen, credits_fen FROM accounts WHERE fund_id = $1 ORDER BY kind",
    )
    .bind(fund_id)
    .fetch_all(&mut *conn)
    .await?;
    let groups: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT kind, debit_account, credit_account, count(*), min(amount_fen), sum(amount_fen)::BIGINT \
         FROM transfers WHERE fund_id = $1 GROUP BY kind, debit_account, credit_account",
    )
    .bind(fund_id)
    .fetch_all(&mut *conn)
    .await?;
    let pending_fen: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(p.amount_fen), 0)::BIGINT FROM transfers p \
         WHERE p.fund_id = $1 AND p.kind = 'reserve' \
           AND NOT EXISTS (SELECT 1 FROM transfers r WHERE r.pending_id = p.id)",
    )
    .bind(fund_id)
    .fetch_one(&mut *conn)
    .await?;
    let stray_resolutions: Vec<String> = sqlx::query_scalar(
        "SELECT r.id::text FROM transfers r LEFT JOIN transfers p ON p.id = r.pending_id \
         WHERE r.fund_id = $1 AND r.kind IN ('post', 'void') \
           AND (p.id IS NULL OR p.kind <> 'reserve' OR p.fund_id <> r.fund_id \
                OR p.amount_fen <> r.amount_fen OR p.reference <> r.reference) \
         ORDER BY r.seq LIMIT $2",
    )
    .bind(fund_id)
    .bind(FINDINGS_LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    let resolved_twice: Vec<String> = sqlx::query_scalar(
        "SELECT pending_id::text FROM transfers WHERE fund_id = $1 AND pending_id IS NOT NULL \
         GROUP BY pending_id HAVING count(*) > 1 LIMIT $2",
    )
    .bind(fund_id)
    .bind(FINDINGS_LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    let paid_twice: Vec<String> = sqlx::query_scalar(
        "SELECT reference FROM transfers WHERE kind = 'post' AND reference IN \
           (SELECT reference FROM transfers WHERE fund_id = $1 AND kind = 'post') \
         GROUP BY reference HAVING count(*) > 1 LIMIT $2",
    )
    .bind(fund_id)
    .bind(FINDINGS_LIMIT)
    .fetch_all(&mut *conn)
    .await?;

    let sum_for = |account: &str, debit: bool| -> i64 {
        groups
            .iter()
            .filter(|g| {
                if debit {
                    g.1 == account
                } else {
                    g.2 == account
                }
            })
            .map(|g| g.5)
            .sum()
    };
    let accounts = stored
        .iter()
        .filter_map(|(kind, debits, credits)| {
            let kind = AccountKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
            let id = kind.account_id(fund_id);
            Some(AccountFigures {
                kind,
                debits: *debits,
                credits: *credits,
                transfer_debits: sum_for(&id, true),
                transfer_credits: sum_for(&id, false),
            })
        })
        .collect();
    let posted_fen = groups.iter().filter(|g| g.0 == "post").map(|g| g.5).sum();
    Ok(FundFigures {
        fund_id: fund_id.to_string(),
        accounts,
        transfer_groups: groups
            .into_iter()
            .map(
                |(kind, debit_account, credit_account, count, min_amount, _)| TransferGroup {
                    kind,
                    debit_account,
                    credit_account,
                    count,
                    min_amount,
                },
            )
            .collect(),
        pending_fen,
        posted_fen,
        stray_resolutions,
        resolved_twice,
        paid_twice,
    })
}
