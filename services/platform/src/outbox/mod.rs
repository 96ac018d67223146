//! The transactional outbox: a service appends its events in the same transaction as its
//! state change; the [`Relay`] publishes committed rows to JetStream and marks them sent.
//!
//! Ordering without losing late commits: identity values are taken before commit, so a row
//! with a smaller id can become visible after a larger one. The relay therefore keeps no
//! "last id seen" high-water mark; every pass reads all unsent rows in id order. Per aggregate,
//! `append` takes a transaction-scoped advisory lock on the aggregate before it draws its id,
//! so two transactions writing the same aggregate draw their ids in commit order, and id
//! order is that aggregate's event order. One relay per database publishes at a time (a
//! session advisory lock), in waves that hold at most one event of an order key (its
//! aggregate, unless the producer narrowed it: [`NewEvent::ordered_by`]), each wave's acks
//! awaited before the next is sent, so JetStream receives each key's events in order. It wakes on its producer's in-process bell (rung by that
//! producer's commits only: the services sharing a process do not wake each other's relays),
//! on LISTEN/NOTIFY (rate limited, see [`crate::db::NotifyBudget`]) and on a 100 ms poll. The events of aggregates that a
//! statement has just created can also be handed to the relay after the commit
//! ([`Handover`]), which publishes them without reading their rows back.

use crate::events::NewEvent;
use crate::telemetry;
use chrono::Utc;
use kechuang_proto::events::Envelope;
use prost::Message;
use sqlx::{PgConnection, PgPool, Postgres};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use uuid::Uuid;

mod relay;

pub use relay::{CommittedEvent, Handover, Relay};

/// NOTIFY channel: an append wakes the relay when its transaction commits.
pub const CHANNEL: &str = "kc_outbox";

/// Appends `event` to the outbox inside the caller's transaction and returns its envelope.
/// The event is published only if, and after, that transaction commits.
pub async fn append(
    conn: &mut PgConnection,
    producer: &str,
    event: NewEvent,
) -> Result<Envelope, sqlx::Error> {
    let order_key = event.order_key.clone();
    let envelope = event.into_envelope(producer, Utc::now());
    let event_id = Uuid::parse_str(&envelope.event_id).expect("a fresh UUIDv7 parses");
    let lock_key = format!("{}/{}", envelope.aggregate_type, envelope.aggregate_id);
    let sql = if should_notify() {
        "WITH aggregate_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))), \
              wake AS (SELECT pg_notify('kc_outbox', '')) \
         INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, \
                             aggregate_version, envelope, traceparent, order_key) \
         SELECT $2, $3, $4, $5, $6, $7, $8, $9 FROM aggregate_lock, wake"
    } else {
        "WITH aggregate_lock AS (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) \
         INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, \
                             aggregate_version, envelope, traceparent, order_key) \
         SELECT $2, $3, $4, $5, $6, $7, $8, $9 FROM aggregate_lock"
    };
    sqlx::query(sql)
        .bind(lock_key)
        .bind(event_id)
        .bind(&envelope.event_type)
        .bind(&envelope.aggregate_type)
        .bind(&envelope.aggregate_id)
        .bind(envelope.aggregate_version)
        .bind(envelope.encode_to_vec())
        .bind(telemetry::current_traceparent())
        .bind(order_key)
        .execute(conn)
        .await?;
    ring(producer);
    Ok(envelope)
}

/// Appends several events in one statement (one round trip), each as [`append`] would: the
/// aggregates are locked first, in one order for every caller, so each aggregate's ids are
/// drawn in commit order. Returns the envelopes in the order given.
pub async fn append_many(
    conn: &mut PgConnection,
    producer: &str,
    events: Vec<NewEvent>,
) -> Result<Vec<Envelope>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let order_keys: Vec<Option<String>> = events.iter().map(|e| e.order_key.clone()).collect();
    let envelopes: Vec<Envelope> = events
        .into_iter()
        .map(|e| e.into_envelope(producer, now))
        .collect();
    let mut lock_keys: Vec<String> = envelopes
        .iter()
        .map(|e| format!("{}/{}", e.aggregate_type, e.aggregate_id))
        .collect();
    lock_keys.sort();
    lock_keys.dedup();
    let column = |f: fn(&Envelope) -> String| envelopes.iter().map(f).collect::<Vec<_>>();
    let event_ids: Vec<Uuid> = envelopes
        .iter()
        .map(|e| Uuid::parse_str(&e.event_id).expect("a fresh UUIDv7 parses"))
        .collect();
    let versions: Vec<i64> = envelopes.iter().map(|e| e.aggregate_version).collect();
    let encoded: Vec<Vec<u8>> = envelopes.iter().map(|e| e.encode_to_vec()).collect();
    // The locks are taken in the keys' (sorted) array order, all before the first row is
    // inserted: the insert joins their count, which needs every one.
    let sql = "WITH aggregate_locks AS ( \
            SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key \
         ), locked AS (SELECT count(*) AS n FROM aggregate_locks), \
         wake AS (SELECT CASE WHEN $9 THEN pg_notify('kc_outbox', '') END AS sent) \
         INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, \
                             aggregate_version, envelope, traceparent, order_key) \
         SELECT e.event_id, e.event_type, e.aggregate_type, e.aggregate_id, e.version, \
                e.envelope, $8, e.order_key \
         FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[], \
                     $10::text[]) \
              WITH ORDINALITY AS e(event_id, event_type, aggregate_type, aggregate_id, \
                                   version, envelope, order_key, position), \
              locked, wake \
         ORDER BY e.position";
    sqlx::query(sql)
        .bind(&lock_keys)
        .bind(&event_ids)
        .bind(column(|e| e.event_type.clone()))
        .bind(column(|e| e.aggregate_type.clone()))
        .bind(column(|e| e.aggregate_id.clone()))
        .bind(&versions)
        .bind(&encoded)
        .bind(telemetry::current_traceparent())
        .bind(should_notify())
        .bind(&order_keys)
        .execute(conn)
        .await?;
    ring(producer);
    Ok(envelopes)
}

