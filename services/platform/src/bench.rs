//! Benchmark support (run by hand, never asserted): latency percentiles, a concurrent driver,
//! and the machine's own limits to compare against, measured in the same run.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one measured run did.
#[derive(Debug, Clone)]
pub struct Figures {
    pub label: String,
    pub concurrency: usize,
    pub operations: usize,
    pub errors: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Figures {
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One table row: label, concurrency, ops, ops/s, p50 ms, p99 ms, errors.
    pub fn row(&self) -> String {
        format!(
            "{:<40} {:>5} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>6}",
            self.label,
            self.concurrency,
            self.operations,
            self.per_second(),
            ms(self.p50),
            ms(self.p99),
            self.errors
        )
    }

    pub fn header() -> String {
        format!(
            "{:<40} {:>5} {:>8} {:>10} {:>9} {:>9} {:>6}",
            "measure", "conc", "ops", "ops/s", "p50 ms", "p99 ms", "errors"
        )
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q`-quantile (0..=1) of `samples`, nearest rank.
pub fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// Runs `operations` calls of `op(i)` with `concurrency` workers, timing each call.
pub async fn drive<F, Fut, E>(label: &str, concurrency: usize, operations: usize, op: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    let op = Arc::new(op);
    drive_timed(label, concurrency, operations, move |i| {
        let op = op.clone();
        async move {
            let t = Instant::now();
            op(i).await.map(|()| t.elapsed())
        }
    })
    .await
}

/// Like [`drive`], but each call reports its own latency: for operations that end when
/// something is seen elsewhere (an event on the bus), timed from the moment it was seen.
pub async fn drive_timed<F, Fut, E>(
    label: &str,
    concurrency: usize,
    operations: usize,
    op: F,
) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration, E>> + Send,
    E: std::fmt::Display,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (op, next) = (op.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= operations {
                    break;
                }
                match op(i).await {
                    Ok(latency) => latencies.push(latency),
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("first error: {e}");
                        }
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::with_capacity(operations);
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.expect("bench worker");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    Figures {
        label: label.to_string(),
        concurrency,
        operations: latencies.len(),
        errors,
        elapsed,
        p50: percentile(&mut latencies, 0.50),
        p99: percentile(&mut latencies, 0.99),
    }
}

/// The limit to compare with: single-row INSERT + COMMIT per second on the same Postgres,
/// in a scratch database that is dropped afterwards. Each client keeps a connection of its
/// own for the whole run, as intake's writer does ([`crate::db::HeldConnection`]): no pool
/// between the client and the server, and none of the ping sqlx sends on every connection
/// given back to a pool.
pub async fn postgres_insert_commit(
    server_url: &str,
    concurrency: usize,
    operations: usize,
) -> anyhow::Result<Figures> {
    postgres_statement_commit(
        server_url,
        concurrency,
        operations,
        "postgres INSERT+COMMIT (limit)",
        "CREATE TABLE rows (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload TEXT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())",
        "INSERT INTO rows (payload) VALUES ('row ' || $1)",
    )
    .await
}

/// The limit of one hot row: an UPDATE + COMMIT of the same single row per second, every
/// client on that row. Its row lock makes the updates one commit after another, as a fund's
/// lock does its movements; what a fund does per second beside it says what batching bought.
pub async fn postgres_update_commit(
    server_url: &str,
    concurrency: usize,
    operations: usize,
) -> anyhow::Result<Figures> {
    postgres_statement_commit(
        server_url,
        concurrency,
        operations,
        "postgres UPDATE+COMMIT, one row (limit)",
        "CREATE TABLE hot (id INT PRIMARY KEY, n BIGINT NOT NULL, last TEXT); INSERT INTO hot VALUES (1, 0, NULL)",
        "UPDATE hot SET n = n + 1, last = $1 WHERE id = 1",
    )
    .await
}

/// `operations` runs of `statement` (bound to the operation's number as text), each one
/// committed by Postgres itself, by `concurrency` clients, in a scratch database that
/// `setup` prepares and that is dropped afterwards.
async fn postgres_statement_commit(
    server_url: &str,
    concurrency: usize,
    operations: usize,
    label: &str,
    setup: &'static str,
    statement: &'static str,
) -> anyhow::Result<Figures> {
    use sqlx::{Connection, PgConnection};
    let name = format!(
        "kc_bench_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let cfg = crate::config::DatabaseConfig {
        server_url: server_url.into(),
        name: name.clone(),
        max_connections: concurrency as u32 + 1,
    };
    crate::db::ensure_database(&cfg).await?;
    let url = format!("{server_url}/{name}");
    let mut connections = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        connections.push(PgConnection::connect(&url).await?);
    }
    sqlx::raw_sql(setup).execute(&mut connections[0]).await?;
    // At most `concurrency` operations are in flight, so one is always free.
    let free = Arc::new(std::sync::Mutex::new(connections));
    let bank = free.clone();
    let figures = drive(label, concurrency, operations, move |i| {
        let bank = bank.clone();
        async move {
            let mut conn = bank
                .lock()
                .expect("no operation panics holding the lock")
                .pop()
                .ok_or_else(|| sqlx::Error::PoolTimedOut)?;
            let result = autocommit(&mut conn, statement, i).await;
            bank.lock()
                .expect("no operation panics holding the lock")
                .push(conn);
            result
        }
    })
    .await;
    let connections = std::mem::take(&mut *free.lock().expect("the run is over"));
    for conn in connections {
        let _ = conn.close().await;
    }
    let admin = sqlx::PgPool::connect(&format!("{server_url}/postgres")).await?;
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&admin)
        .await?;
    Ok(figures)
}

/// One operation of a limit: a single statement that Postgres commits itself (autocommit).
/// One round trip: the fastest way a client can have one row written and committed, where
/// an explicit BEGIN / INSERT / COMMIT takes three (and measured 40 % slower at one client).
async fn autocommit(
    conn: &mut sqlx::PgConnection,
    statement: &'static str,
    i: usize,
) -> Result<(), sqlx::Error> {
    sqlx::query(statement)
        .bind(i.to_string())
        .execute(conn)
        .await
        .map(|_| ())
}

/// The other limit: JetStream publish-with-ack per second on the same NATS, the way the outbox
/// relay publishes (a `Nats-Msg-Id` per message, into a stream configured like the platform's),
/// `concurrency` publishes in flight on one connection. The scratch stream is deleted afterwards.
pub async fn jetstream_publish_ack(
    nats_url: &str,
    concurrency: usize,
    operations: usize,
    payload_bytes: usize,
) -> anyhow::Result<Figures> {
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let bus = crate::config::Settings {
        nats_url: nats_url.into(),
        stream_name: format!("KC_BENCH_{}", id.to_uppercase()),
        subject_prefix: format!("kcbench{id}"),
        ..Default::default()
    }
    .bus();
    let js = crate::bus::connect(&bus, "kechuang-bench").await?;
    crate::bus::ensure_stream(&js, &bus).await?;
    let subject = bus.subject("bench.published");
    let payload = bytes::Bytes::from(vec![b'x'; payload_bytes]);
    let publisher = js.clone();
    let figures = drive(
        "JetStream publish+ack (limit)",
        concurrency,
        operations,
        move |_| {
            let (js, subject, payload) = (publisher.clone(), subject.clone(), payload.clone());
            async move {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
                js.publish_with_headers(subject, headers, payload)
                    .await?
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
            }
        },
    )
    .await;
    js.delete_stream(&bus.stream_name).await?;
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut s, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&mut s, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn drive_counts_successes_and_errors() {
        let f = drive("t", 4, 20, |i| async move {
            if i % 5 == 0 { Err("boom") } else { Ok(()) }
        })
        .await;
        assert_eq!((f.operations, f.errors), (16, 4));
    }
}
