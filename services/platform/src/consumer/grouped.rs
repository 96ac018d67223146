//! Events applied in groups: the events handed in while the previous group commits share one
//! transaction (BEGIN, their `processed_events` records in one statement, each one's
//! [`EventHandler::handle`] in arrival order, COMMIT) instead of one transaction each. Alone, an
//! event that changes one row costs four or five statements, three of them the transaction's
//! own; under load a group shares those three.
//!
//! Each event is still recorded beside its effect and answered on its own: `Now`, or
//! `AlreadyProcessed` for a redelivery (or a second copy in the same group). If the group fails
//! as a whole (a handler refuses its event, or the database fails), nothing of it is written and
//! each event is applied alone ([`apply_alone`]), so that a bad event fails, is retried or
//! dead-lettered by itself.
//!
//! Only for handlers whose whole effect is `handle`: a handler with an `apply` of its own (its
//! own group commit) is not wrapped.

use super::{Applied, EventHandler, HandlerError, Processed, apply_alone, record_new};
use crate::groups::{self, Groups};
use kechuang_proto::events::Envelope;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The most events one transaction applies.
pub const MAX_GROUP: usize = 64;

/// A handler whose events are applied in groups by its [`Committer`]. Several consumers may
/// share one (their records name their consumer), and then share its groups.
pub struct Grouped<H> {
    handler: Arc<H>,
    queue: mpsc::UnboundedSender<Pending>,
}

/// Applies the groups of a [`Grouped`] handler: run it beside its consumers.
pub struct Committer<H> {
    handler: Arc<H>,
    groups: Groups<Pending>,
}

struct Pending {
    record: Processed,
    event: Envelope,
    answer: oneshot::Sender<Applied>,
}

impl<H: EventHandler> Grouped<H> {
    /// `handler` applied in groups, and the committer that applies them.
    pub fn new(handler: Arc<H>) -> (Arc<Self>, Committer<H>) {
        let (queue, groups) = groups::queue();
        let committer = Committer {
            handler: handler.clone(),
            groups,
        };
        (Arc::new(Self { handler, queue }), committer)
    }
}

impl<H: EventHandler> EventHandler for Grouped<H> {
    fn wants(&self, event_type: &str) -> bool {
        self.handler.wants(event_type)
    }

    async fn handle(
        &self,
        event: &Envelope,
        tx: &mut sqlx::PgConnection,
    ) -> Result<(), HandlerError> {
        self.handler.handle(event, tx).await
    }

    async fn apply(
        &self,
        pool: &PgPool,
        consumer: &str,
        event: &Envelope,
    ) -> Result<Applied, HandlerError> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            record: Processed::of(consumer, event)?,
            event: event.clone(),
            answer,
        };
        // No answer: the group failed, or the committer has stopped.
        if self.queue.send(pending).is_ok()
            && let Ok(applied) = answered.await
        {
            return Ok(applied);
        }
        apply_alone(self.handler.as_ref(), pool, consumer, event).await
    }
}

impl<H: EventHandler> Committer<H> {
    /// Applies the queued events a group at a time until `shutdown` (the group in hand is
    /// finished first; what is still queued then is applied alone by its consumer).
    pub async fn run(mut self, pool: PgPool, shutdown: CancellationToken) {
        while let Some(group) = self.groups.next(MAX_GROUP, &shutdown).await {
            match commit(&pool, self.handler.as_ref(), &group).await {
                Ok(outcomes) => {
                    for (pending, applied) in group.into_iter().zip(outcomes) {
                        let _ = pending.answer.send(applied);
                    }
                }
                // Dropping the group's answers sends each event back to be applied alone.
                Err(e) => {
                    tracing::warn!(size = group.len(), error = %e, "event group failed; applying its events one by one")
                }
            }
        }
    }
}

/// One transaction for `group`; each event's outcome, in order.
async fn commit<H: EventHandler>(
    pool: &PgPool,
    handler: &H,
    group: &[Pending],
) -> Result<Vec<Applied>, HandlerError> {
    let mut tx = pool.begin().await?;
    let mut seen = HashSet::new();
    let records: Vec<Processed> = group
        .iter()
        .filter(|p| seen.insert(&p.record))
        .map(|p| p.record.clone())
        .collect();
    let mut new = record_new(&mut tx, &records).await?;
    let mut outcomes = Vec::with_capacity(group.len());
    for pending in group {
        // The first copy of a new event applies; a redelivery, or a second copy, does not.
        if new.remove(&pending.record) {
            handler.handle(&pending.event, &mut tx).await?;
            outcomes.push(Applied::Now);
        } else {
            outcomes.push(Applied::AlreadyProcessed);
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}
