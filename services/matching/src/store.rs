//! The sky net's tables: small parameterised queries on the caller's connection.

use crate::domain::{DemandState, Facilitator, NewAchievement, NewContract};
use chrono::{DateTime, Utc};
use kechuang_platform::auth::Role;
use kechuang_proto::events::DemandDetails;
use kechuang_proto::matching::PairingStatus;
use sqlx::{PgConnection, Postgres, QueryBuilder};

pub mod meanings;
pub mod supplier;

/// NOTIFY channel telling every replica what changed, once it is committed.
pub const CHANNEL: &str = "kc_matching";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AchievementRow {
    pub id: String,
    pub institution: String,
    pub title: String,
    pub r#abstract: String,
    pub keywords: Vec<String>,
    pub industry_chain: String,
    pub trl: i32,
    pub transfer_modes: Vec<i32>,
    pub asking_price_fen: i64,
    pub region_code: String,
    pub created_at: DateTime<Utc>,
    pub registered_by: String,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub withdrawn_reason: String,
}

pub const ACHIEVEMENT_COLUMNS: &str = "id, institution, title, abstract, keywords, industry_chain, trl, \
     transfer_modes, asking_price_fen, region_code, created_at, registered_by, withdrawn_at, \
     withdrawn_reason";

/// Inserts achievements registered by `registered_by` in one multi-row statement; returns
/// them as stored.
pub async fn insert_achievements(
    conn: &mut PgConnection,
    rows: &[(String, NewAchievement)],
    registered_by: &str,
) -> Result<Vec<AchievementRow>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO achievements (id, institution, title, abstract, keywords, industry_chain, \
         trl, transfer_modes, asking_price_fen, region_code, registered_by) ",
    );
    q.push_values(rows, |mut b, (id, a)| {
        b.push_bind(id.clone())
            .push_bind(a.institution.clone())
            .push_bind(a.title.clone())
            .push_bind(a.abstract_text.clone())
            .push_bind(a.keywords.clone())
            .push_bind(a.industry_chain.clone())
            .push_bind(a.trl)
            .push_bind(
                a.transfer_modes
                    .iter()
                    .map(|m| *m as i32)
                    .collect::<Vec<_>>(),
            )
            .push_bind(a.asking_price_fen)
            .push_bind(a.region_code.clone())
            .push_bind(registered_by.to_owned());
    });
    q.push(" RETURNING ");
    q.push(ACHIEVEMENT_COLUMNS);
    q.build_query_as().fetch_all(conn).await
}

pub async fn get_achievement(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<AchievementRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACHIEVEMENT_COLUMNS} FROM achievements WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The achievements of `ids` still in the catalog (not withdrawn).
pub async fn achievements_by_ids(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<AchievementRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACHIEVEMENT_COLUMNS} FROM achievements WHERE id = ANY($1) AND withdrawn_at IS NULL"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Marks an achievement withdrawn; `None` if it is unknown. Withdrawing twice keeps the first.
pub async fn withdraw_achievement(
    conn: &mut PgConnection,
    id: &str,
    reason: &str,
) -> Result<Option<AchievementRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE achievements SET withdrawn_at = COALESCE(withdrawn_at, now()), \
         withdrawn_reason = CASE WHEN withdrawn_at IS NULL THEN $2 ELSE withdrawn_reason END \
         WHERE id = $1 RETURNING {ACHIEVEMENT_COLUMNS}"
    )))
    .bind(id)
    .bind(reason)
    .fetch_optional(conn)
    .await
}

/// Every pairing's outcome so far (see `engine::outcomes`).
pub async fn outcomes(
    conn: &mut PgConnection,
) -> Result<Vec<matching_engine::outcomes::Outcome>, sqlx::Error> {
    let rows: Vec<(String, i32, Option<bool>, bool)> =
        sqlx::query_as(matching_engine::outcomes::OUTCOMES_SQL)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(matching_engine::outcomes::Outcome::from)
        .collect())
}

