//! Stored sentence embeddings: `dim` little-endian f32 per row, one row per text and model.

use super::{ACHIEVEMENT_COLUMNS, AchievementRow};
use sqlx::{PgConnection, Postgres, QueryBuilder};

/// A vector as stored.
pub fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector, or `None` if the bytes are not whole finite f32 values.
pub fn decode(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    v.iter().all(|x| x.is_finite()).then_some(v)
}

/// The next achievements waiting for the worker, oldest id first.
pub async fn achievements_to_embed(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<AchievementRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACHIEVEMENT_COLUMNS} FROM embedding_queue q \
         JOIN achievements a ON a.id = q.achievement_id \
         ORDER BY q.achievement_id LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Queues achievements for the worker.
pub async fn enqueue(conn: &mut PgConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO embedding_queue (achievement_id) SELECT unnest($1::text[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(ids)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Takes achievements off the queue (embedded, or withdrawn).
pub async fn dequeue(conn: &mut PgConnection, ids: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM embedding_queue WHERE achievement_id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Queues every achievement in the catalog without a vector of `model` (a new model, or
/// achievements written while no replica had one). One scan of the catalog, at start.
pub async fn enqueue_missing(conn: &mut PgConnection, model: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO embedding_queue (achievement_id) \
         SELECT a.id FROM achievements a WHERE a.withdrawn_at IS NULL AND NOT EXISTS \
         (SELECT 1 FROM achievement_meanings m WHERE m.achievement_id = a.id AND m.model = $1) \
         ON CONFLICT DO NOTHING",
    )
    .bind(model)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
}

/// How many achievements wait for the worker.
pub async fn backlog(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM embedding_queue")
        .fetch_one(conn)
        .await
}

/// How many achievements the catalog holds, and how many have a vector of `model`.
pub async fn catalog_counts(
    conn: &mut PgConnection,
    model: Option<&str>,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM achievements WHERE withdrawn_at IS NULL), \
                (SELECT count(*) FROM achievement_meanings WHERE model = $1)",
    )
    .bind(model.unwrap_or(""))
    .fetch_one(conn)
    .await
}

/// Stores achievements' vectors; one already stored (another replica's worker) is kept.
pub async fn insert_achievement_meanings(
    conn: &mut PgConnection,
    model: &str,
    rows: &[(String, Vec<f32>)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new("INSERT INTO achievement_meanings (achievement_id, model, vector) ");
    q.push_values(rows, |mut b, (id, v)| {
        b.push_bind(id.clone())
            .push_bind(model.to_owned())
            .push_bind(encode(v));
    });
    q.push(" ON CONFLICT DO NOTHING");
    q.build().execute(conn).await.map(|_| ())
}

/// One page of achievements' vectors in id order, after `after`.
pub async fn achievement_meanings_after(
    conn: &mut PgConnection,
    model: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, Vec<f32>)>, sqlx::Error> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT achievement_id, vector FROM achievement_meanings \
         WHERE model = $1 AND achievement_id > $2 ORDER BY achievement_id LIMIT $3",
    )
    .bind(model)
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(decoded(rows))
}

pub async fn achievement_meanings_by_ids(
    conn: &mut PgConnection,
    model: &str,
    ids: &[String],
) -> Result<Vec<(String, Vec<f32>)>, sqlx::Error> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT achievement_id, vector FROM achievement_meanings \
         WHERE model = $1 AND achievement_id = ANY($2)",
    )
    .bind(model)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(decoded(rows))
}

/// Stores a demand's vector (a redelivered verification keeps the first).
pub async fn insert_demand_meaning(
    conn: &mut PgConnection,
    model: &str,
    demand_id: &str,
    vector: &[f32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO demand_meanings (demand_id, model, vector) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(demand_id)
    .bind(model)
    .bind(encode(vector))
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn demand_meanings_by_ids(
    conn: &mut PgConnection,
    model: &str,
    ids: &[String],
) -> Result<Vec<(String, Vec<f32>)>, sqlx::Error> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT demand_id, vector FROM demand_meanings WHERE model = $1 AND demand_id = ANY($2)",
    )
    .bind(model)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(decoded(rows))
}

/// Rows whose bytes are not a vector are skipped (and matched on words alone).
fn decoded(rows: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<f32>)> {
    rows.into_iter()
        .filter_map(|(id, bytes)| decode(&bytes).map(|v| (id, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bytes_that_are_not_a_vector_are_refused() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0, 0, 128]), None);
        assert_eq!(decode(&f32::NAN.to_le_bytes()), None);
    }

    proptest! {
        #[test]
        fn a_vector_survives_storage_bit_for_bit(v in proptest::collection::vec(-1f32..1.0, 1..400)) {
            prop_assert_eq!(decode(&encode(&v)), Some(v));
        }
    }
}
