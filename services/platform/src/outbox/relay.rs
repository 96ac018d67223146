//! The relay: publishes committed outbox rows to JetStream, in order, and marks them sent.

use super::{BELL, CHANNEL, RINGS};
use crate::config::BusConfig;
use crate::telemetry;
use async_nats::HeaderMap;
use async_nats::jetstream::Context as JetStream;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Session advisory lock key held by the one publishing relay of a database.
const RELAY_LOCK_KEY: i64 = 0x6b63_6f75_7462_6f78; // "kcoutbox"

/// Publishes committed outbox rows to JetStream.
pub struct Relay {
    pool: PgPool,
    jetstream: JetStream,
    bus: BusConfig,
    batch_size: i64,
    poll_interval: Duration,
}

#[derive(sqlx::FromRow)]
struct PendingRow {
    id: i64,
    event_id: Uuid,
    event_type: String,
    envelope: Vec<u8>,
    traceparent: Option<String>,
}

impl Relay {
    pub fn new(pool: PgPool, jetstream: JetStream, bus: BusConfig) -> Self {
        Self {
            pool,
            jetstream,
            bus,
            batch_size: 256,
            poll_interval: Duration::from_millis(100),
        }
    }

    /// Runs until `shutdown`, then makes one last pass so that committed events are not left
    /// behind (they would be published at the next start anyway).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff(failures);
                    tracing::warn!(error = %e, retry_in = ?delay, "outbox relay lost its connection");
                    sleep_or_cancel(delay, &shutdown).await;
                }
            }
        }
    }

    /// Becomes the publishing relay of this database, then publishes until `shutdown`.
    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        let mut leader = self.pool.acquire().await?;
        loop {
            let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK_KEY)
                .fetch_one(&mut *leader)
                .await?;
            if acquired {
                break;
            }
            // Another replica publishes; stand by.
            if sleep_or_cancel(self.poll_interval, shutdown).await {
                return Ok(());
            }
        }
        let result = self.publish_while_leading(&mut leader, shutdown).await;
        // Release the lock whatever happened; a broken connection releases it anyway.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(RELAY_LOCK_KEY)
            .execute(&mut *leader)
            .await;
        result
    }

    async fn publish_while_leading(
        &self,
        leader: &mut PoolConnection<Postgres>,
        shutdown: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let mut publish_failures = 0u32;
        let mut rechecks = RECHECKS.len();
        let mut acked = Acked::default();
        loop {
            let rings = RINGS.load(Ordering::Acquire);
            // On an error, the rows held in `acked` stay unmarked: whoever leads next
            // publishes them again and JetStream drops the copies (Nats-Msg-Id).
            let outcome = self.publish_pending(leader, &mut acked).await?;
            if acked.due() {
                acked.mark(leader).await?;
            }
            match outcome {
                Pass::Drained if shutdown.is_cancelled() => return acked.mark(leader).await,
                Pass::Drained => {
                    publish_failures = 0;
                    let bell = BELL.notified();
                    tokio::pin!(bell);
                    bell.as_mut().enable();
                    if RINGS.load(Ordering::Acquire) != rings {
                        // Rung during the pass: something may have committed since it read.
                        rechecks = 0;
                        sleep_or_cancel(LINGER, shutdown).await;
                        continue;
                    }
                    // After a wake-up, the commit that rang may land a moment later: look
                    // again after short pauses before settling into the long wait.
                    let (mut pause, rechecking) = match RECHECKS.get(rechecks) {
                        Some(pause) => (*pause, true),
                        None => (self.poll_interval, false),
                    };
                    if let Some(left) = acked.due_in() {
                        if left.is_zero() {
                            acked.mark(leader).await?;
                        } else {
                            pause = pause.min(left);
                        }
                    }
                    let woken = tokio::select! {
                        _ = shutdown.cancelled() => false,
                        notified = listener.recv() => { notified?; rechecks = 0; true }
                        _ = bell => { rechecks = 0; true }
                        _ = tokio::time::sleep(pause) => {
                            rechecks = if rechecking { rechecks + 1 } else { RECHECKS.len() };
                            false
                        }
                    };
                    if woken {
                        // Let the commits that follow this one land too: one pass then
                        // publishes several events instead of one pass (and one SELECT) each.
                        sleep_or_cancel(LINGER, shutdown).await;
                    }
                }
                Pass::More => {
                    publish_failures = 0;
                    rechecks = 0;
                }
                Pass::NatsFailed(e) => {
                    acked.mark(leader).await?;
                    if shutdown.is_cancelled() {
                        tracing::warn!(error = %e, "NATS unreachable at shutdown; unsent events stay in the outbox");
                        return Ok(());
                    }
                    publish_failures = publish_failures.saturating_add(1);
                    let delay = backoff(publish_failures);
                    tracing::warn!(error = %e, retry_in = ?delay, "publishing outbox events failed");
                    sleep_or_cancel(delay, shutdown).await;
                }
            }
        }
    }

    /// Publishes one batch of unsent rows in id order, each awaited; what was acked joins
    /// `acked`, to be marked sent a little later (see [`Acked`]).
    async fn publish_pending(
        &self,
        conn: &mut PgConnection,
        acked: &mut Acked,
    ) -> Result<Pass, sqlx::Error> {
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT id, event_id, event_type, envelope, traceparent FROM outbox \
             WHERE sent_at IS NULL AND NOT (id = ANY($2)) ORDER BY id LIMIT $1",
        )
        .bind(self.batch_size)
        .bind(&acked.ids)
        .fetch_all(&mut *conn)
        .await?;
        let full = rows.len() as i64 == self.batch_size;
        let mut failure = None;
        for row in &rows {
            match self.publish(row).await {
                Ok(()) => acked.push(row.id),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        Ok(match failure {
            Some(e) => Pass::NatsFailed(e),
            None if full => Pass::More,
            None => Pass::Drained,
        })
    }

    async fn publish(&self, row: &PendingRow) -> Result<(), async_nats::Error> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", row.event_id.to_string().as_str());
        if let Some(tp) = &row.traceparent {
            headers.insert(telemetry::TRACEPARENT, tp.as_str());
        }
        let ack = self
            .jetstream
            .publish_with_headers(
                self.bus.subject(&row.event_type),
                headers,
                row.envelope.clone().into(),
            )
            .await?
            .await?;
        if ack.duplicate {
            tracing::debug!(event_id = %row.event_id, "JetStream already had this event");
        }
        Ok(())
    }
}