/// Keeps an answer to a pairing as a label: the rank and score it had when answered.
pub async fn record_outcome(
    conn: &mut PgConnection,
    pairing: &PairingRow,
    accepted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pairing_outcomes (pairing_id, demand_id, achievement_id, rank, score, accepted) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(&pairing.id)
    .bind(&pairing.demand_id)
    .bind(&pairing.achievement_id)
    .bind(pairing.rank)
    .bind(pairing.score)
    .bind(accepted)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Marks the outcome of a pairing as contracted (the first contract's time).
pub async fn outcome_contracted(
    conn: &mut PgConnection,
    pairing_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pairing_outcomes SET contracted_at = COALESCE(contracted_at, now()) \
         WHERE pairing_id = $1",
    )
    .bind(pairing_id)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Which of `ids` are withdrawn. Read inside the transaction that stores pairings: a replica
/// whose index has not heard of a withdrawal yet must still not pair the achievement.
pub async fn withdrawn_among(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM achievements WHERE id = ANY($1) AND withdrawn_at IS NOT NULL",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}

/// One page of the catalog (withdrawn achievements left out) in id order, after `after`.
pub async fn achievements_after(
    conn: &mut PgConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<AchievementRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACHIEVEMENT_COLUMNS} FROM achievements WHERE id > $1 AND withdrawn_at IS NULL \
         ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DemandRow {
    pub id: String,
    pub enterprise_id: String,
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: i32,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
    pub verified: bool,
    pub status: String,
    /// The technology manager who verified it (kc.demand.verified's `verified_by`); empty for
    /// demands stored before matching kept it.
    pub verified_by: String,
}

impl DemandRow {
    pub fn state(&self) -> Option<DemandState> {
        DemandState::parse(&self.status)
    }

    /// Verified and neither withdrawn nor rejected: it still receives pairings.
    pub fn is_open(&self) -> bool {
        self.verified && self.state() == Some(DemandState::Open)
    }
}

const DEMAND_COLUMNS: &str = "id, enterprise_id, title, description, industry_chain, contract_type, \
     budget_min_fen, budget_max_fen, region_code, verified, status, verified_by";

/// Stores a verified demand and who verified it. `None` when it was already verified (a
/// replay or a second verification event: nothing to do); else the row, which may be closed if
/// a withdrawal or rejection arrived first.
pub async fn store_verified_demand(
    conn: &mut PgConnection,
    d: &DemandDetails,
    deadline: Option<DateTime<Utc>>,
    verified_by: &str,
) -> Result<Option<DemandRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO demands (id, enterprise_id, title, description, industry_chain, \
             contract_type, budget_min_fen, budget_max_fen, region_code, deadline, verified, status, \
             verified_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, 'open', $11) \
         ON CONFLICT (id) DO UPDATE SET enterprise_id = EXCLUDED.enterprise_id, \
             title = EXCLUDED.title, description = EXCLUDED.description, \
             industry_chain = EXCLUDED.industry_chain, contract_type = EXCLUDED.contract_type, \
             budget_min_fen = EXCLUDED.budget_min_fen, budget_max_fen = EXCLUDED.budget_max_fen, \
             region_code = EXCLUDED.region_code, deadline = EXCLUDED.deadline, verified = true, \
             verified_by = EXCLUDED.verified_by, updated_at = now() \
         WHERE NOT demands.verified \
         RETURNING {DEMAND_COLUMNS}"
    )))
    .bind(&d.demand_id)
    .bind(&d.enterprise_id)
    .bind(&d.title)
    .bind(&d.description)
    .bind(&d.industry_chain)
    .bind(d.contract_type)
    .bind(d.budget_min_fen)
    .bind(d.budget_max_fen)
    .bind(&d.region_code)
    .bind(deadline)
    .bind(verified_by)
    .fetch_optional(conn)
    .await
}

/// Closes a demand for good (`withdrawn` or `rejected`), creating a closed placeholder when
/// the closing event overtook the verification. Its proposed pairings expire. True when it
/// was open before.
pub async fn close_demand(
    conn: &mut PgConnection,
    demand_id: &str,
    enterprise_id: &str,
    status: DemandState,
) -> Result<bool, sqlx::Error> {
    let closed: Option<String> = sqlx::query_scalar(
        "INSERT INTO demands (id, enterprise_id, status) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = now() \
         WHERE demands.status IN ('open', 'contracted') RETURNING id",
    )
    .bind(demand_id)
    .bind(enterprise_id)
    .bind(status.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE pairings SET status = $2, version = version + 1, updated_at = now() \
         WHERE demand_id = $1 AND status = $3",
    )
    .bind(demand_id)
    .bind(PairingStatus::Expired as i32)
    .bind(PairingStatus::Proposed as i32)
    .execute(&mut *conn)
    .await?;
    Ok(closed.is_some())
}

