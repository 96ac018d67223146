use kechuang_platform::Error;
use kechuang_platform::db::NotifyBudget;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

static PAYOUTS_NOTIFY: NotifyBudget = NotifyBudget::new(Duration::from_millis(5));

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payout {
    pub application_id: String,
    pub disbursement_id: String,
    /// The payee: the enterprise for a subsidy, the broker's subject for a reward.
    pub enterprise_id: String,
    pub amount_fen: i64,
    pub attempts: i32,
}

/// Owes a payout to `payee` (kept in the `enterprise_id` column); a second reservation of the
/// same application owes nothing more.
pub async fn owe(
    conn: &mut PgConnection,
    application_id: &str,
    payee: &str,
    amount_fen: i64,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO payouts (application_id, disbursement_id, enterprise_id, amount_fen) \
         VALUES ($1, 'disb-' || $1, $2, $3) ON CONFLICT (application_id) DO NOTHING",
    )
    .bind(application_id)
    .bind(payee)
    .bind(amount_fen)
    .execute(&mut *conn)
    .await?;
    // Wakes the payout workers when it commits; at most once per period (see NotifyBudget):
    // a woken worker claims every payout committed by then, and its poll the rest.
    if PAYOUTS_NOTIFY.spend() {
        sqlx::query("SELECT pg_notify('kc_payouts', '')")
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Takes the oldest pending payout no other worker holds, leasing it for `lease_secs`: a worker
/// that dies leaves it to another after the lease.
pub async fn claim(pool: &PgPool, lease_secs: i64) -> Result<Option<Payout>, Error> {
    Ok(sqlx::query_as(
        "UPDATE payouts SET locked_until = now() + make_interval(secs => $1), attempts = attempts + 1, updated_at = now() \
         WHERE application_id = ( \
             SELECT application_id FROM payouts \
             WHERE state = 'PENDING' AND (locked_until IS NULL OR locked_until < now()) \
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING application_id, disbursement_id, enterprise_id, amount_fen, attempts",
    )
    .bind(lease_secs as f64)
    .fetch_optional(pool)
    .await?)
}

/// Settles a payout (PAID or FAILED); false when it was already settled.
pub async fn settle(
    conn: &mut PgConnection,
    application_id: &str,
    state: &str,
    bank_reference: &str,
    error: &str,
) -> Result<bool, Error> {
    let updated = sqlx::query(
        "UPDATE payouts SET state = $2, bank_reference = $3, last_error = $4, locked_until = NULL, updated_at = now() \
         WHERE application_id = $1 AND state = 'PENDING'",
    )
    .bind(application_id)
    .bind(state)
    .bind(bank_reference)
    .bind(error)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Gives a failed attempt back after `delay_ms`.
pub async fn retry_later(
    pool: &PgPool,
    application_id: &str,
    delay_ms: i64,
    error: &str,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE payouts SET locked_until = now() + make_interval(secs => $2), last_error = $3, updated_at = now() \
         WHERE application_id = $1 AND state = 'PENDING'",
    )
    .bind(application_id)
    .bind(delay_ms as f64 / 1000.0)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}
