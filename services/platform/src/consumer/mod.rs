//! Idempotent event consumers: durable JetStream pull consumers feeding typed handlers.
//!
//! Per message: check that the producer entitled to its type signed it ([`crate::seal`]), open a transaction, record the event id in
//! `processed_events` (a redelivery finds it there and is a no-op), run the handler in that
//! transaction, commit, and only then ack. (A handler may commit several messages' effects in
//! one transaction instead, each with its record: [`EventHandler::apply`].) A transient failure is nak'ed with a growing delay;
//! a permanent one, or the last allowed delivery, copies the message to
//! `<prefix>.dlq.<service>` with its error and terminates it, and the consumer goes on.
//! An operator replays it from there ([`crate::dead_letters`]) to this consumer alone.
//! A handler can also have its events applied in groups, several to a transaction ([`Grouped`]).

use crate::config::BusConfig;
use crate::dead_letters::{
    CONSUMER_HEADER, DELIVERIES_HEADER, ERROR_HEADER, REPLAY_FOR_HEADER, REPLAY_OF_HEADER,
    STREAM_SEQUENCE_HEADER, SUBJECT_HEADER,
};
use crate::seal::{EventKeys, PRODUCER_HEADER, SIGNATURE_HEADER};
use crate::telemetry;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::{AckKind, Context as JetStream, Message};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kechuang_proto::events::Envelope;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

mod grouped;

pub use grouped::{Committer, Grouped};

/// The log target of the line each committed event application writes.
pub const APPLIED_TARGET: &str = "kechuang::applied";

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: the database or another dependency failed.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed: the event is malformed or contradicts the handler's state.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Transient(e.to_string())
    }
}

impl From<crate::error::Error> for HandlerError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::Database(e) => HandlerError::Transient(e.to_string()),
            crate::error::Error::Unavailable(m) | crate::error::Error::Aborted(m) => {
                HandlerError::Transient(m)
            }
            other => HandlerError::Permanent(other.to_string()),
        }
    }
}

/// Applies events to a service's state. Runs inside the transaction that also records the
/// event as processed: return an error and neither happens.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        event: &Envelope,
        tx: &mut PgConnection,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Whether this handler acts on events of `event_type` at all. The others under the
    /// consumer's filter (a wildcard, since NATS 2.9 takes one filter per consumer) are
    /// acknowledged once their signature is checked (a forgery is still dead-lettered),
    /// without a transaction or a `processed_events` record: nothing here depends on them.
    fn wants(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }

    /// Applies `event` once for `consumer`: its effect and the record that it was processed
    /// commit together, or neither does. The default is one transaction per event (record it
    /// in `processed_events`, [`handle`](Self::handle), commit). A handler that commits the
    /// effects of several events in one transaction (a group commit) overrides this, and then
    /// records each event with [`record_processed`] in the transaction of its effect, after
    /// asking [`already_processed`] under the same lock that orders its effects.
    fn apply(
        &self,
        pool: &PgPool,
        consumer: &str,
        event: &Envelope,
    ) -> impl Future<Output = Result<Applied, HandlerError>> + Send {
        apply_alone(self, pool, consumer, event)
    }
}

/// The default [`EventHandler::apply`]: one transaction for the event, which records it in
/// `processed_events` (a redelivery finds it there and is a no-op), runs the handler, commits.
pub async fn apply_alone<H: EventHandler + ?Sized>(
    handler: &H,
    pool: &PgPool,
    consumer: &str,
    event: &Envelope,
) -> Result<Applied, HandlerError> {
    let applied = in_one_transaction(pool, consumer, event, async |tx| {
        handler.handle(event, tx).await
    })
    .await?;
    Ok(applied.map_or(Applied::AlreadyProcessed, |()| Applied::Now))
}

/// [`apply_alone`] with any effect `apply`, whose value comes back once it has committed
/// (`None`: a redelivery, nothing done): for a handler that hands work on after the commit
/// and never before it.
pub async fn in_one_transaction<T>(
    pool: &PgPool,
    consumer: &str,
    event: &Envelope,
    apply: impl AsyncFnOnce(&mut PgConnection) -> Result<T, HandlerError>,
) -> Result<Option<T>, HandlerError> {
    let processed = Processed::of(consumer, event)?;
    let mut tx = pool.begin().await?;
    if !record_processed(&mut tx, std::slice::from_ref(&processed)).await? {
        tx.rollback().await?;
        return Ok(None);
    }
    let value = apply(&mut tx).await?;
    tx.commit().await?;
    Ok(Some(value))
}

