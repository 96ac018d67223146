//! Dead letters an operator can handle: list them, show one, replay them before the consumer
//! that failed, purge them (`kechuang dlq`).
//!
//! A consumer that cannot handle a message copies it to its service's dead-letter subject
//! `<prefix>.dlq.<service>` (in the same stream as the events) with the headers below, and
//! terminates it ([`crate::consumer`]).
//!
//! **Ids.** A dead letter is known by its sequence number in the stream: assigned once by
//! JetStream, never reused, never changed, one number to copy. The event id is not enough: one
//! event can be dead-lettered by several consumers, and again after a replay.
//!
//! **Bounded reads.** Listing pages through the dead-letter subjects with a short-lived
//! consumer of its own ([`reader`]), one request per page, and the server counts what is left;
//! nothing reads the whole subject into memory.
//!
//! **Replay** ([`replay`]) republishes the original body with its original signature on its
//! original subject, addressed to the one durable consumer that failed, and then deletes the
//! dead letter. A replay that fails again is dead-lettered again, under a new id, with its new
//! error; a replay of an event the consumer has since handled is a no-op (its inbox,
//! `processed_events`, already holds the event id).

mod reader;
mod replay;

pub use replay::{ReplaySummary, Replayed};

use crate::config::BusConfig;
use async_nats::HeaderMap;
use async_nats::jetstream::Context as JetStream;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use kechuang_proto::events::Envelope;
use prost::Message as _;

/// Why the consumer gave up on the message.
pub const ERROR_HEADER: &str = "Kc-Dlq-Error";
/// The subject the message came on.
pub const SUBJECT_HEADER: &str = "Kc-Dlq-Subject";
/// The durable consumer that gave up.
pub const CONSUMER_HEADER: &str = "Kc-Dlq-Consumer";
/// How many times it was delivered to that consumer.
pub const DELIVERIES_HEADER: &str = "Kc-Dlq-Deliveries";
/// Its own sequence number in the stream.
pub const STREAM_SEQUENCE_HEADER: &str = "Kc-Dlq-Stream-Sequence";
/// On a replayed message: the only consumer that handles it; every other one acks it unseen.
pub const REPLAY_FOR_HEADER: &str = "Kc-Replay-For";
/// On a replayed message, and on its dead letter if it fails again: the dead letter replayed.
pub const REPLAY_OF_HEADER: &str = "Kc-Replay-Of";

/// The most dead letters one listing returns.
pub const MAX_LIST: usize = 1000;

/// Why an operation on dead letters did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("no dead letter {0}")]
    NotFound(u64),
    #[error("stream message {id} is on {subject}, not a dead letter")]
    NotADeadLetter { id: u64, subject: String },
    #[error("dead letter {id} cannot be replayed: {reason}")]
    NotReplayable { id: u64, reason: String },
    #[error("{0:?} is not a service name")]
    BadService(String),
    #[error("NATS: {0}")]
    Nats(String),
}

fn nats(e: impl std::fmt::Display) -> DeadLetterError {
    DeadLetterError::Nats(e.to_string())
}

/// One dead letter, as the consumer that gave up wrote it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence in the stream: the id an operator names it by.
    pub id: u64,
    /// The service whose dead-letter subject holds it.
    pub service: String,
    pub dead_lettered_at: DateTime<Utc>,
    /// The durable consumer that gave up ("" if the header is missing).
    pub consumer: String,
    /// The subject the event came on ("" if the header is missing).
    pub subject: String,
    pub error: String,
    pub deliveries: i64,
    /// The stream sequence of the message that failed (0 if unknown).
    pub original_sequence: u64,
    /// The dead letter this one is a failed replay of.
    pub replay_of: Option<u64>,
    /// Every header, the producer's signature and `traceparent` among them.
    pub headers: HeaderMap,
    /// The original message body: an encoded envelope unless the message was garbage.
    pub body: Bytes,
}