/// A contract was signed on one of the demand's pairings: no more pairings are pushed to it.
pub async fn mark_contracted(conn: &mut PgConnection, demand_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE demands SET status = 'contracted', updated_at = now() \
         WHERE id = $1 AND status = 'open'",
    )
    .bind(demand_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The demand, locked until the transaction ends (pairings of one demand are ranked one
/// writer at a time).
pub async fn lock_demand(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<DemandRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DEMAND_COLUMNS} FROM demands WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn get_demand(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<DemandRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DEMAND_COLUMNS} FROM demands WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn open_demands(conn: &mut PgConnection) -> Result<Vec<DemandRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {DEMAND_COLUMNS} FROM demands WHERE status = 'open' AND verified"
    )))
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PairingRow {
    pub id: String,
    pub demand_id: String,
    pub achievement_id: String,
    pub enterprise_id: String,
    pub score: f64,
    pub rank: i32,
    pub reasons: Vec<String>,
    pub status: i32,
    pub note: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the enterprise accepted it; `None` unless ACCEPTED.
    pub accepted_at: Option<DateTime<Utc>>,
    /// The contract signed on it, if any (at most one: `contracts_pairing_key`).
    pub contract_id: Option<String>,
    /// Who facilitated it, recorded when it was accepted (empty before, and when unknown).
    pub facilitator: String,
    /// `broker` or `tech_manager`; empty when `facilitator` is.
    pub facilitator_role: String,
}

impl PairingRow {
    /// The facilitator recorded on it (role names other than the two are read as none).
    pub fn recorded_facilitator(&self) -> Facilitator {
        let role = [Role::Broker, Role::TechManager]
            .into_iter()
            .map(Role::as_str)
            .find(|r| *r == self.facilitator_role);
        match role {
            Some(role) if !self.facilitator.is_empty() => Facilitator {
                subject: self.facilitator.clone(),
                role,
            },
            _ => Facilitator::default(),
        }
    }
}

/// Every query naming these reads `pairings` unaliased: the contract's subquery refers to it.
pub const PAIRING_COLUMNS: &str = "id, demand_id, achievement_id, enterprise_id, score, rank, reasons, \
     status, note, version, created_at, updated_at, accepted_at, \
     (SELECT c.id FROM contracts c WHERE c.pairing_id = pairings.id) AS contract_id, \
     facilitator, facilitator_role";

/// A proposed pairing; `None` when the demand already has one with this achievement.
pub struct NewPairing<'a> {
    pub demand: &'a DemandRow,
    pub achievement_id: &'a str,
    pub score: f64,
    pub rank: i32,
    pub reasons: &'a [String],
}

pub async fn insert_pairing(
    conn: &mut PgConnection,
    id: &str,
    p: &NewPairing<'_>,
) -> Result<Option<PairingRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO pairings (id, demand_id, achievement_id, enterprise_id, score, rank, \
             reasons, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT ON CONSTRAINT pairings_demand_achievement_key DO NOTHING \
         RETURNING {PAIRING_COLUMNS}"
    )))
    .bind(id)
    .bind(&p.demand.id)
    .bind(p.achievement_id)
    .bind(&p.demand.enterprise_id)
    .bind(p.score)
    .bind(p.rank)
    .bind(p.reasons)
    .bind(PairingStatus::Proposed as i32)
    .fetch_optional(conn)
    .await
}

/// The scores of every pairing a demand has (whatever their status), and whether it
/// already has one with `achievement_id`.
pub async fn demand_scores(
    conn: &mut PgConnection,
    demand_id: &str,
    achievement_id: &str,
) -> Result<(Vec<f64>, bool), sqlx::Error> {
    let rows: Vec<(f64, String)> =
        sqlx::query_as("SELECT score, achievement_id FROM pairings WHERE demand_id = $1")
            .bind(demand_id)
            .fetch_all(conn)
            .await?;
    let paired = rows.iter().any(|(_, a)| a == achievement_id);
    Ok((rows.into_iter().map(|(s, _)| s).collect(), paired))
}

