//! The matching engine's in-memory index, fed from the database: rebuilt in full at start,
//! then kept current from the commit notifications every replica receives (see `sync`).

use crate::engine::{AchievementDoc, DemandDoc, Engine};
use crate::store::{self, AchievementRow, DemandRow, meanings};
use kechuang_proto::common::{ContractType, TransferMode};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;

/// Rows read per query while rebuilding.
const REBUILD_PAGE: i64 = 5000;

pub fn achievement_doc(row: &AchievementRow) -> AchievementDoc {
    AchievementDoc {
        id: row.id.clone(),
        institution: row.institution.clone(),
        title: row.title.clone(),
        abstract_text: row.r#abstract.clone(),
        keywords: row.keywords.clone(),
        industry_chain: row.industry_chain.clone(),
        trl: row.trl,
        transfer_modes: row
            .transfer_modes
            .iter()
            .filter_map(|m| TransferMode::try_from(*m).ok())
            .collect(),
        asking_price_fen: row.asking_price_fen,
        region_code: row.region_code.clone(),
    }
}

pub fn demand_doc(row: &DemandRow) -> DemandDoc {
    DemandDoc {
        id: row.id.clone(),
        title: row.title.clone(),
        description: row.description.clone(),
        industry_chain: row.industry_chain.clone(),
        contract_type: ContractType::try_from(row.contract_type)
            .unwrap_or(ContractType::Unspecified),
        budget_min_fen: row.budget_min_fen,
        budget_max_fen: row.budget_max_fen,
        region_code: row.region_code.clone(),
    }
}

/// Loads every achievement and every open demand into `engine`, with the vectors of `model`
/// stored for them. Returns how many achievements and demands.
pub async fn rebuild(
    pool: &PgPool,
    engine: &Arc<Engine>,
    model: Option<&str>,
) -> anyhow::Result<(usize, usize)> {
    let mut conn = pool.acquire().await?;
    let mut after = String::new();
    let mut achievements = 0;
    loop {
        let rows = store::achievements_after(&mut conn, &after, REBUILD_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.id.clone();
        achievements += rows.len();
        add_achievements(engine, rows).await?;
    }
    let demands = store::open_demands(&mut conn).await?;
    let mut vectors: HashMap<String, Vec<f32>> = HashMap::new();
    if let Some(model) = model {
        let mut after = String::new();
        loop {
            let page = meanings::achievement_meanings_after(&mut conn, model, &after, REBUILD_PAGE)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            engine.add_meanings(&page)?;
        }
        let ids: Vec<String> = demands.iter().map(|d| d.id.clone()).collect();
        for chunk in ids.chunks(REBUILD_PAGE as usize) {
            vectors.extend(meanings::demand_meanings_by_ids(&mut conn, model, chunk).await?);
        }
    }
    for d in &demands {
        engine.add_open_demand_with(&demand_doc(d), vectors.remove(&d.id))?;
    }
    Ok((achievements, demands.len()))
}

/// Takes withdrawn achievements out of the index, off the async threads (each removal commits
/// the index).
pub async fn remove_achievements(engine: &Arc<Engine>, ids: Vec<String>) -> anyhow::Result<()> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || ids.iter().try_for_each(|id| engine.remove_achievement(id)))
        .await?
}

/// Indexes achievements off the async threads (indexing Chinese text is CPU work).
pub async fn add_achievements(
    engine: &Arc<Engine>,
    rows: Vec<AchievementRow>,
) -> anyhow::Result<()> {
    let engine = engine.clone();
    tokio::task::spawn_blocking(move || {
        let docs: Vec<AchievementDoc> = rows.iter().map(achievement_doc).collect();
        engine.add_achievements(&docs)
    })
    .await?
}
