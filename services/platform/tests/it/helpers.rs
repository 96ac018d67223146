use async_nats::jetstream::{self, Context as JetStream};
use kechuang_platform::config::{BusConfig, DatabaseConfig};
use kechuang_platform::consumer::{EventHandler, HandlerError};
use kechuang_platform::seal::{self, EventKeys, Signer};
use kechuang_platform::{NewEvent, ServiceKind, bus, db, outbox};
use kechuang_proto::events::{Envelope, FundLowBalance, envelope::Payload};
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub static TEST_MIGRATOR: Migrator = sqlx::migrate!("./tests/it/migrations");

pub const PG: &str = "postgres://postgres@127.0.0.1:5432";
pub const NATS: &str = "nats://127.0.0.1:4222";

/// The producer entitled to the events these tests use (`fund.low_balance`).
pub const PRODUCER: &str = "fund-ledger";

/// The event keys of [`PRODUCER`], from one key set per test process.
pub fn event_keys() -> Arc<EventKeys> {
    static KEYS: std::sync::OnceLock<Arc<EventKeys>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir()
            .join("kechuang-test-keys")
            .join(format!("platform-{}", unique()));
        seal::generate(&dir, &ServiceKind::names()).expect("test keys");
        let keys = EventKeys::load(&dir, PRODUCER, &ServiceKind::names()).expect("test keys");
        let _ = std::fs::remove_dir_all(&dir);
        Arc::new(keys)
    })
    .clone()
}

pub fn signer() -> Signer {
    event_keys().signer()
}

pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A fresh database with the platform's and the test's migrations.
pub async fn test_db() -> (PgPool, String) {
    let name = format!("kct_{}", unique());
    let cfg = DatabaseConfig {
        server_url: PG.into(),
        name: name.clone(),
        max_connections: 10,
    };
    let pool = db::connect(&cfg, &TEST_MIGRATOR)
        .await
        .expect("test database");
    (pool, name)
}

pub async fn drop_db(pool: PgPool, name: &str) {
    pool.close().await;
    let admin = PgPool::connect(&format!("{PG}/postgres")).await.unwrap();
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&admin)
        .await
        .unwrap();
}

/// A private stream and subject prefix on the real NATS server.
pub fn test_bus(nats_url: &str) -> BusConfig {
    let id = unique();
    BusConfig {
        nats_url: nats_url.into(),
        stream_name: format!("T_{}", id.to_uppercase()),
        subject_prefix: format!("t{id}"),
        replicas: 1,
        duplicate_window: Duration::from_secs(120),
        max_deliver: 3,
        redelivery_backoff: Duration::from_millis(20),
    }
}

pub async fn direct_jetstream() -> JetStream {
    jetstream::new(
        async_nats::connect(NATS)
            .await
            .expect("NATS on 127.0.0.1:4222"),
    )
}

pub async fn provisioned(bus: &BusConfig) -> JetStream {
    let js = direct_jetstream().await;
    bus::ensure_stream(&js, bus).await.expect("stream");
    js
}

pub async fn delete_stream(js: &JetStream, bus: &BusConfig) {
    let _ = js.delete_stream(&bus.stream_name).await;
}

pub async fn message_count(js: &JetStream, bus: &BusConfig) -> u64 {
    let mut stream = js.get_stream(&bus.stream_name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn low_balance(fund_id: &str, n: i64) -> Payload {
    Payload::FundLowBalance(FundLowBalance {
        fund_id: fund_id.into(),
        available_fen: n,
        low_balance_fen: 0,
    })
}

/// Appends one event in its own transaction.
pub async fn append_one(pool: &PgPool, aggregate: &str, version: i64) -> Envelope {
    let mut tx = pool.begin().await.unwrap();
    let env = outbox::append(
        &mut tx,
        PRODUCER,
        NewEvent::new(aggregate, version, low_balance(aggregate, version)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    env
}

/// Records every event it sees in `effects`; fails on aggregates named "poison-*".
pub struct RecordingHandler;

impl EventHandler for RecordingHandler {
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        if event.aggregate_id.starts_with("poison-transient") {
            return Err(HandlerError::Transient("the ledger is on fire".into()));
        }
        if event.aggregate_id.starts_with("poison-permanent") {
            return Err(HandlerError::Permanent("this event makes no sense".into()));
        }
        sqlx::query("INSERT INTO effects (event_id, aggregate_id) VALUES ($1, $2)")
            .bind(&event.event_id)
            .bind(&event.aggregate_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

pub fn recording() -> Arc<RecordingHandler> {
    Arc::new(RecordingHandler)
}

pub async fn effect_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A TCP proxy in front of NATS that the test can cut and restore: a real outage seen
/// through real connections.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr, up: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let proxy = Proxy {
            addr,
            up: Arc::new(AtomicBool::new(up)),
            cut: Arc::new(std::sync::Mutex::new(CancellationToken::new())),
        };
        let (flag, cut) = (proxy.up.clone(), proxy.cut.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let token = cut.lock().unwrap().clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    }
                });
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            let mut cut = self.cut.lock().unwrap();
            cut.cancel();
            *cut = CancellationToken::new();
        }
    }
}