/// Rows JetStream has acknowledged but the outbox does not yet say are sent. Marking them is a
/// commit of its own; done for every event, it would double the database's commits, so the
/// relay marks at most every [`MARK_EVERY`] (or [`MARK_BATCH`] rows) and skips what it holds
/// here meanwhile. A relay that dies first leaves them unmarked: the next one publishes them
/// again and JetStream drops the copies (its duplicate window is far longer than this delay).
#[derive(Default)]
struct Acked {
    ids: Vec<i64>,
    since: Option<std::time::Instant>,
}

const MARK_EVERY: Duration = Duration::from_millis(50);
const MARK_BATCH: usize = 512;

impl Acked {
    fn push(&mut self, id: i64) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.ids.push(id);
    }

    /// How long until the held rows should be marked; `None` when none are held.
    fn due_in(&self) -> Option<Duration> {
        self.since
            .map(|since| MARK_EVERY.saturating_sub(since.elapsed()))
    }

    fn due(&self) -> bool {
        self.ids.len() >= MARK_BATCH || self.due_in().is_some_and(|left| left.is_zero())
    }

    async fn mark(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
            .bind(&self.ids)
            .execute(&mut *conn)
            .await?;
        self.ids.clear();
        self.since = None;
        Ok(())
    }
}

/// How long the relay waits after a wake-up before it reads: the events of that moment are
/// then published by one pass. Every event hop between services costs this much more latency.
const LINGER: Duration = Duration::from_millis(1);

/// After a wake-up finds nothing, look again after these pauses (a commit on a busy machine
/// can take tens of milliseconds to land after its last statement).
const RECHECKS: [Duration; 5] = [
    Duration::from_millis(2),
    Duration::from_millis(4),
    Duration::from_millis(8),
    Duration::from_millis(16),
    Duration::from_millis(32),
];

enum Pass {
    /// Everything visible was published.
    Drained,
    /// A full batch went out; there may be more.
    More,
    NatsFailed(async_nats::Error),
}

/// 100 ms doubling to at most 10 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(7)).min(10_000))
}

/// Sleeps; true when cancelled first.
async fn sleep_or_cancel(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}