/// Makes room at `score`: every pairing of the demand scored below it moves down one rank.
pub async fn shift_ranks_below(
    conn: &mut PgConnection,
    demand_id: &str,
    score: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pairings SET rank = rank + 1, updated_at = now() \
         WHERE demand_id = $1 AND score < $2",
    )
    .bind(demand_id)
    .bind(score)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_pairing(
    conn: &mut PgConnection,
    id: &str,
    for_update: bool,
) -> Result<Option<PairingRow>, sqlx::Error> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAIRING_COLUMNS} FROM pairings WHERE id = $1{lock}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Moves a pairing to `status` with the enterprise's note; an acceptance records its time and
/// `facilitator` (ignored for other statuses).
pub async fn set_pairing_status(
    conn: &mut PgConnection,
    id: &str,
    status: PairingStatus,
    note: &str,
    facilitator: &Facilitator,
) -> Result<PairingRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE pairings SET status = $2, note = $3, version = version + 1, updated_at = now(), \
             accepted_at = CASE WHEN $2 = $4 THEN now() ELSE accepted_at END, \
             facilitator = CASE WHEN $2 = $4 THEN $5 ELSE facilitator END, \
             facilitator_role = CASE WHEN $2 = $4 THEN $6 ELSE facilitator_role END \
         WHERE id = $1 RETURNING {PAIRING_COLUMNS}"
    )))
    .bind(id)
    .bind(status as i32)
    .bind(note)
    .bind(PairingStatus::Accepted as i32)
    .bind(&facilitator.subject)
    .bind(facilitator.role)
    .fetch_one(conn)
    .await
}

/// A demand's pairings best first, after the `(rank, id)` cursor.
pub async fn list_pairings(
    conn: &mut PgConnection,
    demand_id: &str,
    after: Option<(i32, String)>,
    limit: i64,
) -> Result<Vec<PairingRow>, sqlx::Error> {
    let (rank, id) = after.unwrap_or((0, String::new()));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAIRING_COLUMNS} FROM pairings WHERE demand_id = $1 AND (rank, id) > ($2, $3) \
         ORDER BY rank, id LIMIT $4"
    )))
    .bind(demand_id)
    .bind(rank)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

pub async fn pairings_by_ids(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<PairingRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAIRING_COLUMNS} FROM pairings WHERE id = ANY($1) ORDER BY created_at, id"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// What a watcher already has: the pairings of a demand, or of an enterprise's demands.
pub async fn pairings_to_watch(
    conn: &mut PgConnection,
    demand_id: Option<&str>,
    enterprise_id: Option<&str>,
) -> Result<Vec<PairingRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAIRING_COLUMNS} FROM pairings \
         WHERE ($1::text IS NULL OR demand_id = $1) AND ($2::text IS NULL OR enterprise_id = $2) \
         ORDER BY created_at, id LIMIT 10000"
    )))
    .bind(demand_id)
    .bind(enterprise_id)
    .fetch_all(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContractRow {
    pub id: String,
    pub pairing_id: String,
    pub demand_id: String,
    pub achievement_id: String,
    pub enterprise_id: String,
    pub supplier: String,
    pub supplier_region_code: String,
    pub contract_no: String,
    pub contract_type: i32,
    pub amount_fen: i64,
    pub signed_at: DateTime<Utc>,
    pub region_code: String,
    pub industry_chain: String,
    pub created_at: DateTime<Utc>,
    /// The pairing's facilitator when the contract was signed.
    pub facilitator: String,
    /// `broker` or `tech_manager`; empty when `facilitator` is.
    pub facilitator_role: String,
}

const CONTRACT_COLUMNS: &str = "id, pairing_id, demand_id, achievement_id, enterprise_id, supplier, \
     supplier_region_code, contract_no, contract_type, amount_fen, signed_at, region_code, \
     industry_chain, created_at, facilitator, facilitator_role";

/// The parties and places of a contract, taken from its pairing, demand and achievement.
pub struct ContractParties<'a> {
    pub pairing: &'a PairingRow,
    pub demand: &'a DemandRow,
    pub achievement: &'a AchievementRow,
}

