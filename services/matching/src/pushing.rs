//! Pushing pairings: the top k for a newly verified demand, and a later achievement wherever
//! it beats a demand's current k-th pairing. Runs inside the caller's transaction, which also
//! carries the `kc.pairing.proposed` events (appended together) and the commit notification.
//!
//! Ranks: a demand's pairings are ranked by score, 1 = best, whatever their status. A late
//! achievement that earns a place takes its rank among them and every pairing scored below it
//! moves down one; nothing is withdrawn (the enterprise has already seen them), so a demand can
//! hold more than k pairings. Only the new pairing is announced.

use crate::engine::{AchievementDoc, Engine};
use crate::index::demand_doc;
use crate::store::{self, DemandRow, NewPairing, PairingRow};
use crate::{PRODUCER, domain};
use kechuang_platform::error::Error;
use kechuang_platform::outbox;
use kechuang_platform::{HandlerError, NewEvent};
use kechuang_proto::events::{Envelope, PairingProposed, envelope::Payload};
use sqlx::PgConnection;
use std::sync::Arc;
use uuid::Uuid;

/// Why pairings could not be pushed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// The engine's work panicked or was cancelled.
    #[error("the matching engine failed: {0}")]
    Engine(String),
}

impl From<PushError> for HandlerError {
    fn from(e: PushError) -> Self {
        // Both are worth retrying: a database hiccup, or an engine failure on this replica
        // (another may succeed); after the deliveries run out the event is dead-lettered.
        HandlerError::Transient(e.to_string())
    }
}

impl From<PushError> for Error {
    fn from(e: PushError) -> Self {
        match e {
            PushError::Store(e) => Error::Database(e),
            PushError::Engine(m) => Error::internal(m),
        }
    }
}

/// How many open demands a new achievement is scored against, best first.
pub const REVERSE_CANDIDATES: usize = 50;

/// Stores and announces the engine's top `k` for an open demand (by its words, and by its
/// meaning when it has a vector).
pub async fn propose_for_demand(
    conn: &mut PgConnection,
    engine: &Arc<Engine>,
    demand: &DemandRow,
    meaning: Option<Vec<f32>>,
    k: usize,
    cause: &Envelope,
) -> Result<Vec<PairingRow>, PushError> {
    let (engine, doc) = (engine.clone(), demand_doc(demand));
    let ask = move |k: usize| {
        let (engine, doc, meaning) = (engine.clone(), doc.clone(), meaning.clone());
        off_the_runtime(move || engine.match_demand_with(&doc, meaning.as_deref(), k))
    };
    let mut matches = ask(k).await?;
    let ids: Vec<String> = matches.iter().map(|m| m.achievement_id.clone()).collect();
    let withdrawn = store::withdrawn_among(conn, &ids).await?;
    if !withdrawn.is_empty() {
        // This replica's index has not heard of a withdrawal yet: ask for as many more (the
        // top k keeps its own order and guarantees only at exactly k, so ask again).
        matches = ask(k + withdrawn.len()).await?;
        matches.retain(|m| !withdrawn.contains(&m.achievement_id));
    }
    let mut stored = Vec::with_capacity(matches.len());
    for (i, m) in matches.iter().take(k).enumerate() {
        let pairing = NewPairing {
            demand,
            achievement_id: &m.achievement_id,
            score: m.score,
            rank: i32::try_from(i + 1).unwrap_or(i32::MAX),
            reasons: &m.reasons,
        };
        let id = Uuid::now_v7().to_string();
        if let Some(row) = store::insert_pairing(conn, &id, &pairing).await? {
            stored.push(row);
        }
    }
    announce(conn, &stored, Some(cause)).await?;
    Ok(stored)
}

/// A reverse match: (demand id, achievement id, score, reasons).
pub type Candidate = (String, String, f64, Vec<String>);

/// Scores new achievements against the open demands (CPU work, off the async runtime; call it
/// before opening the transaction that pushes the results).
pub async fn reverse_candidates(
    engine: &Arc<Engine>,
    docs: Vec<AchievementDoc>,
) -> Result<Vec<Candidate>, PushError> {
    let engine = engine.clone();
    off_the_runtime(move || {
        let mut candidates = Vec::new();
        for doc in &docs {
            for m in engine.match_achievement(doc, REVERSE_CANDIDATES) {
                candidates.push((
                    m.demand_id,
                    doc.id.clone(),
                    m.matched.score,
                    m.matched.reasons,
                ));
            }
        }
        candidates
    })
    .await
}

/// Runs the engine on the blocking pool: scoring takes milliseconds of CPU (far more in a
/// debug build), which must not stall the runtime's workers, nor the other services sharing it.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PushError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| PushError::Engine(e.to_string()))
}

/// Pushes each reverse match where it earns a place.
pub async fn push_achievements(
    conn: &mut PgConnection,
    mut candidates: Vec<Candidate>,
    k: usize,
) -> Result<Vec<PairingRow>, PushError> {
    let ids: Vec<String> = candidates.iter().map(|c| c.1.clone()).collect();
    let withdrawn = store::withdrawn_among(conn, &ids).await?;
    candidates.retain(|c| !withdrawn.contains(&c.1));
    // One lock order for every writer of pairings: by demand, then best first.
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.total_cmp(&a.2)));
    let mut stored = Vec::new();
    for (demand_id, achievement_id, score, reasons) in candidates {
        let Some(demand) = store::lock_demand(conn, &demand_id).await? else {
            continue;
        };
        if !demand.is_open() {
            continue;
        }
        let (scores, paired) = store::demand_scores(conn, &demand_id, &achievement_id).await?;
        if paired || !domain::earns_place(&scores, k, score) {
            continue;
        }
        let rank = domain::rank_among(&scores, score);
        store::shift_ranks_below(conn, &demand_id, score).await?;
        let pairing = NewPairing {
            demand: &demand,
            achievement_id: &achievement_id,
            score,
            rank,
            reasons: &reasons,
        };
        let id = Uuid::now_v7().to_string();
        if let Some(row) = store::insert_pairing(conn, &id, &pairing).await? {
            stored.push(row);
        }
    }
    announce(conn, &stored, None).await?;
    Ok(stored)
}

/// Appends a `kc.pairing.proposed` for each new pairing (one statement) and tells every
/// replica's watchers about them once the transaction commits.
async fn announce(
    conn: &mut PgConnection,
    stored: &[PairingRow],
    cause: Option<&Envelope>,
) -> Result<(), sqlx::Error> {
    if stored.is_empty() {
        return Ok(());
    }
    let events = stored
        .iter()
        .map(|row| {
            let event = NewEvent::new(
                &row.id,
                row.version,
                Payload::PairingProposed(PairingProposed {
                    pairing_id: row.id.clone(),
                    demand_id: row.demand_id.clone(),
                    enterprise_id: row.enterprise_id.clone(),
                    achievement_id: row.achievement_id.clone(),
                    score: row.score,
                    rank: row.rank,
                    reasons: row.reasons.clone(),
                }),
            );
            match cause {
                Some(cause) => event.caused_by(cause),
                None => event,
            }
        })
        .collect();
    outbox::append_many(conn, PRODUCER, events).await?;
    let ids: Vec<String> = stored.iter().map(|p| p.id.clone()).collect();
    store::notify(conn, store::Changed::Pairings, "", &ids).await
}
