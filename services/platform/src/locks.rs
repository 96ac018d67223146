//! Transaction-scoped advisory locks, each in its own space: the same key ("42" as a bank
//! reference and as an enterprise) locks different things in different spaces. One list, so
//! no two callers pick the same space by accident.

use sqlx::PgConnection;

/// The spaces (the seed of `hashtextextended(key, seed)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockSpace {
    /// An aggregate's events, in order (the outbox's own statements, which spell it `0`).
    Aggregate = 0,
    /// A request id being claimed (idempotency).
    RequestId = 1,
    /// The versions of one policy name.
    PolicyName = 2,
    /// A bank reference of a payment.
    BankReference = 3,
    /// One enterprise's payments, which share its annual cap.
    EnterprisePayments = 4,
    /// One broker's rewards, which share the broker's annual cap.
    BrokerRewards = 5,
}

/// Takes the lock of `key` in `space` until the transaction ends.
pub async fn lock(conn: &mut PgConnection, space: LockSpace, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
        .bind(key)
        .bind(space as i64)
        .execute(conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_statements_lock_in_the_aggregate_space() {
        // They inline the seed for speed; it must stay the aggregate space's.
        assert_eq!(LockSpace::Aggregate as i64, 0);
        let outbox = include_str!("outbox/mod.rs");
        assert!(outbox.contains("hashtextextended($1, 0)"));
        assert!(outbox.contains("hashtextextended(key, 0)"));
    }
}
