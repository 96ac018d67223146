use crate::domain::policy::{Kind, Policy, PolicyDraft, PolicyStatus, Tier};
use chrono::{DateTime, Utc};
use kechuang_platform::Error;
use kechuang_platform::locks::{self, LockSpace};
use kechuang_proto::common::ContractType;
use sqlx::PgConnection;

#[derive(sqlx::FromRow)]
struct PolicyRow {
    id: String,
    name: String,
    version: i32,
    fund_id: String,
    tiers: serde_json::Value,
    per_contract_cap_fen: i64,
    per_enterprise_annual_cap_fen: i64,
    contract_types: Vec<i32>,
    region_prefixes: Vec<String>,
    industry_chains: Vec<String>,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    four_eyes_threshold_fen: i64,
    claim_window_days: i32,
    subsidise_unregistered: bool,
    created_by: String,
    created_at: DateTime<Utc>,
    status: String,
    decided_by: String,
    decided_at: Option<DateTime<Utc>>,
    decision_note: String,
    superseded_by: String,
    superseded_at: Option<DateTime<Utc>>,
    kind: String,
}

impl TryFrom<PolicyRow> for Policy {
    type Error = Error;
    fn try_from(r: PolicyRow) -> Result<Self, Error> {
        let tiers: Vec<Tier> = serde_json::from_value(r.tiers).map_err(Error::internal)?;
        let status = PolicyStatus::parse(&r.status)
            .ok_or_else(|| Error::internal(format!("policy {} has status {:?}", r.id, r.status)))?;
        let kind = Kind::parse(&r.kind)
            .ok_or_else(|| Error::internal(format!("policy {} has kind {:?}", r.id, r.kind)))?;
        Ok(Policy {
            id: r.id,
            kind,
            name: r.name,
            version: r.version,
            fund_id: r.fund_id,
            tiers,
            per_contract_cap_fen: r.per_contract_cap_fen,
            per_enterprise_annual_cap_fen: r.per_enterprise_annual_cap_fen,
            contract_types: r
                .contract_types
                .into_iter()
                .filter_map(|t| ContractType::try_from(t).ok())
                .collect(),
            region_prefixes: r.region_prefixes,
            industry_chains: r.industry_chains,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            four_eyes_threshold_fen: r.four_eyes_threshold_fen,
            claim_window_days: r.claim_window_days,
            subsidise_unregistered: r.subsidise_unregistered,
            created_by: r.created_by,
            created_at: r.created_at,
            status,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            decision_note: r.decision_note,
            superseded_by: r.superseded_by,
            superseded_at: r.superseded_at,
        })
    }
}

const COLUMNS: &str = "id, name, version, fund_id, tiers, per_contract_cap_fen, \
    per_enterprise_annual_cap_fen, contract_types, region_prefixes, industry_chains, valid_from, \
    valid_to, four_eyes_threshold_fen, claim_window_days, subsidise_unregistered, created_by, \
    created_at, status, \
    decided_by, decided_at, decision_note, superseded_by, superseded_at, kind";

fn policies(rows: Vec<PolicyRow>) -> Result<Vec<Policy>, Error> {
    rows.into_iter().map(Policy::try_from).collect()
}

/// Serialises proposals and decisions of one policy name until the transaction ends.
pub async fn lock_name(conn: &mut PgConnection, name: &str) -> Result<(), Error> {
    locks::lock(conn, LockSpace::PolicyName, name.trim()).await?;
    Ok(())
}

