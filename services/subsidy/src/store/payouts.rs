use kechuang_platform::Error;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payout {
    pub application_id: String,
    pub disbursement_id: String,
    /// The payee: the enterprise for a subsidy, the broker's subject for a reward.
    pub enterprise_id: String,
    pub amount_fen: i64,
    pub attempts: i32,
}

/// Owes a payout to `payee` (kept in the `enterprise_id` column), leased for `lease_secs` to
/// the caller, who hands it to its worker once this commits: no other worker claims it
/// meanwhile, and if the caller's process dies first, the lease runs out and any worker
/// claims it. A second reservation of the same application owes nothing more (`None`).
pub async fn owe(
    conn: &mut PgConnection,
    application_id: &str,
    payee: &str,
    amount_fen: i64,
    lease_secs: i64,
) -> Result<Option<Payout>, Error> {
    Ok(sqlx::query_as(
        "INSERT INTO payouts (application_id, disbursement_id, enterprise_id, amount_fen, locked_until, attempts) \
         VALUES ($1, 'disb-' || $1, $2, $3, now() + make_interval(secs => $4), 1) \
         ON CONFLICT (application_id) DO NOTHING \
         RETURNING application_id, disbursement_id, enterprise_id, amount_fen, attempts",
    )
    .bind(application_id)
    .bind(payee)
    .bind(amount_fen)
    .bind(lease_secs as f64)
    .fetch_optional(conn)
    .await?)
}

/// Moves the applications of `owed` (`(application, payee, amount)` each, locked by the caller
/// and found reservable) to FUNDS_RESERVED and owes their payouts, in one statement: what a
/// reservation does, for a whole group. The payouts owed now (an application already owed one
/// is not in it).
pub async fn reserve_and_owe(
    conn: &mut PgConnection,
    owed: &[(&str, &str, i64)],
    lease_secs: i64,
) -> Result<Vec<Payout>, Error> {
    if owed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = owed.iter().map(|o| o.0).collect();
    let payees: Vec<&str> = owed.iter().map(|o| o.1).collect();
    let amounts: Vec<i64> = owed.iter().map(|o| o.2).collect();
    Ok(sqlx::query_as(
        "WITH reserved AS ( \
             UPDATE applications SET status = 'FUNDS_RESERVED', status_reason = '', \
                    updated_at = now(), version = version + 1 \
             WHERE id = ANY($1) \
         ) \
         INSERT INTO payouts (application_id, disbursement_id, enterprise_id, amount_fen, locked_until, attempts) \
         SELECT a, 'disb-' || a, p, f, now() + make_interval(secs => $4), 1 \
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS o(a, p, f) \
         ON CONFLICT (application_id) DO NOTHING \
         RETURNING application_id, disbursement_id, enterprise_id, amount_fen, attempts",
    )
    .bind(&ids)
    .bind(&payees)
    .bind(&amounts)
    .bind(lease_secs as f64)
    .fetch_all(conn)
    .await?)
}

/// Takes up to `limit` of the oldest pending payouts that no worker holds (a lease ran out, a
/// retry fell due), leasing each for `lease_secs`: a worker that dies leaves them to another
/// after the lease.
pub async fn claim(pool: &PgPool, lease_secs: i64, limit: i64) -> Result<Vec<Payout>, Error> {
    Ok(sqlx::query_as(
        "UPDATE payouts SET locked_until = now() + make_interval(secs => $1), attempts = attempts + 1, updated_at = now() \
         WHERE application_id IN ( \
             SELECT application_id FROM payouts \
             WHERE state = 'PENDING' AND (locked_until IS NULL OR locked_until < now()) \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING application_id, disbursement_id, enterprise_id, amount_fen, attempts",
    )
    .bind(lease_secs as f64)
    .bind(limit)
    .fetch_all(pool)
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

/// [`settle`] for several payouts, `(application, state, bank reference, error)` each, in
/// one statement: the applications whose payout was settled now (the others already were).
pub async fn settle_all(
    conn: &mut PgConnection,
    outcomes: &[(&str, &str, &str, &str)],
) -> Result<std::collections::HashSet<String>, Error> {
    let column = |f: fn(&(&str, &str, &str, &str)) -> String| -> Vec<String> {
        outcomes.iter().map(f).collect()
    };
    let settled: Vec<String> = sqlx::query_scalar(
        "UPDATE payouts p SET state = o.state, bank_reference = o.reference, last_error = o.error, \
         locked_until = NULL, updated_at = now() \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS o(id, state, reference, error) \
         WHERE p.application_id = o.id AND p.state = 'PENDING' RETURNING p.application_id",
    )
    .bind(column(|o| o.0.to_string()))
    .bind(column(|o| o.1.to_string()))
    .bind(column(|o| o.2.to_string()))
    .bind(column(|o| o.3.to_string()))
    .fetch_all(conn)
    .await?;
    Ok(settled.into_iter().collect())
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
