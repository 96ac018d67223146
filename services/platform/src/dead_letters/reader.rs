//! Paging through dead letters without reading them all: a short-lived consumer of the
//! dead-letter subjects, which the server positions (after an id) and counts for (each message
//! says how many follow it). JetStream 2.9 has everything used here: an ephemeral pull
//! consumer with one filter subject, `AckPolicy::None`, a start sequence and an inactivity
//! threshold.

use super::{DeadLetter, DeadLetterError, nats, service_of};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use std::time::Duration;

/// The most dead letters one request fetches.
pub(super) const PAGE: usize = 256;

pub(super) struct Reader {
    stream: Stream,
    consumer: PullConsumer,
    subject_prefix: String,
}

impl Reader {
    /// Reads the dead letters on `filter` with ids above `after`, oldest first.
    pub(super) async fn open(
        stream: Stream,
        subject_prefix: &str,
        filter: String,
        after: u64,
    ) -> Result<Self, DeadLetterError> {
        let config = pull::Config {
            filter_subject: filter,
            deliver_policy: match after {
                0 => DeliverPolicy::All,
                n => DeliverPolicy::ByStartSequence {
                    start_sequence: n.saturating_add(1),
                },
            },
            // Reading is not handling: nothing is acknowledged, nothing redelivered.
            ack_policy: AckPolicy::None,
            // The server removes it if this process dies before `close`.
            inactive_threshold: Duration::from_secs(60),
            memory_storage: true,
            ..Default::default()
        };
        let consumer = stream.create_consumer(config).await.map_err(nats)?;
        Ok(Self {
            stream,
            consumer,
            subject_prefix: subject_prefix.to_string(),
        })
    }

    /// Up to `max` (at most [`PAGE`]) more dead letters, and how many follow them.
    pub(super) async fn next_page(
        &mut self,
        max: usize,
    ) -> Result<(Vec<DeadLetter>, u64), DeadLetterError> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(max.clamp(1, PAGE))
            .messages()
            .await
            .map_err(nats)?;
        let mut page = Vec::new();
        let mut left = 0;
        while let Some(message) = messages.next().await {
            let message = message.map_err(nats)?;
            let info = message.info().map_err(nats)?;
            left = info.pending;
            let (id, published) = (info.stream_sequence, info.published);
            // The filter admits only dead-letter subjects; anything else is not listed.
            let Some(service) = service_of(&self.subject_prefix, &message.subject) else {
                continue;
            };
            page.push(DeadLetter::from_parts(
                id,
                service,
                published,
                message.headers.clone().unwrap_or_default(),
                message.payload.clone(),
            ));
        }
        Ok((page, left))
    }

    /// Removes the reading consumer (the server would after a minute anyway).
    pub(super) async fn close(self) {
        let name = self.consumer.cached_info().name.clone();
        if let Err(e) = self.stream.delete_consumer(&name).await {
            tracing::debug!(consumer = %name, error = %e, "dead-letter reader not deleted");
        }
    }
}
