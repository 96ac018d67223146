//! Building envelopes: every event a service emits goes through [`NewEvent`].

use chrono::{DateTime, Utc};
use kechuang_proto::EventType;
use kechuang_proto::events::{Envelope, envelope::Payload};
use uuid::Uuid;

/// An event about to be appended to the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub aggregate_id: String,
    /// The aggregate's version after this event.
    pub aggregate_version: i64,
    pub payload: Payload,
    /// Carried from the request or event that caused this one; a fresh chain when absent.
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// What this event must reach JetStream in order with: the events of one key are
    /// published one after another, those of different keys side by side. `None`: its
    /// aggregate, so that each aggregate's events arrive in version order.
    pub order_key: Option<String>,
}

impl NewEvent {
    pub fn new(aggregate_id: impl Into<String>, aggregate_version: i64, payload: Payload) -> Self {
        Self {
            aggregate_id: aggregate_id.into(),
            aggregate_version,
            payload,
            correlation_id: None,
            causation_id: None,
            order_key: None,
        }
    }

    /// Orders this event with the events of `key` only, instead of its whole aggregate's: for
    /// an aggregate whose events are about independent things (a fund's transfers, each about
    /// one application), which consumers already take in any order.
    pub fn ordered_by(mut self, key: impl Into<String>) -> Self {
        self.order_key = Some(key.into());
        self
    }

    /// Continues the chain of `cause`: same correlation id, `cause` as causation.
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.correlation_id = Some(if cause.correlation_id.is_empty() {
            cause.event_id.clone()
        } else {
            cause.correlation_id.clone()
        });
        self.causation_id = Some(cause.event_id.clone());
        self
    }

    /// Seals the event into an envelope with a fresh UUIDv7.
    pub fn into_envelope(self, producer: &str, now: DateTime<Utc>) -> Envelope {
        let event_id = Uuid::now_v7().to_string();
        Envelope {
            event_type: self.payload.event_type().to_string(),
            aggregate_type: self.payload.aggregate_type().to_string(),
            occurred_at: Some(timestamp(now)),
            aggregate_id: self.aggregate_id,
            aggregate_version: self.aggregate_version,
            correlation_id: self.correlation_id.unwrap_or_else(|| event_id.clone()),
            causation_id: self.causation_id.unwrap_or_default(),
            producer: producer.to_string(),
            payload: Some(self.payload),
            event_id,
        }
    }
}

/// A chrono time as a protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A protobuf timestamp as a chrono time; `None` when out of range.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return None;
    }
    DateTime::from_timestamp(t.seconds, t.nanos as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kechuang_proto::events::FundLowBalance;

    #[test]
    fn envelope_names_the_event_and_continues_the_chain() {
        let cause = NewEvent::new("f1", 1, Payload::FundLowBalance(FundLowBalance::default()))
            .into_envelope("fund-ledger", Utc::now());
        assert_eq!(cause.event_type, "fund.low_balance");
        assert_eq!(cause.aggregate_type, "fund");
        assert_eq!(cause.correlation_id, cause.event_id);
        let effect = NewEvent::new("f1", 2, Payload::FundLowBalance(FundLowBalance::default()))
            .caused_by(&cause)
            .into_envelope("fund-ledger", Utc::now());
        assert_eq!(effect.correlation_id, cause.event_id);
        assert_eq!(effect.causation_id, cause.event_id);
        assert_ne!(effect.event_id, cause.event_id);
        assert_eq!(
            Uuid::parse_str(&effect.event_id).unwrap().get_version_num(),
            7
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let now = Utc::now();
        assert_eq!(from_timestamp(&timestamp(now)), Some(now));
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
    }
}
