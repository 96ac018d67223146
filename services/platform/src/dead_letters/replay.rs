//! Putting dead letters back before their consumer, and throwing them away.
//!
//! **Only the consumer that failed gets the replay.** Several durable consumers take the same
//! subject (`contract.signed`: subsidy and demand-intake). A consumer that handled the event
//! would only find it in its inbox again, but one that also dead-lettered it would handle it
//! behind its own dead letter's back, or fail again and file a second one. JetStream 2.10 could
//! give each durable a second filter (`filter_subjects`) on a replay subject of its own; the
//! 2.9 servers this runs on take one filter per consumer, and a second durable per consumer for
//! replays alone would double the consumers and their NATS permissions. The replay also has to
//! go on the original subject: the signature covers the body, and [`crate::seal`] accepts an
//! event only on its own type's subject. So the replay goes on the original subject with the
//! original body and signature, marked [`REPLAY_FOR_HEADER`] with the failed consumer's durable
//! name, and every other consumer acknowledges it without looking further
//! ([`crate::consumer`]). Before publishing, the durable must still exist and still take that
//! subject, or nobody would handle the replay and the dead letter would be gone.
//!
//! **Not swallowed as a duplicate.** The relay published the event with `Nats-Msg-Id` = its
//! event id; a replay with that id inside the duplicate window would be dropped. A replay's id
//! is `replay:<dead letter id>`: distinct from the event's, and the same for a second replay of
//! the same dead letter (two operators, a retry after a crash between publish and delete), so
//! that one goes back once.

use super::reader::{PAGE, Reader};
use super::{
    DeadLetter, DeadLetterError, DeadLetters, REPLAY_FOR_HEADER, REPLAY_OF_HEADER, nats, service_of,
};
use crate::seal::{PRODUCER_HEADER, SIGNATURE_HEADER};
use crate::telemetry::TRACEPARENT;
use async_nats::HeaderMap;
use async_nats::jetstream::context::ConsumerInfoErrorKind;
use async_nats::jetstream::stream::Stream;
use std::collections::HashMap;

/// At most this many refusals are kept in a [`ReplaySummary`]; the rest are only counted.
const REFUSALS_KEPT: usize = 20;

/// A dead letter put back, and where the replay is in the stream.
#[derive(Debug)]
pub struct Replayed {
    pub letter: DeadLetter,
    pub sequence: u64,
}

/// What `replay --all` did.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    pub replayed: u64,
    /// Dead letters left in place because they cannot be replayed (first [`REFUSALS_KEPT`]).
    pub refusals: Vec<DeadLetterError>,
    pub refused: u64,
    /// Why it stopped before the end, if it did (what was replayed until then stays so).
    pub interrupted: Option<DeadLetterError>,
}

/// The filters of each durable consumer met so far; `None` for one that does not exist.
type Filters = HashMap<String, Option<Vec<String>>>;

impl DeadLetters {
    /// Puts dead letter `id` back before the consumer that gave up on it, then deletes it.
    pub async fn replay(&self, id: u64) -> Result<Replayed, DeadLetterError> {
        let letter = self.get(id).await?;
        let stream = self.stream().await?;
        let sequence = self
            .replay_letter(&stream, &letter, &mut Filters::new())
            .await?;
        Ok(Replayed { letter, sequence })
    }

    /// Replays every dead letter of `service` (or of all services) that is there now; one that
    /// dead-letters again comes back with a higher id and waits for the next command.
    pub async fn replay_all(
        &self,
        service: Option<&str>,
    ) -> Result<ReplaySummary, DeadLetterError> {
        let stream = self.stream().await?;
        let bound = stream.get_info().await.map_err(nats)?.state.last_sequence;
        let mut reader = self.reader(service, 0).await?;
        let mut summary = ReplaySummary::default();
        if let Err(e) = self
            .replay_pages(&stream, &mut reader, bound, &mut summary)
            .await
        {
            summary.interrupted = Some(e);
        }
        reader.close().await;
        Ok(summary)
    }

