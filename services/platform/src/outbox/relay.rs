//! The relay: publishes committed outbox rows to JetStream, in order, and deletes them once
//! JetStream has acknowledged them (every row in the outbox is unsent).

use super::{Bell, CHANNEL};
use crate::config::BusConfig;
use crate::seal::Signer;
use crate::telemetry;
use async_nats::HeaderMap;
use async_nats::jetstream::Context as JetStream;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
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
    handed_over: mpsc::Receiver<Vec<CommittedEvent>>,
    handover: Handover,
    /// Signs every event it publishes: consumers act only on signed events.
    signer: Signer,
    /// Rung by the commits of this database's producer in this process.
    bell: Arc<Bell>,
}

/// An unsent row the relay read: its event and the key that orders it.
#[derive(sqlx::FromRow)]
struct PendingRow {
    #[sqlx(flatten)]
    event: CommittedEvent,
    /// The events of one key go out in order ([`waves`]).
    order_key: String,
}

/// An event whose outbox row is committed: handed to the relay by the code that committed it
/// (see [`Handover`]), or read back from its row.
#[derive(sqlx::FromRow)]
pub struct CommittedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub envelope: Vec<u8>,
    pub traceparent: Option<String>,
}

impl From<super::Staged> for CommittedEvent {
    fn from(staged: super::Staged) -> Self {
        Self {
            event_id: staged.event_id,
            event_type: staged.envelope.event_type,
            envelope: staged.encoded,
            traceparent: staged.traceparent,
        }
    }
}

/// Hands events to this process's relay the moment their transaction has committed, so that
/// it publishes them without reading them back: no SELECT, no wake-up pause. Only for events of
/// aggregates their own statement created ([`super::stage`]): nothing of such an aggregate can
/// be in the outbox before them, so publishing them ahead of the relay's next read keeps every
/// aggregate's order. The outbox rows stay the guarantee: whatever the relay does not publish
/// this way (it is not the leader, it is behind, NATS failed, the process died) it reads and
/// publishes as any other row; a copy JetStream already has is dropped (`Nats-Msg-Id`).
#[derive(Clone)]
pub struct Handover {
    relay: mpsc::Sender<Vec<CommittedEvent>>,
    leading: Arc<AtomicBool>,
    bell: Arc<Bell>,
}

/// Batches of handed-over events the relay may hold before callers fall back to ringing.
const HANDOVER_QUEUE: usize = 1024;
/// How long the relay gathers handed-over events before it publishes them: the publication
/// delay of such an event, traded for fewer wake-ups per event under load.
const GATHER: Duration = Duration::from_millis(5);

impl Handover {
    /// Whether this process's relay publishes for the database now. While it does, a
    /// statement whose events are handed over need not NOTIFY: NOTIFY is for a relay in
    /// another process, and it costs the database a lock and the listener a wake-up.
    pub fn relay_leads(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// `events` are in outbox rows that have committed.
    pub fn committed(&self, events: Vec<CommittedEvent>) {
        if events.is_empty() {
            return;
        }
        if self.relay.try_send(events).is_err() {
            // The relay is behind or gone: it reads the rows instead.
            self.bell.ring();
        }
    }
}

impl Relay {
    pub fn new(pool: PgPool, jetstream: JetStream, bus: BusConfig, signer: Signer) -> Self {
        let (relay, handed_over) = mpsc::channel(HANDOVER_QUEUE);
        let bell = super::bell(signer.producer());
        Self {
            pool,
            jetstream,
            bus,
            batch_size: 256,
            poll_interval: Duration::from_millis(100),
            handed_over,
            handover: Handover {
                relay,
                leading: Arc::new(AtomicBool::new(false)),
                bell: bell.clone(),
            },
            signer,
            bell,
        }
    }

    /// Where code that commits new aggregates hands their events over (see [`Handover`]).
    pub fn handover(&self) -> Handover {
        self.handover.clone()
    }

    /// Runs until `shutdown`, then makes one last pass so that committed events are not left
    /// behind (they would be published at the next start anyway).
    pub async fn run(mut self, shutdown: CancellationToken) {
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
    async fn lead(&mut self, shutdown: &CancellationToken) -> Result<(), sqlx::Error> {
        let mut leader = self.pool.acquire().await?;
        loop {
            let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK_KEY)
                .fetch_one(&mut *leader)
                .await?;
            // Events handed over meanwhile are the leader's to publish (it reads their rows);
            // on taking the lead, the first pass reads them too.
            self.drop_handed_over();
            if acquired {
                break;
            }
            // Another replica publishes; stand by.
            if sleep_or_cancel(self.poll_interval, shutdown).await {
                return Ok(());
            }
        }
        self.handover.leading.store(true, Ordering::Release);
        let result = self.publish_while_leading(&mut leader, shutdown).await;
        self.handover.leading.store(false, Ordering::Release);
        // Release the lock whatever happened; a broken connection releases it anyway.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(RELAY_LOCK_KEY)
            .execute(&mut *leader)
            .await;
        result
    }

