//! What a supplier reads of the catalog: their achievements, and the open demands the sky net
//! paired with them (reverse matching). Keyset pages on ids (UUIDv7: newest first).

use super::{ACHIEVEMENT_COLUMNS, AchievementRow, PAIRING_COLUMNS, PairingRow};
use chrono::{DateTime, Utc};
use kechuang_proto::matching::PairingStatus;
use sqlx::PgConnection;

/// Achievements newest first, before the id `before` (empty: from the newest); only those
/// `registered_by` registered when it is `Some`, only `only` when it is `Some`.
pub async fn list_achievements(
    conn: &mut PgConnection,
    registered_by: Option<&str>,
    only: Option<&str>,
    before: &str,
    limit: i64,
) -> Result<Vec<AchievementRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACHIEVEMENT_COLUMNS} FROM achievements \
         WHERE ($1::TEXT IS NULL OR registered_by = $1) AND ($2::TEXT IS NULL OR id = $2) \
         AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
    )))
    .bind(registered_by)
    .bind(only)
    .bind(before)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// An open demand as the sky net holds it, with the title of the achievement it was paired to.
#[derive(Debug, sqlx::FromRow)]
pub struct MatchedDemandRow {
    pub title: String,
    pub description: String,
    pub industry_chain: String,
    pub contract_type: i32,
    pub budget_min_fen: i64,
    pub budget_max_fen: i64,
    pub region_code: String,
    pub deadline: Option<DateTime<Utc>>,
    pub achievement_title: String,
}

/// The pairings of `registered_by`'s achievements (or of one of them) whose demand is still
/// open (verified, not closed, not contracted) and whose pairing is still alive (proposed or
/// accepted): newest pairing first, before the pairing id `before`.
pub async fn matching_demands(
    conn: &mut PgConnection,
    registered_by: &str,
    achievement_id: Option<&str>,
    before: &str,
    limit: i64,
) -> Result<Vec<(PairingRow, MatchedDemandRow)>, sqlx::Error> {
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT p.id FROM pairings p \
         JOIN achievements a ON a.id = p.achievement_id \
         JOIN demands d ON d.id = p.demand_id \
         WHERE a.registered_by = $1 AND ($2::TEXT IS NULL OR a.id = $2) \
           AND d.verified AND d.status = 'open' AND p.status = ANY($3) \
           AND ($4 = '' OR p.id < $4) \
         ORDER BY p.id DESC LIMIT $5",
    )
    .bind(registered_by)
    .bind(achievement_id)
    .bind(vec![
        PairingStatus::Proposed as i32,
        PairingStatus::Accepted as i32,
    ])
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
    let pairings: Vec<PairingRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PAIRING_COLUMNS} FROM pairings WHERE id = ANY($1) ORDER BY id DESC"
    )))
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(pairings.len());
    for p in pairings {
        let demand: MatchedDemandRow = sqlx::query_as(
            "SELECT d.title, d.description, d.industry_chain, d.contract_type, d.budget_min_fen, \
             d.budget_max_fen, d.region_code, d.deadline, a.title AS achievement_title \
             FROM demands d, achievements a WHERE d.id = $1 AND a.id = $2",
        )
        .bind(&p.demand_id)
        .bind(&p.achievement_id)
        .fetch_one(&mut *conn)
        .await?;
        out.push((p, demand));
    }
    Ok(out)
}

/// A validated achievement as it would be stored (RegisterAchievement's `validate_only`).
pub fn unsaved(a: crate::domain::NewAchievement, registered_by: &str) -> AchievementRow {
    AchievementRow {
        id: String::new(),
        institution: a.institution,
        title: a.title,
        r#abstract: a.abstract_text,
        keywords: a.keywords,
        industry_chain: a.industry_chain,
        trl: a.trl,
        transfer_modes: a.transfer_modes.iter().map(|m| *m as i32).collect(),
        asking_price_fen: a.asking_price_fen,
        region_code: a.region_code,
        created_at: Utc::now(),
        registered_by: registered_by.to_string(),
        withdrawn_at: None,
        withdrawn_reason: String::new(),
    }
}
