use crate::domain::audit::{self, Entry, GENESIS};
use chrono::Utc;
use kechuang_platform::{Caller, Error};
use sqlx::PgConnection;

/// Appends one finance action to the hash chain, in the caller's transaction.
pub async fn append(
    conn: &mut PgConnection,
    actor: &str,
    role: &str,
    action: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<(), Error> {
    // One writer at a time: the chain is a sequence.
    sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT sequence, hash FROM audit_log ORDER BY sequence DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    let (sequence, prev_hash) = last.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
    let mut entry = Entry {
        sequence,
        at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        actor: actor.into(),
        role: role.into(),
        action: action.into(),
        target_id: target_id.into(),
        details: details.to_string(),
        prev_hash: prev_hash.clone(),
        hash: String::new(),
    };
    entry.hash = audit::link_hash(&prev_hash, &entry);
    sqlx::query(
        "INSERT INTO audit_log (sequence, at, actor, role, action, target_id, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.sequence)
    .bind(&entry.at)
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(&entry.action)
    .bind(&entry.target_id)
    .bind(&entry.details)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// An action by a person.
pub async fn by(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    target_id: &str,
    details: serde_json::Value,
) -> Result<(), Error> {
    append(
        conn,
        &caller.subject,
        &caller.roles.to_string(),
        action,
        target_id,
        details,
    )
    .await
}

#[derive(sqlx::FromRow)]
struct Row {
    sequence: i64,
    at: String,
    actor: String,
    role: String,
    action: String,
    target_id: String,
    details: String,
    prev_hash: String,
    hash: String,
}

fn entry(r: Row) -> Entry {
    Entry {
        sequence: r.sequence,
        at: r.at,
        actor: r.actor,
        role: r.role,
        action: r.action,
        target_id: r.target_id,
        details: r.details,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

pub async fn page(conn: &mut PgConnection, after: i64, limit: i64) -> Result<Vec<Entry>, Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT sequence, at, actor, role, action, target_id, details, prev_hash, hash FROM audit_log \
         WHERE sequence > $1 ORDER BY sequence LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(entry).collect())
}

pub async fn all(conn: &mut PgConnection) -> Result<Vec<Entry>, Error> {
    page(conn, 0, i64::MAX).await
}