/// What applying an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Its effect is committed now.
    Now,
    /// A redelivery: it was processed before, nothing done.
    AlreadyProcessed,
}

/// The record that `consumer` processed an event: a row of `processed_events`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Processed {
    pub consumer: String,
    pub event_id: Uuid,
    pub event_type: String,
}

impl Processed {
    pub fn of(consumer: &str, event: &Envelope) -> Result<Self, HandlerError> {
        let event_id = Uuid::parse_str(&event.event_id)
            .map_err(|e| HandlerError::Permanent(format!("event id {:?}: {e}", event.event_id)))?;
        Ok(Self {
            consumer: consumer.to_string(),
            event_id,
            event_type: event.event_type.clone(),
        })
    }
}

/// Which of `records` are in `processed_events` already (committed, or written earlier in
/// this transaction).
pub async fn already_processed(
    conn: &mut PgConnection,
    records: &[Processed],
) -> Result<std::collections::HashSet<Processed>, sqlx::Error> {
    if records.is_empty() {
        return Ok(Default::default());
    }
    let consumers: Vec<&str> = records.iter().map(|r| r.consumer.as_str()).collect();
    let ids: Vec<Uuid> = records.iter().map(|r| r.event_id).collect();
    let found: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT p.consumer, p.event_id FROM processed_events p \
         JOIN unnest($1::text[], $2::uuid[]) AS r(consumer, event_id) \
           ON p.consumer = r.consumer AND p.event_id = r.event_id",
    )
    .bind(&consumers)
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    Ok(records
        .iter()
        .filter(|r| found.contains(&(r.consumer.clone(), r.event_id)))
        .cloned()
        .collect())
}

/// Records `records` as processed, in one statement; false if any of them already was (for
/// one record: it is a redelivery). The others are recorded all the same: a caller that
/// expected none to be there rolls back.
pub async fn record_processed(
    conn: &mut PgConnection,
    records: &[Processed],
) -> Result<bool, sqlx::Error> {
    Ok(record_new(conn, records).await?.len() == records.len())
}

/// Records `records` as processed, in one statement: which of them were recorded now (the
/// others already were, committed or earlier in this transaction). For a group commit that
/// applies the effects of the new ones only.
pub async fn record_new(
    conn: &mut PgConnection,
    records: &[Processed],
) -> Result<std::collections::HashSet<Processed>, sqlx::Error> {
    if records.is_empty() {
        return Ok(Default::default());
    }
    let consumers: Vec<&str> = records.iter().map(|r| r.consumer.as_str()).collect();
    let ids: Vec<Uuid> = records.iter().map(|r| r.event_id).collect();
    let types: Vec<&str> = records.iter().map(|r| r.event_type.as_str()).collect();
    let inserted: std::collections::HashSet<(String, Uuid)> = sqlx::query_as(
        "INSERT INTO processed_events (consumer, event_id, event_type) \
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[]) ON CONFLICT DO NOTHING \
         RETURNING consumer, event_id",
    )
    .bind(&consumers)
    .bind(&ids)
    .bind(&types)
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect();
    Ok(records
        .iter()
        .filter(|r| inserted.contains(&(r.consumer.clone(), r.event_id)))
        .cloned()
        .collect())
}

/// A durable consumer over the event types matching `event_types` (a NATS pattern under the
/// prefix, e.g. `pairing.*`). Replicas that use the same `durable_name` share the work.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub durable_name: String,
    pub event_types: String,
    /// How many messages one process handles at a time. 1 keeps the stream's order; more is
    /// for events that are independent of each other (and whose handlers take CPU time).
    pub parallelism: usize,
}

impl ConsumerSpec {
    pub fn new(durable_name: impl Into<String>, event_types: impl Into<String>) -> Self {
        Self {
            durable_name: durable_name.into(),
            event_types: event_types.into(),
            parallelism: 1,
        }
    }

    pub fn in_parallel(self, parallelism: usize) -> Self {
        Self {
            parallelism: parallelism.max(1),
            ..self
        }
    }
}

pub struct Consumer<H> {
    pool: PgPool,
    jetstream: JetStream,
    bus: BusConfig,
    service: String,
    spec: ConsumerSpec,
    handler: Arc<H>,
    keys: Arc<EventKeys>,
    /// What wakes the service's relay: rung by the handler's appends, and again after the
    /// commit of an event that appended.
    bell: Arc<crate::outbox::Bell>,
}