impl DeadLetter {
    fn from_parts(
        id: u64,
        service: &str,
        time: async_nats::datetime::DateTime,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        Self {
            id,
            service: service.to_string(),
            dead_lettered_at: DateTime::from_timestamp_nanos(
                i64::try_from(time.unix_timestamp_nanos()).unwrap_or(i64::MAX),
            ),
            consumer: text(CONSUMER_HEADER),
            subject: text(SUBJECT_HEADER),
            error: text(ERROR_HEADER),
            deliveries: text(DELIVERIES_HEADER).parse().unwrap_or(0),
            original_sequence: text(STREAM_SEQUENCE_HEADER).parse().unwrap_or(0),
            replay_of: text(REPLAY_OF_HEADER).parse().ok(),
            headers,
            body,
        }
    }

    /// The event, if the body is one.
    pub fn envelope(&self) -> Result<Envelope, prost::DecodeError> {
        Envelope::decode(self.body.clone())
    }

    /// The event's id, or "" when the body is not an envelope.
    pub fn event_id(&self) -> String {
        self.envelope().map(|e| e.event_id).unwrap_or_default()
    }
}

/// Some dead letters and how many more follow them.
#[derive(Debug)]
pub struct Page {
    pub letters: Vec<DeadLetter>,
    /// Dead letters (under the same filter) after the last one in `letters`.
    pub more: u64,
}

/// The dead letters of one stream.
#[derive(Clone)]
pub struct DeadLetters {
    jetstream: JetStream,
    bus: BusConfig,
}

impl DeadLetters {
    pub fn new(jetstream: JetStream, bus: BusConfig) -> Self {
        Self { jetstream, bus }
    }

    /// Up to `limit` (at most [`MAX_LIST`]) dead letters with ids above `after`, oldest first,
    /// of `service` or of every service.
    pub async fn list(
        &self,
        service: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Page, DeadLetterError> {
        let limit = limit.clamp(1, MAX_LIST);
        let mut reader = self.reader(service, after).await?;
        let mut letters = Vec::with_capacity(limit);
        let mut more = 0;
        while letters.len() < limit {
            let page = reader.next_page(limit - letters.len()).await;
            let (page, left) = match page {
                Ok(page) => page,
                Err(e) => {
                    reader.close().await;
                    return Err(e);
                }
            };
            more = left;
            if page.is_empty() {
                break;
            }
            letters.extend(page);
            if left == 0 {
                break;
            }
        }
        reader.close().await;
        Ok(Page { letters, more })
    }

    /// The dead letter `id`.
    pub async fn get(&self, id: u64) -> Result<DeadLetter, DeadLetterError> {
        let stream = self.stream().await?;
        let message = match stream.get_raw_message(id).await {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                return Err(DeadLetterError::NotFound(id));
            }
            Err(e) => return Err(nats(e)),
        };
        let Some(service) = service_of(&self.bus.subject_prefix, &message.subject) else {
            return Err(DeadLetterError::NotADeadLetter {
                id,
                subject: message.subject.to_string(),
            });
        };
        Ok(DeadLetter::from_parts(
            id,
            service,
            message.time,
            message.headers,
            message.payload,
        ))
    }

    async fn stream(&self) -> Result<Stream, DeadLetterError> {
        self.jetstream
            .get_stream(&self.bus.stream_name)
            .await
            .map_err(|e| nats(format!("stream {}: {e}", self.bus.stream_name)))
    }

    async fn reader(
        &self,
        service: Option<&str>,
        after: u64,
    ) -> Result<reader::Reader, DeadLetterError> {
        let filter = self.filter(service)?;
        reader::Reader::open(
            self.stream().await?,
            &self.bus.subject_prefix,
            filter,
            after,
        )
        .await
    }

    /// The dead-letter subject of `service`, or of every service.
    fn filter(&self, service: Option<&str>) -> Result<String, DeadLetterError> {
        match service {
            None => Ok(self.bus.dead_letter_subject("*")),
            Some(s) if is_token(s) => Ok(self.bus.dead_letter_subject(s)),
            Some(s) => Err(DeadLetterError::BadService(s.to_string())),
        }
    }
}

/// The service whose dead letter a message on `subject` is, if it is one.
fn service_of<'a>(subject_prefix: &str, subject: &'a str) -> Option<&'a str> {
    let service = subject
        .strip_prefix(subject_prefix)?
        .strip_prefix(".dlq.")?;
    is_token(service).then_some(service)
}

/// One subject token: no dots, wildcards or spaces.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}
