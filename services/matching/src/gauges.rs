//! The sky net's gauge, sampled by the platform (see `kechuang_platform::metrics::sampler`):
//! the embedding backlog, achievements waiting for the worker to give them a vector (findable
//! by their words meanwhile, not yet by their meaning).

use crate::store::meanings;
use kechuang_platform::metrics::Sample;
use sqlx::PgPool;

/// Achievements in the embedding queue.
pub const EMBEDDING_BACKLOG_METRIC: &str = "kc_embedding_backlog";

pub fn describe() {
    kechuang_platform::metrics::describe_gauge(
        EMBEDDING_BACKLOG_METRIC,
        "Achievements waiting for their sentence embedding",
    );
}

/// The queue's length: one count of a table no larger than the catalog.
pub async fn embedding_backlog(pool: PgPool) -> Result<Vec<Sample>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let backlog = meanings::backlog(&mut conn).await?;
    Ok(vec![Sample {
        name: EMBEDDING_BACKLOG_METRIC,
        labels: Vec::new(),
        value: backlog as f64,
    }])
}
