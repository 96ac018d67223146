//! Persistence: small parameterised queries on one connection (usually a transaction).

use crate::domain::Status;
use crate::domain::validate::NewEnterprise;
use chrono::{DateTime, Utc};
use kechuang_platform::error::{Error, ResultExt};
use kechuang_platform::outbox;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EnterpriseRow {
    pub id: String,
    pub name: String,
    pub credit_code: String,
    pub region_code: String,
    pub industry_chain: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DemandRow {
    pub id: Uuid,
    pub enterprise_id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: i32,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
    pub deadline: DateTime<Utc>,
    pub status: String,
    pub version: i64,
    pub correlation_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DemandRow {
    pub fn status(&self) -> Result<Status, Error> {
        Status::parse(&self.status).ok_or_else(|| {
            Error::internal(format!("demand {} has status {:?}", self.id, self.status))
        })
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChangeRow {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub cause_event_id: Option<Uuid>,
    pub note: String,
    pub changed_at: DateTime<Utc>,
}

pub async fn insert_enterprise(
    conn: &mut PgConnection,
    e: &NewEnterprise,
    registered_by: &str,
) -> Result<EnterpriseRow, Error> {
    let exists = || {
        Error::AlreadyExists(format!(
            "an enterprise with credit code {} is already registered",
            e.credit_code
        ))
    };
    sqlx::query_as(
        "INSERT INTO enterprises (id, name, credit_code, region_code, industry_chain, registered_by) \
         VALUES ($1, $2, $1, $3, $4, $5) \
         RETURNING id, name, credit_code, region_code, industry_chain, created_at",
    )
    .bind(&e.credit_code)
    .bind(&e.name)
    .bind(&e.region_code)
    .bind(&e.industry_chain)
    .bind(registered_by)
    .fetch_one(conn)
    .await
    .on_constraint("enterprises_pkey", exists)
    .on_constraint("enterprises_credit_code_key", exists)
}

pub async fn enterprise(conn: &mut PgConnection, id: &str) -> Result<Option<EnterpriseRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, name, credit_code, region_code, industry_chain, created_at \
         FROM enterprises WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The idempotency key a submission claims: its scope, request id and body fingerprint.
pub struct RequestKey<'a> {
    pub scope: &'a str,
    pub request_id: &'a str,
    pub fingerprint: &'a str,
}

/// What [`insert_submitted`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Submitted {
    Written,
    /// The request id was already claimed; nothing was written.
    RequestIdTaken,
}

/// Writes a submitted demand in ONE statement, its own transaction: the request id's claim,
/// the demand, the first line of its history and its `kc.demand.submitted` outbox row (see
/// [`outbox::Staged`]), all only if the enterprise is registered. One round trip and one
/// commit is what lets intake keep pace with the database's raw insert rate. When the request
/// id was already claimed, nothing is written (the statement waits for a concurrent claimer
/// to finish first).
pub async fn insert_submitted(
    pool: &PgPool,
    row: &DemandRow,
    actor: &str,
    key: &RequestKey<'_>,
    event: &outbox::Staged,
) -> Result<Submitted, Error> {
    let (registered, written): (bool, Option<Uuid>) = sqlx::query_as(
        "WITH e AS ( \
            SELECT id FROM enterprises WHERE id = $2 \
         ), claim AS ( \
            INSERT INTO idempotency_keys (scope, request_id, fingerprint, resource_id) \
            SELECT $14, $15, $16, $1::text FROM e WHERE $15 <> '' \
            ON CONFLICT DO NOTHING RETURNING 1 \
         ), d AS ( \
            INSERT INTO demands (id, enterprise_id, title, description, industry_chain, \
                contract_type, budget_min_fen, budget_max_fen, region_code, deadline, status, \
                version, correlation_id, created_at, updated_at) \
            SELECT $1, e.id, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $17, $17 FROM e \
            WHERE $15 = '' OR EXISTS (SELECT 1 FROM claim) \
            RETURNING id, status, created_at \
         ), h AS ( \
            INSERT INTO demand_status_changes (demand_id, from_status, to_status, actor, changed_at) \
            SELECT id, NULL, status, $18, created_at FROM d \
         ), o AS ( \
            INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, \
                aggregate_version, envelope, traceparent) \
            SELECT $19, $20, $21, $22, $23, $24, $25 FROM d \
         ), wake AS ( \
            SELECT pg_notify('kc_outbox', '') FROM d WHERE $26 \
         ) \
         SELECT EXISTS (SELECT 1 FROM e), (SELECT d.id FROM d LEFT JOIN wake ON true)",
    )
    .bind(row.id)
    .bind(&row.enterprise_id)
    .bind(&row.title)
    .bind(&row.description)
    .bind(&row.industry_chain)
    .bind(row.contract_type)
    .bind(row.budget_min_fen)
    .bind(row.budget_max_fen)
    .bind(&row.region_code)
    .bind(row.deadline)
    .bind(&row.status)
    .bind(row.version)
    .bind(&row.correlation_id)
    .bind(key.scope)
    .bind(key.request_id)
    .bind(key.fingerprint)
    .bind(row.created_at)
    .bind(actor)
    .bind(event.event_id)
    .bind(&event.envelope.event_type)
    .bind(&event.envelope.aggregate_type)
    .bind(&event.envelope.aggregate_id)
    .bind(event.envelope.aggregate_version)
    .bind(&event.encoded)
    .bind(&event.traceparent)
    .bind(event.notify)
    .fetch_one(pool)
    .await?;
    match (registered, written) {
        (false, _) => Err(Error::NotFound(format!(
            "enterprise {} not found",
            row.enterprise_id
        ))),
        (true, Some(_)) => Ok(Submitted::Written),
        (true, None) => Ok(Submitted::RequestIdTaken),
    }
}

pub async fn demand(conn: &mut PgConnection, id: Uuid) -> Result<Option<DemandRow>, Error> {
    Ok(sqlx::query_as("SELECT * FROM demands WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// The demand, locked until the transaction ends: status changes are serialised per demand.
pub async fn lock_demand(conn: &mut PgConnection, id: Uuid) -> Result<Option<DemandRow>, Error> {
    Ok(
        sqlx::query_as("SELECT * FROM demands WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn history(conn: &mut PgConnection, id: Uuid) -> Result<Vec<ChangeRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT from_status, to_status, actor, cause_event_id, note, changed_at \
         FROM demand_status_changes WHERE demand_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?)
}

/// Why and by whom a status moved.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub from: Status,
    pub to: Status,
    pub actor: &'a str,
    pub cause_event_id: Option<Uuid>,
    pub note: &'a str,
}

/// Moves a (locked) demand to a new status, bumps its version and appends to its history.
pub async fn move_status(
    conn: &mut PgConnection,
    id: Uuid,
    m: &Move<'_>,
) -> Result<DemandRow, Error> {
    sqlx::query_as(
        "WITH d AS ( \
            UPDATE demands SET status = $2, version = version + 1, updated_at = now() \
            WHERE id = $1 AND status = $3 RETURNING * \
         ), h AS ( \
            INSERT INTO demand_status_changes \
                (demand_id, from_status, to_status, actor, cause_event_id, note, changed_at) \
            SELECT id, $3, status, $4, $5, $6, updated_at FROM d \
         ) \
         SELECT * FROM d",
    )
    .bind(id)
    .bind(m.to.as_str())
    .bind(m.from.as_str())
    .bind(m.actor)
    .bind(m.cause_event_id)
    .bind(m.note)
    .fetch_optional(conn)
    .await?
    // The row is locked by the caller, so its status cannot have changed in between.
    .ok_or_else(|| {
        Error::internal(format!(
            "demand {id} was not {} when moved",
            m.from.as_str()
        ))
    })
}

/// Keeps a downstream event that changed nothing, with the reason.
pub async fn record_ignored(
    conn: &mut PgConnection,
    event_id: Uuid,
    event_type: &str,
    demand_id: &str,
    status_then: Option<Status>,
    reason: &str,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO demand_ignored_events (event_id, event_type, demand_id, status_then, reason) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(demand_id)
    .bind(status_then.map(Status::as_str))
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a listing is narrowed to; `None` is "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub enterprise_id: Option<String>,
    pub industry_chain: Option<String>,
}

/// One page, newest first, after `after` (the (created_at, id) of the last row already seen).
pub async fn list_demands(
    conn: &mut PgConnection,
    filter: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DemandRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT * FROM demands \
         WHERE ($1::text IS NULL OR status = $1) \
           AND ($2::text IS NULL OR enterprise_id = $2) \
           AND ($3::text IS NULL OR industry_chain = $3) \
           AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5::uuid)) \
         ORDER BY created_at DESC, id DESC \
         LIMIT $6",
    )
    .bind(filter.status.map(Status::as_str))
    .bind(filter.enterprise_id.as_deref())
    .bind(filter.industry_chain.as_deref())
    .bind(after.map(|(t, _)| t))
    .bind(after.map(|(_, id)| id))
    .bind(limit)
    .fetch_all(conn)
    .await?)
}