    async fn replay_pages(
        &self,
        stream: &Stream,
        reader: &mut Reader,
        bound: u64,
        summary: &mut ReplaySummary,
    ) -> Result<(), DeadLetterError> {
        let mut filters = Filters::new();
        loop {
            let (page, _) = reader.next_page(PAGE).await?;
            if page.is_empty() {
                return Ok(());
            }
            for letter in page {
                if letter.id > bound {
                    return Ok(());
                }
                match self.replay_letter(stream, &letter, &mut filters).await {
                    Ok(_) => summary.replayed += 1,
                    Err(refusal @ DeadLetterError::NotReplayable { .. }) => {
                        summary.refused += 1;
                        if summary.refusals.len() < REFUSALS_KEPT {
                            summary.refusals.push(refusal);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }

    async fn replay_letter(
        &self,
        stream: &Stream,
        letter: &DeadLetter,
        filters: &mut Filters,
    ) -> Result<u64, DeadLetterError> {
        let refuse = |reason: String| DeadLetterError::NotReplayable {
            id: letter.id,
            reason,
        };
        let prefix = &self.bus.subject_prefix;
        let on_event_subject = letter
            .subject
            .strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.starts_with('.'))
            && service_of(prefix, &letter.subject).is_none();
        if letter.consumer.is_empty() || !on_event_subject {
            return Err(refuse(format!(
                "it names no consumer, or no event subject under {prefix}"
            )));
        }
        if !filters.contains_key(&letter.consumer) {
            let found = consumer_filters(stream, &letter.consumer).await?;
            filters.insert(letter.consumer.clone(), found);
        }
        match &filters[&letter.consumer] {
            None => {
                return Err(refuse(format!(
                    "consumer {} no longer exists",
                    letter.consumer
                )));
            }
            Some(taken) if !taken.iter().any(|f| subject_matches(f, &letter.subject)) => {
                return Err(refuse(format!(
                    "consumer {} takes {}, no longer {}",
                    letter.consumer,
                    taken.join(", "),
                    letter.subject
                )));
            }
            Some(_) => {}
        }
        let sequence = self.republish(letter).await?;
        // The replay is stored: the dead letter has done its job.
        stream.delete_message(letter.id).await.map_err(nats)?;
        Ok(sequence)
    }

    async fn republish(&self, letter: &DeadLetter) -> Result<u64, DeadLetterError> {
        let mut headers = HeaderMap::new();
        for name in [PRODUCER_HEADER, SIGNATURE_HEADER, TRACEPARENT] {
            if let Some(value) = letter.headers.get(name) {
                headers.insert(name, value.as_str());
            }
        }
        headers.insert("Nats-Msg-Id", format!("replay:{}", letter.id).as_str());
        headers.insert(REPLAY_FOR_HEADER, letter.consumer.as_str());
        headers.insert(REPLAY_OF_HEADER, letter.id.to_string().as_str());
        let ack = self
            .jetstream
            .publish_with_headers(letter.subject.clone(), headers, letter.body.clone())
            .await
            .map_err(nats)?
            .await
            .map_err(nats)?;
        Ok(ack.sequence)
    }

    /// Deletes dead letter `id`; returns what it held.
    pub async fn purge(&self, id: u64) -> Result<DeadLetter, DeadLetterError> {
        let letter = self.get(id).await?;
        let deleted = self
            .stream()
            .await?
            .delete_message(id)
            .await
            .map_err(nats)?;
        if !deleted {
            return Err(DeadLetterError::NotFound(id));
        }
        Ok(letter)
    }

    /// Deletes every dead letter of `service` (or of all services) that is there now (one
    /// arriving meanwhile stays); returns how many.
    pub async fn purge_all(&self, service: Option<&str>) -> Result<u64, DeadLetterError> {
        let filter = self.filter(service)?;
        let stream = self.stream().await?;
        let bound = stream.get_info().await.map_err(nats)?.state.last_sequence;
        // `sequence`: below it, exclusive (JetStream 2.9 purges by filter and sequence).
        let purged = stream
            .purge()
            .filter(filter)
            .sequence(bound.saturating_add(1))
            .await
            .map_err(nats)?;
        Ok(purged.purged)
    }
}

/// The subjects durable consumer `name` takes, or `None` if it does not exist.
async fn consumer_filters(
    stream: &Stream,
    name: &str,
) -> Result<Option<Vec<String>>, DeadLetterError> {
    match stream.consumer_info(name).await {
        Ok(info) => {
            let mut taken = info.config.filter_subjects.clone();
            if !info.config.filter_subject.is_empty() {
                taken.push(info.config.filter_subject.clone());
            }
            if taken.is_empty() {
                // No filter: every subject of the stream.
                taken.push(">".into());
            }
            Ok(Some(taken))
        }
        Err(e) if e.kind() == ConsumerInfoErrorKind::NotFound => Ok(None),
        Err(e) => Err(nats(format!("consumer {name}: {e}"))),
    }
}

/// Whether NATS delivers `subject` to a consumer filtered on `filter` (`*` is one token, `>`
/// the rest).
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut wanted = filter.split('.');
    let mut tokens = subject.split('.');
    loop {
        match (wanted.next(), tokens.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(t)) if w == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_filters_as_nats_does() {
        assert!(subject_matches("kc.fund.*", "kc.fund.reserved"));
        assert!(subject_matches("kc.contract.signed", "kc.contract.signed"));
        assert!(subject_matches("kc.>", "kc.fund.reserved"));
        assert!(!subject_matches("kc.fund.*", "kc.fund"));
        assert!(!subject_matches("kc.fund.*", "kc.fund.reserved.x"));
        assert!(!subject_matches("kc.fund.*", "kc.subsidy.approved"));
        assert!(!subject_matches("kc.>", "kc"));
        assert!(!subject_matches(
            "kc.contract.signed",
            "kc.contract.signed2"
        ));
    }
}