    fn drop_handed_over(&mut self) {
        while self.handed_over.try_recv().is_ok() {}
    }

    async fn publish_while_leading(
        &mut self,
        leader: &mut PoolConnection<Postgres>,
        shutdown: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let mut publish_failures = 0u32;
        let mut rechecks = RECHECKS.len();
        let mut acked = Acked::default();
        loop {
            // What was handed over goes out before the read, which then skips it.
            while let Ok(events) = self.handed_over.try_recv() {
                self.publish_handed_over(events, &mut acked).await;
            }
            let rings = self.bell.rings();
            // On an error, the rows held in `acked` stay in the outbox: whoever leads next
            // publishes them again and JetStream drops the copies (Nats-Msg-Id).
            let outcome = self.publish_pending(leader, &mut acked).await?;
            if acked.due() {
                acked.remove(leader).await?;
            }
            match outcome {
                Pass::Drained if shutdown.is_cancelled() => return acked.remove(leader).await,
                Pass::Drained => {
                    publish_failures = 0;
                    self.wait_for_work(
                        leader,
                        &mut listener,
                        &mut acked,
                        rings,
                        &mut rechecks,
                        shutdown,
                    )
                    .await?;
                }
                Pass::More => {
                    publish_failures = 0;
                    rechecks = 0;
                }
                Pass::NatsFailed(e) => {
                    acked.remove(leader).await?;
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

    /// After a drained pass: waits for the next reason to read the outbox (a ring in this
    /// process, a NOTIFY from another, a recheck pause, the poll interval, shutdown), while
    /// publishing what is handed over and removing acked rows as they fall due.
    async fn wait_for_work(
        &mut self,
        leader: &mut PoolConnection<Postgres>,
        listener: &mut PgListener,
        acked: &mut Acked,
        rings: u64,
        rechecks: &mut usize,
        shutdown: &CancellationToken,
    ) -> Result<(), sqlx::Error> {
        // After a wake-up, the commit that rang may land a moment later: look
        // again after short pauses before settling into the long wait. Events
        // handed over meanwhile are published without putting that look off.
        let (pause, rechecking) = match RECHECKS.get(*rechecks) {
            Some(pause) => (*pause, true),
            None => (self.poll_interval, false),
        };
        let look_again = Instant::now() + pause;
        loop {
            let bell = self.bell.clone();
            let rung = bell.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            if bell.rings() != rings {
                // Rung during the pass: something may have committed since it read.
                *rechecks = 0;
                sleep_or_cancel(LINGER, shutdown).await;
                return Ok(());
            }
            let mut until = look_again;
            if let Some(left) = acked.due_in() {
                if left.is_zero() {
                    acked.remove(leader).await?;
                } else {
                    until = until.min(Instant::now() + left);
                }
            }
            let wake = tokio::select! {
                _ = shutdown.cancelled() => Wake::Stop,
                notified = listener.recv() => { notified?; Wake::Rung }
                _ = rung => Wake::Rung,
                Some(events) = self.handed_over.recv() => Wake::HandedOver(events),
                _ = tokio::time::sleep_until(until) => Wake::Pause { rechecking },
            };
            match wake {
                Wake::Stop => return Ok(()),
                Wake::Rung => {
                    // Let the commits that follow this one land too: one pass
                    // then publishes several events instead of one pass (and one
                    // SELECT) each.
                    *rechecks = 0;
                    sleep_or_cancel(LINGER, shutdown).await;
                    return Ok(());
                }
                Wake::Pause { rechecking } => {
                    *rechecks = if rechecking {
                        *rechecks + 1
                    } else {
                        RECHECKS.len()
                    };
                    return Ok(());
                }
                Wake::HandedOver(mut events) => {
                    // Gather what follows, so that one burst of publishes (and
                    // of wake-ups) carries many events.
                    sleep_or_cancel(GATHER, shutdown).await;
                    while let Ok(more) = self.handed_over.try_recv() {
                        events.extend(more);
                    }
                    if !self.publish_handed_over(events, acked).await {
                        // Their rows are read and retried with the rest.
                        return Ok(());
                    }
                    if acked.due() {
                        acked.remove(leader).await?;
                    }
                }
            }
        }
    }

    /// Publishes handed-over events, together ([`Relay::publish_together`]). False if any
    /// failed (their rows stay unsent, for the next read).
    async fn publish_handed_over(
        &self,
        mut events: Vec<CommittedEvent>,
        acked: &mut Acked,
    ) -> bool {
        // A read may have found a row just before its hand-over arrived.
        events.retain(|e| !acked.read.contains(&e.event_id));
        let (published, failure) = self.publish_together(events.iter()).await;
        published.into_iter().for_each(|id| acked.push(id));
        if let Some(e) = &failure {
            tracing::debug!(error = %e, "publishing handed-over events failed");
        }
        failure.is_none()
    }

    /// Publishes one batch of unsent rows; what was acked joins `acked`, to be deleted a
    /// little later (see [`Acked`]). The rows go out in waves ([`waves`]): each wave holds at
    /// most one row of an order key (by default the aggregate) and is sent whole before its acks
    /// are awaited, so a read of many keys' events costs about one round trip to NATS, not one
    /// an event. A wave starts only once every ack of the wave before it came back, and a
    /// failure ends the pass: so JetStream never holds an event without every event of its key
    /// before it, even when a connection drops mid-wave.
    async fn publish_pending(
        &self,
        conn: &mut PgConnection,
        acked: &mut Acked,
    ) -> Result<Pass, sqlx::Error> {
        let rows: Vec<PendingRow> = sqlx::query_as(
            "SELECT event_id, event_type, envelope, traceparent, \
                    coalesce(order_key, aggregate_type || '/' || aggregate_id) AS order_key \
             FROM outbox WHERE NOT (event_id = ANY($2)) ORDER BY id LIMIT $1",
        )
        .bind(self.batch_size)
        .bind(&acked.ids)
        .fetch_all(&mut *conn)
        .await?;
        let full = rows.len() as i64 == self.batch_size;
        for wave in waves(&rows) {
            if let Err(e) = self.publish_wave(&wave, acked).await {
                return Ok(Pass::NatsFailed(e));
            }
        }
        Ok(if full { Pass::More } else { Pass::Drained })
    }

    /// Publishes the rows of `wave` together ([`Relay::publish_together`]); the acked ones
    /// join `acked`. The first failure.
    async fn publish_wave(
        &self,
        wave: &[&PendingRow],
        acked: &mut Acked,
    ) -> Result<(), async_nats::Error> {
        let (published, failure) = self
            .publish_together(wave.iter().map(|row| &row.event))
            .await;
        for id in published {
            acked.push(id);
            acked.read.remember(id);
        }
        failure.map_or(Ok(()), Err)
    }

    /// Sends every event, then awaits their acks, so the lot costs about one round trip to
    /// NATS: the ids JetStream acknowledged, and the first failure. Sending stops at a failed
    /// send; every ack of what was sent is awaited.
    async fn publish_together(
        &self,
        events: impl Iterator<Item = &CommittedEvent>,
    ) -> (Vec<Uuid>, Option<async_nats::Error>) {
        let mut sent = Vec::new();
        let mut failure: Option<async_nats::Error> = None;
        for event in events {
            let headers = self.headers(
                event.event_id,
                &event.envelope,
                event.traceparent.as_deref(),
            );
            match self
                .jetstream
                .publish_with_headers(
                    self.bus.subject(&event.event_type),
                    headers,
                    bytes::Bytes::copy_from_slice(&event.envelope),
                )
                .await
            {
                Ok(ack) => sent.push((event.event_id, ack)),
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            }
        }
        let mut published = Vec::with_capacity(sent.len());
        for (event_id, ack) in sent {
            match ack.await {
                Ok(ack) => {
                    if ack.duplicate {
                        tracing::debug!(%event_id, "JetStream already had this event");
                    }
                    published.push(event_id);
                }
                Err(e) => {
                    failure.get_or_insert(e.into());
                }
            }
        }
        (published, failure)
    }
}

impl Relay {
    /// The de-duplication id, the trace context and the producer's signature of `envelope`.
    fn headers(&self, event_id: Uuid, envelope: &[u8], traceparent: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", event_id.to_string().as_str());
        if let Some(tp) = traceparent {
            headers.insert(telemetry::TRACEPARENT, tp);
        }
        self.signer.seal(envelope, &mut headers);
        headers
    }
}

/// `rows` (in id order) as waves: each row goes in the wave after the one holding the previous
/// row of its order key, so every wave holds at most one row of a key and a key's rows keep
/// their order from wave to wave.
fn waves(rows: &[PendingRow]) -> Vec<Vec<&PendingRow>> {
    let mut waves: Vec<Vec<&PendingRow>> = Vec::new();
    let mut next_wave: HashMap<&str, usize> = HashMap::new();
    for row in rows {
        let wave = next_wave.entry(row.order_key.as_str()).or_insert(0);
        if *wave == waves.len() {
            waves.push(Vec::new());
        }
        waves[*wave].push(row);
        *wave += 1;
    }
    waves
}

enum Wake {
    Stop,
    /// The bell or a NOTIFY: something committed.
    Rung,
    HandedOver(Vec<CommittedEvent>),
    Pause {
        rechecking: bool,
    },
}

/// Rows JetStream has acknowledged that are still in the outbox. Deleting them is a commit of
/// its own; done for every event, it would double the database's commits, so the relay
/// deletes at most every [`REMOVE_EVERY`] (or [`REMOVE_BATCH`] rows) and skips what it holds
/// here meanwhile. A relay that dies first leaves them in place: the next one publishes them
/// again and JetStream drops the copies (its duplicate window is far longer than this delay).
#[derive(Default)]
struct Acked {
    ids: Vec<Uuid>,
    since: Option<std::time::Instant>,
    read: RecentlyRead,
}

/// The last events the relay's reads published, so that the hand-over of one of them (it can
/// arrive just after a read found the row) does not publish it a second time.
#[derive(Default)]
struct RecentlyRead {
    order: VecDeque<Uuid>,
    ids: HashSet<Uuid>,
}

/// Far more than the events committed between a read and the hand-overs still queued.
const RECENTLY_READ: usize = 4096;

impl RecentlyRead {
    fn remember(&mut self, id: Uuid) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        if self.order.len() > RECENTLY_READ
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
    }

    fn contains(&self, id: &Uuid) -> bool {
        self.ids.contains(id)
    }
}

const REMOVE_EVERY: Duration = Duration::from_millis(50);
const REMOVE_BATCH: usize = 512;

impl Acked {
    fn push(&mut self, id: Uuid) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.ids.push(id);
    }

    /// How long until the held rows should be deleted; `None` when none are held.
    fn due_in(&self) -> Option<Duration> {
        self.since
            .map(|since| REMOVE_EVERY.saturating_sub(since.elapsed()))
    }

    fn due(&self) -> bool {
        self.ids.len() >= REMOVE_BATCH || self.due_in().is_some_and(|left| left.is_zero())
    }

    async fn remove(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(key: &str) -> PendingRow {
        PendingRow {
            event: CommittedEvent {
                event_id: Uuid::now_v7(),
                event_type: "fund.reserved".into(),
                envelope: Vec::new(),
                traceparent: None,
            },
            order_key: key.into(),
        }
    }

    fn aggregates(waves: &[Vec<&PendingRow>]) -> Vec<Vec<String>> {
        waves
            .iter()
            .map(|w| w.iter().map(|r| r.order_key.clone()).collect())
            .collect()
    }

    #[test]
    fn a_keys_later_events_wait_for_a_later_wave() {
        let rows: Vec<PendingRow> = ["a", "b", "a", "c", "a", "b"].map(row).into();
        assert_eq!(
            aggregates(&waves(&rows)),
            [vec!["a", "b", "c"], vec!["a", "b"], vec!["a"]]
        );
    }

    #[test]
    fn one_keys_events_go_one_at_a_time_and_many_keys_together() {
        let one: Vec<PendingRow> = ["f", "f", "f"].map(row).into();
        assert_eq!(waves(&one).len(), 3);
        let many: Vec<PendingRow> = ["a", "b", "c", "d"].map(row).into();
        assert_eq!(waves(&many).len(), 1);
        assert!(waves(&[]).is_empty());
    }

    proptest! {
        /// Every row goes out once; a wave never holds two rows of one key; a key's rows go
        /// out in their read order, each in a later wave than the one before it.
        #[test]
        fn waves_keep_every_aggregates_order(picks in proptest::collection::vec(0..4usize, 0..40)) {
            let rows: Vec<PendingRow> = picks.iter().map(|p| row(&format!("agg-{p}"))).collect();
            let waves = waves(&rows);
            let mut wave_of = HashMap::new();
            for (n, wave) in waves.iter().enumerate() {
                let mut in_wave = HashSet::new();
                for r in wave {
                    prop_assert!(in_wave.insert(&r.order_key), "two rows of one key in a wave");
                    wave_of.insert(r.event.event_id, n);
                }
            }
            prop_assert_eq!(wave_of.len(), rows.len());
            let mut last: HashMap<&str, usize> = HashMap::new();
            for r in &rows {
                let n = wave_of[&r.event.event_id];
                if let Some(before) = last.insert(&r.order_key, n) {
                    prop_assert!(before < n, "a key's rows out of order");
                }
            }
        }
    }
}
