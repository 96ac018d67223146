use chrono::{DateTime, Utc};
use kechuang_platform::Error;
use kechuang_proto::events::ContractSigned;
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Contract {
    pub id: String,
    pub demand_id: String,
    pub enterprise_id: String,
    pub contract_type: i32,
    pub amount_fen: i64,
    pub signed_at: DateTime<Utc>,
    pub region_code: String,
    pub industry_chain: String,
    pub paid_fen: i64,
    /// Who brokered the deal (a token subject; empty: nobody to reward).
    pub facilitator: String,
}

/// Registers a signed contract; a replay of the event changes nothing.
pub async fn register(
    conn: &mut PgConnection,
    c: &ContractSigned,
    signed_at: DateTime<Utc>,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO contracts (id, demand_id, pairing_id, enterprise_id, supplier, contract_no, \
         contract_type, amount_fen, signed_at, region_code, industry_chain, supplier_region_code, \
         facilitator, facilitator_role) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&c.contract_id)
    .bind(&c.demand_id)
    .bind(&c.pairing_id)
    .bind(&c.enterprise_id)
    .bind(&c.supplier)
    .bind(&c.contract_no)
    .bind(c.contract_type)
    .bind(c.amount_fen)
    .bind(signed_at)
    .bind(&c.region_code)
    .bind(&c.industry_chain)
    .bind(&c.supplier_region_code)
    .bind(c.facilitator.trim())
    .bind(c.facilitator_role.trim())
    .execute(conn)
    .await?;
    Ok(())
}

/// The contract, locked for this transaction (payments on one contract are serialised).
pub async fn lock(conn: &mut PgConnection, id: &str) -> Result<Option<Contract>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, demand_id, enterprise_id, contract_type, amount_fen, signed_at, region_code, \
         industry_chain, paid_fen, facilitator FROM contracts WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<Contract>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, demand_id, enterprise_id, contract_type, amount_fen, signed_at, region_code, \
         industry_chain, paid_fen, facilitator FROM contracts WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn add_paid(conn: &mut PgConnection, id: &str, amount_fen: i64) -> Result<(), Error> {
    sqlx::query("UPDATE contracts SET paid_fen = paid_fen + $2 WHERE id = $1")
        .bind(id)
        .bind(amount_fen)
        .execute(conn)
        .await?;
    Ok(())
}
