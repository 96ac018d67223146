//! Sky net (天网): the achievement catalog, matching, pairings and contracts.
//!
//! Flow: `kc.demand.verified` → the engine's top k stored as PROPOSED pairings and announced
//! (`kc.pairing.proposed`); a new achievement is pushed to the open demands where it beats the
//! k-th pairing; the demand's enterprise answers; a contract is signed on an accepted pairing
//! (`kc.contract.signed`). The engine's index lives in memory, rebuilt from the database at
//! start and kept current by commit notifications (see `sync`), so replicas agree.

pub mod api;
pub mod deals;
pub mod domain;
pub mod events;
pub mod gauges;
pub mod index;
pub mod pushing;
pub mod semantic;
pub mod store;
pub mod sync;
pub mod wire;

/// The matching engine (jieba + tantivy BM25, query expansion, explained re-ranking).
pub use matching_engine as engine;

use api::{CatalogApi, MatchingApi};
use engine::Engine;
use events::DemandEvents;
use kechuang_platform::config::EmbeddingTuning;
use kechuang_platform::{ServiceConfig, ServiceRuntime};
use kechuang_proto::event_types;
use kechuang_proto::matching::catalog_service_server::CatalogServiceServer;
use kechuang_proto::matching::matching_service_server::MatchingServiceServer;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use tokio::sync::broadcast;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The producer name on every event this service emits.
pub const PRODUCER: &str = "matching";
/// The health name under which a replica reports whether it matches by meaning.
pub const SEMANTIC_HEALTH: &str = "kechuang.matching.v1.SemanticMatching";
/// Pairings proposed for a newly verified demand.
pub const DEFAULT_TOP_K: usize = 5;
/// Pairing updates buffered per replica for slow watchers (a lagging watcher re-reads).
const UPDATE_BUFFER: usize = 4096;

/// Settings of the sky net beyond the platform's.
#[derive(Debug, Clone)]
pub struct MatchingOptions {
    /// How many pairings a verified demand receives, and how many a late achievement must beat.
    pub top_k: usize,
    /// The sentence-embedding model: whether, where from, how many cores.
    pub embedding: EmbeddingTuning,
}

impl MatchingOptions {
    pub fn from_config(config: &ServiceConfig) -> MatchingOptions {
        MatchingOptions {
            // KC_PAIRINGS_PER_DEMAND; it was read but never reached the sky net.
            top_k: config.tuning.pairings_per_demand.max(1),
            embedding: config.tuning.embedding.clone(),
        }
    }
}

/// What the handlers and the gRPC services share.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub top_k: usize,
    pub updates: broadcast::Sender<sync::Update>,
    /// This replica's name in change notifications.
    pub replica: String,
    /// The sentence-embedding model, or why matching runs on words alone.
    pub semantic: semantic::Semantic,
    /// Imports running on this replica (the embedding worker waits for them).
    pub imports: semantic::Imports,
}

/// Verified demands paired at a time by one replica.
const VERIFIED_IN_PARALLEL: usize = 4;

/// Connects, migrates and wires the service; run it with `run_until_stopped`.
pub async fn build(config: ServiceConfig) -> anyhow::Result<ServiceRuntime> {
    let options = MatchingOptions::from_config(&config);
    build_with(config, options).await
}

pub async fn build_with(
    config: ServiceConfig,
    options: MatchingOptions,
) -> anyhow::Result<ServiceRuntime> {
    anyhow::ensure!(options.top_k >= 1, "top_k must be at least 1");
    let mut runtime = ServiceRuntime::start(config, &MIGRATOR).await?;
    let engine = Arc::new(Engine::new()?);
    let semantic = semantic::Semantic::open(&options.embedding).await;
    let model = semantic.model();
    // Listen first, then load: whatever commits in between arrives as a notification.
    let listener = sync::Follower::listen(&runtime.pool).await?;
    let started = std::time::Instant::now();
    let (achievements, demands) = index::rebuild(&runtime.pool, &engine, model).await?;
    tracing::info!(
        achievements,
        embedded = engine.meaning_count(),
        demands,
        elapsed = ?started.elapsed(),
        "matching index rebuilt"
    );
    let (updates, _) = broadcast::channel(UPDATE_BUFFER);
    let replica = uuid::Uuid::new_v4().simple().to_string();
    let shared = Arc::new(Shared {
        engine: engine.clone(),
        top_k: options.top_k,
        updates: updates.clone(),
        replica: replica.clone(),
        semantic,
        imports: semantic::Imports::default(),
    });
    let follower = sync::Follower {
        pool: runtime.pool.clone(),
        engine,
        updates,
        replica,
        model,
    };
    runtime.spawn(move |shutdown| follower.run(listener, shutdown));
    if let Some(embedder) = shared.semantic.embedder.clone() {
        let worker = semantic::Worker {
            pool: runtime.pool.clone(),
            shared: shared.clone(),
            embedder,
        };
        runtime.spawn(move |shutdown| worker.run(shutdown));
        // Only a replica with the model has a backlog to work off.
        gauges::describe();
        runtime.sample(gauges::embedding_backlog);
    }
    let handler = Arc::new(DemandEvents {
        shared: shared.clone(),
    });
    // Verified demands are independent of each other and pairing one is mostly engine CPU
    // work: several at a time keep both the cores and the database busy.
    runtime.consume_in_parallel(
        "demand-verified",
        event_types::DEMAND_VERIFIED,
        handler.clone(),
        VERIFIED_IN_PARALLEL,
    );
    for (suffix, subject) in [
        ("demand-withdrawn", event_types::DEMAND_WITHDRAWN),
        ("demand-rejected", event_types::DEMAND_REJECTED),
    ] {
        runtime.consume(suffix, subject, handler.clone());
    }
    let catalog = CatalogApi {
        pool: runtime.pool.clone(),
        shared: shared.clone(),
    };
    let matching = MatchingApi {
        pool: runtime.pool.clone(),
        shared,
        deals: deals::Deals::new(runtime.pool.clone()),
    };
    let routes = Routes::new(CatalogServiceServer::with_interceptor(
        catalog,
        runtime.interceptor(),
    ))
    .add_service(MatchingServiceServer::with_interceptor(
        matching,
        runtime.interceptor(),
    ));
    // `grpc.health.v1.Health/Check {service: "kechuang.matching.v1.SemanticMatching"}` says
    // whether pairings rest on meaning too (NOT_SERVING: words alone; GetMatchingStatus says
    // why).
    runtime.report_component(SEMANTIC_HEALTH, model.is_some());
    runtime.set_routes(
        routes,
        &[
            <CatalogServiceServer<CatalogApi> as NamedService>::NAME,
            <MatchingServiceServer<MatchingApi> as NamedService>::NAME,
        ],
    );
    Ok(runtime)
}