pub async fn insert_contract(
    conn: &mut PgConnection,
    id: &str,
    parties: &ContractParties<'_>,
    c: &NewContract,
) -> Result<ContractRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO contracts (id, pairing_id, demand_id, achievement_id, enterprise_id, \
             supplier, supplier_region_code, contract_no, contract_type, amount_fen, signed_at, \
             region_code, industry_chain, facilitator, facilitator_role) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         RETURNING {CONTRACT_COLUMNS}"
    )))
    .bind(id)
    .bind(&parties.pairing.id)
    .bind(&parties.demand.id)
    .bind(&parties.achievement.id)
    .bind(&parties.demand.enterprise_id)
    .bind(&parties.achievement.institution)
    .bind(&parties.achievement.region_code)
    .bind(&c.contract_no)
    .bind(c.contract_type as i32)
    .bind(c.amount_fen)
    .bind(c.signed_at)
    .bind(&parties.demand.region_code)
    .bind(&parties.demand.industry_chain)
    .bind(&parties.pairing.facilitator)
    .bind(&parties.pairing.facilitator_role)
    .fetch_one(conn)
    .await
}

pub async fn get_contract(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<ContractRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {CONTRACT_COLUMNS} FROM contracts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Tells every replica (after commit) that these things changed: `kind` is `a` (achievements),
/// What a commit notification is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changed {
    /// New achievements in the catalog.
    Achievements,
    /// Achievements that got their sentence embedding.
    Meanings,
    /// A demand opened or closed.
    Demands,
    /// Pairings proposed.
    Pairings,
    /// Achievements withdrawn from the catalog.
    Withdrawn,
}

impl Changed {
    fn code(self) -> &'static str {
        match self {
            Changed::Achievements => "a",
            Changed::Meanings => "m",
            Changed::Demands => "d",
            Changed::Pairings => "p",
            Changed::Withdrawn => "w",
        }
    }

    fn from_code(code: &str) -> Option<Changed> {
        Some(match code {
            "a" => Changed::Achievements,
            "m" => Changed::Meanings,
            "d" => Changed::Demands,
            "p" => Changed::Pairings,
            "w" => Changed::Withdrawn,
            _ => return None,
        })
    }
}

/// One commit notification: what changed, which replica wrote it (empty: any), which ids.
/// On the wire: `kind:origin:id,id,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub changed: Changed,
    pub origin: String,
    pub ids: Vec<String>,
}

impl Notice {
    pub fn decode(payload: &str) -> Option<Notice> {
        let mut parts = payload.splitn(3, ':');
        let changed = Changed::from_code(parts.next()?)?;
        let origin = parts.next()?.to_string();
        let ids: Vec<String> = parts
            .next()?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        (!ids.is_empty()).then_some(Notice {
            changed,
            origin,
            ids,
        })
    }
}

/// Tells every replica, once the transaction commits, what changed; `origin` names the
/// replica that wrote it (empty for any). Sent in chunks that fit a NOTIFY.
pub async fn notify(
    conn: &mut PgConnection,
    changed: Changed,
    origin: &str,
    ids: &[String],
) -> Result<(), sqlx::Error> {
    for chunk in chunk_ids(ids, 7000) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("{}:{origin}:{chunk}", changed.code()))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Comma-joined ids, each chunk at most `max` bytes (an id longer than that stands alone).
pub fn chunk_ids(ids: &[String], max: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for id in ids {
        if !current.is_empty() && current.len() + 1 + id.len() > max {
            chunks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(id);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_chunked_to_fit_a_notification() {
        let ids: Vec<String> = (0..10).map(|i| format!("id-{i}")).collect();
        let chunks = chunk_ids(&ids, 10);
        assert!(chunks.iter().all(|c| c.len() <= 10));
        let back: Vec<String> = chunks
            .iter()
            .flat_map(|c| c.split(',').map(String::from))
            .collect();
        assert_eq!(back, ids);
        assert!(chunk_ids(&[], 10).is_empty());
    }

    #[test]
    fn a_notice_reads_back_what_was_sent() {
        for changed in [
            Changed::Achievements,
            Changed::Meanings,
            Changed::Demands,
            Changed::Pairings,
            Changed::Withdrawn,
        ] {
            let payload = format!("{}:r1:a,b", changed.code());
            assert_eq!(
                Notice::decode(&payload),
                Some(Notice {
                    changed,
                    origin: "r1".into(),
                    ids: vec!["a".into(), "b".into()],
                })
            );
        }
        assert_eq!(Notice::decode("x:r1:a"), None);
        assert_eq!(Notice::decode("a:r1:"), None);
        assert_eq!(Notice::decode("a"), None);
    }
}
