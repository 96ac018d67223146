//! PostgreSQL: create the service's database when missing, open a pool, run the embedded
//! migrations (the platform's, then the service's).

use crate::config::DatabaseConfig;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, PgConnection, PgPool, Postgres};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The platform's own tables (outbox, processed events).
pub static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens the service's database, creating it first when it does not exist, and runs the
/// platform's migrations and then `service_migrator`'s.
pub async fn connect(cfg: &DatabaseConfig, service_migrator: &Migrator) -> anyhow::Result<PgPool> {
    let pool = open_pool(cfg).await?;
    run_migrations(&pool, service_migrator).await?;
    Ok(pool)
}

/// As [`connect`], with `migrator`'s tables alone: for the gateway, which keeps sessions and
/// has no outbox or inbox.
pub async fn connect_without_events(
    cfg: &DatabaseConfig,
    migrator: &Migrator,
) -> anyhow::Result<PgPool> {
    let pool = open_pool(cfg).await?;
    migrator.run(&pool).await?;
    Ok(pool)
}

async fn open_pool(cfg: &DatabaseConfig) -> anyhow::Result<PgPool> {
    ensure_database(cfg).await?;
    let options = PgConnectOptions::from_str(&cfg.server_url)?
        .database(&cfg.name)
        .log_statements(tracing::log::LevelFilter::Trace);
    Ok(pool_options(cfg.max_connections)
        .connect_with(options)
        .await?)
}

/// A connection idle for longer than this is pinged before it is handed out.
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(5);

/// Pool options for every service: sqlx's default pings each connection on every acquire, a
/// full round trip to the server before the caller's own statement. Only connections idle for [`PING_IDLE_AFTER`] are
/// pinged: those are the ones a restarted server or a dropped link may have broken; a busy
/// connection that breaks fails its statement, and the pool drops it.
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE_AFTER {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// The platform's migrations keep their own history table, so a service numbers its
/// migrations freely and neither migrator sees the other's versions as unknown.
async fn run_migrations(pool: &PgPool, service: &Migrator) -> anyhow::Result<()> {
    let mut platform = Migrator::with_migrations(PLATFORM_MIGRATOR.migrations.to_vec());
    platform.dangerous_set_table_name("_kc_platform_migrations");
    platform.run(pool).await?;
    service.run(pool).await?;
    Ok(())
}

/// Creates `cfg.name` on the server unless it exists. Safe against a concurrent creator.
pub async fn ensure_database(cfg: &DatabaseConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cfg.name.is_empty()
            && cfg
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "database name {:?} must be lowercase letters, digits and underscores",
        cfg.name
    );
    let options = PgConnectOptions::from_str(&cfg.server_url)?.database("postgres");
    let mut conn = PgConnection::connect_with(&options).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&cfg.name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        // The name was checked above: identifiers cannot be bound as parameters.
        let sql = format!("CREATE DATABASE \"{}\"", cfg.name);
        if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await {
            let raced = matches!(&e, sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("42P04") | Some("23505")));
            if !raced {
                return Err(e.into());
            }
        }
    }
    conn.close().await?;
    Ok(())
}

/// Can the Postgres server be reached at all? For `kechuang up`'s preflight.
pub async fn ping(server_url: &str) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(server_url)?.database("postgres");
    let conn = tokio::time::timeout(Duration::from_secs(3), PgConnection::connect_with(&options))
        .await
        .map_err(|_| anyhow::anyhow!("timed out after 3 s"))??;
    conn.close().await?;
    Ok(())
}

/// A pooled connection kept by one long-lived task (such as intake's writer) from statement to
/// statement. sqlx pings every connection given back to a pool (a second round trip to the
/// server, and a wake-up of its backend, for every statement); a task that writes all day
/// need not give its connection back. Like the pool, it pings a connection idle for
/// [`PING_IDLE_AFTER`] before using it; after an error the caller [`Self::give_back`]s it and
/// the next [`Self::get`] takes a fresh one.
pub struct HeldConnection {
    pool: PgPool,
    held: Option<(PoolConnection<Postgres>, Instant)>,
}

impl HeldConnection {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, held: None }
    }

    /// The connection to use now: the held one, or one from the pool when none is held or
    /// the held one no longer answers.
    pub async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        if let Some((conn, last_used)) = &mut self.held
            && last_used.elapsed() >= PING_IDLE_AFTER
            && conn.ping().await.is_err()
        {
            self.held = None;
        }
        let conn = match self.held.take() {
            Some((conn, _)) => conn,
            None => self.pool.acquire().await?,
        };
        let (conn, _) = self.held.insert((conn, Instant::now()));
        Ok(conn)
    }

    /// Hands the connection back to the pool (which tests it): for after an error, when it
    /// may be broken or in an unknown state.
    pub fn give_back(&mut self) {
        self.held = None;
    }
}

/// At most one NOTIFY per period from this process. A transaction that NOTIFYs takes a lock
/// held across the whole cluster while it commits, so notifying commits cannot share WAL
/// flushes; a listener woken by one notification reads everything committed by then, and a
/// poll covers a commit that lands just after it.
pub struct NotifyBudget {
    every: Duration,
    last_micros: std::sync::atomic::AtomicU64,
}

impl NotifyBudget {
    pub const fn new(every: Duration) -> Self {
        Self {
            every,
            last_micros: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether this transaction may NOTIFY (and then counts it as the period's one).
    pub fn spend(&self) -> bool {
        use std::sync::atomic::Ordering;
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_micros() as u64
            + 1;
        // 0: never spent (the clock reads at least 1).
        let last = self.last_micros.load(Ordering::Relaxed);
        (last == 0 || now.saturating_sub(last) >= self.every.as_micros() as u64)
            && self
                .last_micros
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod notify_budget {
    use super::*;

    #[test]
    fn one_notify_per_period() {
        let budget = NotifyBudget::new(Duration::from_secs(3600));
        assert!(budget.spend(), "the first is due");
        assert!(!budget.spend(), "a second within the period is not");
        let always = NotifyBudget::new(Duration::ZERO);
        assert!(always.spend() && always.spend());
    }
}