/// Inserts `draft` as the next version of its name (version 1 for a new name), PROPOSED.
pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    draft: &PolicyDraft,
    proposed_by: &str,
) -> Result<Policy, Error> {
    lock_name(conn, &draft.name).await?;
    // A name's versions are one policy: a new version keeps its kind, or approving it would
    // supersede a policy of the other kind.
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT kind FROM policies WHERE name = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(draft.name.trim())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(kind) = existing.filter(|k| k != draft.kind.as_str()) {
        return Err(Error::invalid(
            "kind",
            format!(
                "the policy named {:?} is of kind {kind}; a new version keeps its kind",
                draft.name.trim()
            ),
        ));
    }
    let version: i32 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE name = $1")
            .bind(draft.name.trim())
            .fetch_one(&mut *conn)
            .await?;
    let tiers = serde_json::to_value(&draft.tiers).map_err(Error::internal)?;
    let row: PolicyRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO policies (id, name, version, fund_id, tiers, per_contract_cap_fen, \
         per_enterprise_annual_cap_fen, contract_types, region_prefixes, industry_chains, \
         valid_from, valid_to, four_eyes_threshold_fen, created_by, claim_window_days, \
         subsidise_unregistered, status, kind) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'PROPOSED', $17) \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(draft.name.trim())
    .bind(version)
    .bind(draft.fund_id.trim())
    .bind(tiers)
    .bind(draft.per_contract_cap_fen)
    .bind(draft.per_enterprise_annual_cap_fen)
    .bind(&draft.contract_types)
    .bind(&draft.region_prefixes)
    .bind(&draft.industry_chains)
    .bind(draft.valid_from)
    .bind(draft.valid_to)
    .bind(draft.four_eyes_threshold_fen)
    .bind(proposed_by)
    .bind(draft.claim_window_days)
    .bind(draft.subsidise_unregistered)
    .bind(draft.kind.as_str())
    .fetch_one(&mut *conn)
    .await?;
    row.try_into()
}

/// Records the decision on a PROPOSED version: IN_FORCE or REJECTED.
pub async fn decide(
    conn: &mut PgConnection,
    id: &str,
    status: PolicyStatus,
    decided_by: &str,
    note: &str,
) -> Result<Policy, Error> {
    let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE policies SET status = $2, decided_by = $3, decided_at = now(), decision_note = $4 \
         WHERE id = $1 AND status = 'PROPOSED' RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(decided_by)
    .bind(note)
    .fetch_optional(conn)
    .await?;
    row.ok_or_else(|| Error::FailedPrecondition(format!("policy {id} is no longer PROPOSED")))?
        .try_into()
}

/// Marks every earlier version of `name` that is in force or still proposed SUPERSEDED by
/// `by_id` (version `version`); the ids with the status each had.
pub async fn supersede_earlier(
    conn: &mut PgConnection,
    name: &str,
    version: i32,
    by_id: &str,
) -> Result<Vec<(String, String)>, Error> {
    Ok(sqlx::query_as(
        "WITH earlier AS ( \
             SELECT id, status FROM policies \
             WHERE name = $1 AND version < $2 AND status IN ('IN_FORCE', 'PROPOSED') FOR UPDATE) \
         UPDATE policies p SET status = 'SUPERSEDED', superseded_by = $3, superseded_at = now() \
         FROM earlier WHERE p.id = earlier.id RETURNING p.id, earlier.status",
    )
    .bind(name)
    .bind(version)
    .bind(by_id)
    .fetch_all(conn)
    .await?)
}

/// The version of `name` in force, if any.
pub async fn in_force_version(conn: &mut PgConnection, name: &str) -> Result<Option<i32>, Error> {
    Ok(
        sqlx::query_scalar("SELECT version FROM policies WHERE name = $1 AND status = 'IN_FORCE'")
            .bind(name)
            .fetch_optional(conn)
            .await?,
    )
}

pub async fn exists(conn: &mut PgConnection, id: &str) -> Result<bool, Error> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM policies WHERE id = $1)")
            .bind(id)
            .fetch_one(conn)
            .await?,
    )
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<Policy>, Error> {
    fetch_one(conn, id, "").await
}

/// The policy, locked until the transaction ends.
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Policy>, Error> {
    fetch_one(conn, id, " FOR UPDATE").await
}

async fn fetch_one(conn: &mut PgConnection, id: &str, lock: &str) -> Result<Option<Policy>, Error> {
    let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Policy::try_from).transpose()
}

/// The versions in force: the choice among them is the domain's.
pub async fn in_force(conn: &mut PgConnection) -> Result<Vec<Policy>, Error> {
    let rows: Vec<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies WHERE status = 'IN_FORCE'"
    )))
    .fetch_all(conn)
    .await?;
    policies(rows)
}

/// Newest first, after the cursor `(created_at, id)`, in `status` when given.
pub async fn page(
    conn: &mut PgConnection,
    status: Option<PolicyStatus>,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Policy>, Error> {
    let (at, id) = after.unzip();
    let rows: Vec<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies \
         WHERE ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2)) \
           AND ($3::text IS NULL OR status = $3) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(at)
    .bind(id)
    .bind(status.map(PolicyStatus::as_str))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    policies(rows)
}
