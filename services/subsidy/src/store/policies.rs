use crate::domain::policy::{Policy, PolicyDraft, Tier};
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
    created_by: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<PolicyRow> for Policy {
    type Error = Error;
    fn try_from(r: PolicyRow) -> Result<Self, Error> {
        let tiers: Vec<Tier> = serde_json::from_value(r.tiers).map_err(Error::internal)?;
        Ok(Policy {
            id: r.id,
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
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }
}

const COLUMNS: &str = "id, name, version, fund_id, tiers, per_contract_cap_fen, \
    per_enterprise_annual_cap_fen, contract_types, region_prefixes, industry_chains, valid_from, \
    valid_to, four_eyes_threshold_fen, created_by, created_at";

/// Inserts `draft` as the next version of its name (version 1 for a new name).
pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    draft: &PolicyDraft,
    created_by: &str,
) -> Result<Policy, Error> {
    // Serialise versions of one name.
    locks::lock(conn, LockSpace::PolicyName, &draft.name).await?;
    let version: i32 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM policies WHERE name = $1")
            .bind(&draft.name)
            .fetch_one(&mut *conn)
            .await?;
    let tiers = serde_json::to_value(&draft.tiers).map_err(Error::internal)?;
    let row: PolicyRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO policies (id, name, version, fund_id, tiers, per_contract_cap_fen, \
         per_enterprise_annual_cap_fen, contract_types, region_prefixes, industry_chains, \
         valid_from, valid_to, four_eyes_threshold_fen, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {COLUMNS}"
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
    .bind(created_by)
    .fetch_one(&mut *conn)
    .await?;
    row.try_into()
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
    let row: Option<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Policy::try_from).transpose()
}

/// Every policy version: the choice among them is the domain's.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Policy>, Error> {
    let rows: Vec<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies"
    )))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Policy::try_from).collect()
}

/// Newest first, after the cursor `(created_at, id)`.
pub async fn page(
    conn: &mut PgConnection,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<Policy>, Error> {
    let (at, id) = after.unzip();
    let rows: Vec<PolicyRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM policies \
         WHERE $1::timestamptz IS NULL OR (created_at, id) < ($1, $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    )))
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Policy::try_from).collect()
}
