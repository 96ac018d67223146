//! The audit trail's anchors read back from the bus: VerifyAuditTrail holds the trail in the
//! database to the latest `kc.audit.anchored` the subsidy service signed, which someone who
//! can rewrite the database cannot rewrite with it.

use crate::domain::audit::Anchor;
use async_nats::jetstream::Context as JetStream;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use kechuang_platform::Error;
use kechuang_platform::config::BusConfig;
use kechuang_platform::seal::EventKeys;
use kechuang_proto::event_types::AUDIT_ANCHORED;
use kechuang_proto::events::envelope::Payload;
use std::sync::Arc;

/// What the bus holds as the trail's latest anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Latest {
    /// Nothing anchored yet (or the stream was emptied).
    None,
    Found(Anchor),
    /// The latest message on the anchors' subject is not one the subsidy service signed.
    Unauthentic(String),
}

/// Reads the latest anchor.
#[derive(Clone)]
pub struct Anchors {
    jetstream: JetStream,
    bus: BusConfig,
    keys: Arc<EventKeys>,
}

impl Anchors {
    pub fn new(jetstream: JetStream, bus: BusConfig, keys: Arc<EventKeys>) -> Self {
        Self {
            jetstream,
            bus,
            keys,
        }
    }

    pub async fn latest(&self) -> Result<Latest, Error> {
        let unavailable = |e: &dyn std::fmt::Display| {
            Error::Unavailable(format!(
                "cannot read the audit trail's anchor from the bus: {e}"
            ))
        };
        let subject = format!("{}.{AUDIT_ANCHORED}", self.bus.subject_prefix);
        let stream = self
            .jetstream
            .get_stream(&self.bus.stream_name)
            .await
            .map_err(|e| unavailable(&e))?;
        let message = match stream.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                return Ok(Latest::None);
            }
            Err(e) => return Err(unavailable(&e)),
        };
        let verified = self.keys.verify(
            &message.subject,
            &self.bus.subject_prefix,
            Some(&message.headers),
            &message.payload,
        );
        Ok(match verified {
            Ok(envelope) => match envelope.payload {
                Some(Payload::AuditAnchored(a)) => Latest::Found(Anchor {
                    sequence: a.sequence,
                    hash: a.hash,
                }),
                _ => Latest::Unauthentic("it carries no anchor".into()),
            },
            Err(why) => Latest::Unauthentic(why.to_string()),
        })
    }
}