/// An event sealed for an outbox row that the caller inserts in its own statement, so that a
/// create can write its row, its history and its event in one round trip. Only for an
/// aggregate that this very statement creates: no other transaction can hold events of it, so
/// the per-aggregate lock that [`append`] takes is not needed. The statement writes them with
/// [`staged_insert`] (values in [`STAGED_COLUMNS`]' order) and, when [`Staged::notify`] is
/// set, wakes the other relays with [`staged_wake`]. Once the statement has committed, hand the
/// event to the relay ([`Handover::committed`]), or at least [`ring`] its producer's bell.
pub struct Staged {
    pub envelope: Envelope,
    pub event_id: Uuid,
    pub encoded: Vec<u8>,
    pub traceparent: Option<String>,
    pub notify: bool,
}

/// The outbox's columns, in the order a [`Staged`] event's values go.
pub const STAGED_COLUMNS: &str =
    "event_id, event_type, aggregate_type, aggregate_id, aggregate_version, envelope, traceparent";

/// The body of a data-modifying CTE that writes staged events: `rows` is a query yielding
/// [`STAGED_COLUMNS`] in order (typically the rows the same statement just inserted, joined to
/// their staged values). The outbox's shape stays the platform's to change.
pub fn staged_insert(rows: &str) -> String {
    format!("INSERT INTO outbox ({STAGED_COLUMNS}) {rows}")
}

/// The body of a CTE that wakes other processes' relays: `written` is the rest of a `SELECT`
/// (`FROM ... WHERE ...`) that yields a row when events were written and the staged events'
/// [`Staged::notify`] flag is set.
pub fn staged_wake(written: &str) -> String {
    format!("SELECT pg_notify('{CHANNEL}', '') {written}")
}

pub fn stage(producer: &str, event: NewEvent) -> Staged {
    let envelope = event.into_envelope(producer, Utc::now());
    Staged {
        event_id: Uuid::parse_str(&envelope.event_id).expect("a fresh UUIDv7 parses"),
        encoded: envelope.encode_to_vec(),
        traceparent: telemetry::current_traceparent(),
        notify: should_notify(),
        envelope,
    }
}

/// Wakes this process's relays of `producer`'s database: an event was written, or its
/// transaction has just committed. [`append`] rings before the commit (the relay then looks
/// again a few milliseconds later, when the commit has usually landed); code that commits
/// events, such as the consumers, rings again after the commit so the relay publishes at once.
pub fn ring(producer: &str) {
    bell(producer).ring();
}

/// Commits a transaction that appended `producer`'s events and wakes its relay to publish them
/// at once.
pub async fn commit(
    tx: sqlx::Transaction<'_, Postgres>,
    producer: &str,
) -> Result<(), sqlx::Error> {
    tx.commit().await?;
    ring(producer);
    Ok(())
}

/// What wakes the relays of one producer's database in this process. Every service sharing a
/// process (`kechuang up`, the demo, the bench) has its own, so that a commit in one does not
/// send the others' relays to read an outbox that has nothing new.
#[derive(Default)]
pub(crate) struct Bell {
    notify: Notify,
    /// Counts rings, so that a ring during a pass (when the relay is not waiting) is not lost.
    rings: AtomicU64,
}

impl Bell {
    pub(crate) fn ring(&self) {
        self.rings.fetch_add(1, Ordering::Release);
        self.notify.notify_waiters();
    }

    pub(crate) fn rings(&self) -> u64 {
        self.rings.load(Ordering::Acquire)
    }

    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

/// `producer`'s bell: one per producer name for the life of the process.
pub(crate) fn bell(producer: &str) -> Arc<Bell> {
    static BELLS: LazyLock<Mutex<HashMap<String, Arc<Bell>>>> = LazyLock::new(Mutex::default);
    let mut bells = BELLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(bell) = bells.get(producer) {
        return bell.clone();
    }
    let bell = Arc::new(Bell::default());
    bells.insert(producer.to_string(), bell.clone());
    bell
}

/// A transaction that NOTIFYs takes a database-wide lock while it commits, so notifying
/// commits cannot share WAL flushes: one NOTIFY per transaction caps a database at a few
/// hundred commits a second. So a process NOTIFYs at most once per 5 ms; the in-process bell,
/// the relay's short re-checks and its poll cover the rest.
static NOTIFY_BUDGET: crate::db::NotifyBudget =
    crate::db::NotifyBudget::new(Duration::from_millis(5));

fn should_notify() -> bool {
    NOTIFY_BUDGET.spend()
}

/// Unsent outbox rows, for health and tests.
pub async fn unsent_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(pool)
        .await
}