impl<H: EventHandler> Consumer<H> {
    pub fn new(
        pool: PgPool,
        jetstream: JetStream,
        bus: BusConfig,
        service: impl Into<String>,
        spec: ConsumerSpec,
        handler: Arc<H>,
        keys: Arc<EventKeys>,
    ) -> Self {
        let service = service.into();
        Self {
            bell: crate::outbox::bell(&service),
            pool,
            jetstream,
            bus,
            service,
            spec,
            handler,
            keys,
        }
    }

    /// Consumes until `shutdown`; the message in hand is finished first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            match self.consume(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_millis(200u64 << failures.min(5));
                    tracing::warn!(consumer = %self.spec.durable_name, error = %e, retry_in = ?delay, "consumer interrupted");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    async fn consume(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let stream = self.jetstream.get_stream(&self.bus.stream_name).await?;
        let config = pull::Config {
            durable_name: Some(self.spec.durable_name.clone()),
            filter_subject: self.bus.subject(&self.spec.event_types),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            // Unbounded on the server: the bound is ours, so that the last delivery can be
            // dead-lettered with its error instead of silently dropped.
            max_deliver: -1,
            max_ack_pending: 1024,
            ..Default::default()
        };
        let consumer = stream
            .get_or_create_consumer(&self.spec.durable_name, config)
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(64)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?;
        let mut in_hand = FuturesUnordered::new();
        let result = loop {
            tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                Some(()) = in_hand.next(), if !in_hand.is_empty() => {}
                next = messages.next(), if in_hand.len() < self.spec.parallelism => match next {
                    Some(Ok(message)) => in_hand.push(self.process(message)),
                    Some(Err(e)) => break Err(e.into()),
                    None => break Err(anyhow::anyhow!("message stream ended")),
                },
            }
        };
        // Finish the messages in hand: what they did is committed and acked, not redone.
        while in_hand.next().await.is_some() {}
        result
    }

    async fn process(&self, message: Message) {
        let (delivered, sequence) = match message.info() {
            Ok(info) => (info.delivered, info.stream_sequence),
            Err(e) => {
                tracing::error!(error = %e, "message without JetStream metadata");
                return;
            }
        };
        // Nothing is acted upon unless the producer entitled to its type signed it.
        let envelope = match self.keys.verify(
            &message.subject,
            &self.bus.subject_prefix,
            message.headers.as_ref(),
            &message.payload,
        ) {
            Ok(envelope) => envelope,
            Err(e) => {
                let reason = format!("unauthentic event: {e}");
                tracing::warn!(subject = %message.subject, %reason, "refusing an event");
                return self
                    .dead_letter(&message, sequence, delivered, "unauthentic", &reason)
                    .await;
            }
        };
        // Authentic but not for this handler: acknowledged, no transaction, no record.
        if !self.handler.wants(&envelope.event_type) {
            if let Err(e) = message.ack().await {
                tracing::debug!(error = %e, "ack of an event this consumer ignores failed");
            }
            return;
        }
        // A replay of a dead letter is for the consumer that dead-lettered it alone
        // (`crate::dead_letters`); every other consumer of the subject had its own copy. Only
        // checked once the message is authentic: a forgery marked for another consumer is
        // still dead-lettered here, not waved through unrecorded.
        if let Some(target) = message
            .headers
            .as_ref()
            .and_then(|h| h.get(REPLAY_FOR_HEADER))
            && target.as_str() != self.spec.durable_name
        {
            if let Err(e) = message.ack().await {
                tracing::debug!(error = %e, "ack of another consumer's replay failed");
            }
            return;
        }
        let span = tracing::info_span!(
            "handle_event",
            otel.kind = "consumer",
            consumer = %self.spec.durable_name,
            event_type = %envelope.event_type,
            event_id = %envelope.event_id,
            delivery = delivered,
        );
        if let Some(tp) = message
            .headers
            .as_ref()
            .and_then(|h| h.get(telemetry::TRACEPARENT))
        {
            telemetry::set_parent_from_traceparent(&span, tp.as_str());
        }
        if delivered > 1 {
            ::metrics::counter!(
                crate::metrics::REDELIVERIES,
                "service" => self.service.clone(),
                "consumer" => self.spec.durable_name.clone(),
            )
            .increment(1);
        }
        async {
            if delivered > self.bus.max_deliver {
                let reason = format!("gave up after {delivered} deliveries without an outcome");
                return self
                    .dead_letter(&message, sequence, delivered, "exhausted", &reason)
                    .await;
            }
            match self.apply(&envelope).await {
                Ok(outcome) => {
                    if outcome == Applied::AlreadyProcessed {
                        tracing::debug!("already processed; acknowledging the redelivery");
                    }
                    if let Err(e) = message.double_ack().await {
                        // The effect is committed; a redelivery will be recognised.
                        tracing::warn!(error = %e, "ack failed after commit");
                    }
                }
                Err(HandlerError::Transient(e)) if delivered < self.bus.max_deliver => {
                    let delay = self.redelivery_delay(delivered);
                    tracing::warn!(error = %e, retry_in = ?delay, "handler failed; will retry");
                    let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "handler failed for good; dead-lettering");
                    let kind = match e {
                        HandlerError::Transient(_) => "exhausted",
                        HandlerError::Permanent(_) => "permanent",
                    };
                    self.dead_letter(&message, sequence, delivered, kind, &e.to_string())
                        .await
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn apply(&self, envelope: &Envelope) -> Result<Applied, HandlerError> {
        let rings = self.bell.rings();
        let applied = self
            .handler
            .apply(&self.pool, &self.spec.durable_name, envelope)
            .await?;
        if applied == Applied::Now && self.bell.rings() != rings {
            // What the handler appended to the outbox (its append rang) is committed now:
            // publish it at once. A handler that appended nothing leaves the relay be.
            self.bell.ring();
        }
        if applied == Applied::Now {
            // Which process applied which event, for operators and the replica tests
            // (`RUST_LOG=kechuang::applied=debug`).
            tracing::debug!(
                target: APPLIED_TARGET,
                consumer = %self.spec.durable_name,
                event_id = %envelope.event_id,
                "event applied"
            );
        }
        Ok(applied)
    }

    fn redelivery_delay(&self, delivered: i64) -> Duration {
        let exponent = (delivered.clamp(1, 10) - 1) as u32;
        self.bus
            .redelivery_backoff
            .saturating_mul(1 << exponent)
            .min(Duration::from_secs(300))
    }

    /// Copies the message to the service's dead-letter subject, then terminates it. If the
    /// copy cannot be stored, the message is nak'ed instead: never dropped. `kind` labels the
    /// dead-letter counter: `unauthentic`, `permanent` (the handler refused it) or `exhausted`
    /// (no outcome within the allowed deliveries).
    async fn dead_letter(
        &self,
        message: &Message,
        sequence: u64,
        delivered: i64,
        kind: &'static str,
        reason: &str,
    ) {
        let subject = self.bus.dead_letter_subject(&self.service);
        // The original's signature and trace context go along, so that it can be replayed;
        // a failed replay says which dead letter it replayed.
        let mut headers = HeaderMap::new();
        for name in [
            PRODUCER_HEADER,
            SIGNATURE_HEADER,
            telemetry::TRACEPARENT,
            REPLAY_OF_HEADER,
        ] {
            if let Some(value) = message.headers.as_ref().and_then(|h| h.get(name)) {
                headers.insert(name, value.as_str());
            }
        }
        let dedup_id = format!("dlq:{}:{}", self.spec.durable_name, sequence);
        headers.insert("Nats-Msg-Id", dedup_id.as_str());
        headers.insert(ERROR_HEADER, one_line(reason).as_str());
        headers.insert(SUBJECT_HEADER, message.subject.as_str());
        headers.insert(CONSUMER_HEADER, self.spec.durable_name.as_str());
        headers.insert(DELIVERIES_HEADER, delivered.to_string().as_str());
        headers.insert(STREAM_SEQUENCE_HEADER, sequence.to_string().as_str());
        let stored = match self
            .jetstream
            .publish_with_headers(subject, headers, message.payload.clone())
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => {
                tracing::error!(reason, "message dead-lettered");
                ::metrics::counter!(
                    crate::metrics::DEAD_LETTERS,
                    "service" => self.service.clone(),
                    "consumer" => self.spec.durable_name.clone(),
                    "reason" => kind,
                )
                .increment(1);
                let _ = message.ack_with(AckKind::Term).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store the dead letter; will retry");
                let _ = message
                    .ack_with(AckKind::Nak(Some(self.bus.redelivery_backoff)))
                    .await;
            }
        }
    }
}

/// Header values cannot hold line breaks.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.chars().take(1000).collect()
}
