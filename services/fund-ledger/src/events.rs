//! Events in: the subsidy service's decisions move the fund's money.
//!
//! - `kc.subsidy.approved` → reserve (or reject with the shortfall);
//! - `kc.subsidy.disbursed` → post the reservation;
//! - `kc.subsidy.disbursement_failed` → void it.
//!
//! Redeliveries of one event are dropped by the consumer plumbing (`processed_events`); a
//! second event asking for the same movement derives the same transfer id and moves nothing.
//! A post or void that arrives before its reservation is answered `Transient`: the consumer
//! redelivers it with a growing delay (`max_deliver` times, then to the dead-letter subject,
//! from where it can be replayed), by which time the reservation has normally been written.
//! We chose retrying over parking it in a table: the subsidy service only disburses after
//! `kc.fund.reserved`, so an early post is a reordering of redeliveries, and short-lived.
//!
//! The consumer hands these three to the fund's group commit ([`GroupCommit`]): the record
//! that the event was processed is written in the batch's transaction, beside its effect,
//! instead of in a transaction of its own. The consumer takes several messages at a time
//! ([`PARALLELISM`]) so that batches can form.

use crate::domain::batch::Ask;
use crate::domain::{Refusal, TransferKind};
use crate::group_commit::GroupCommit;
use crate::ledger::{self, Answer, Request, Reserved, Resolved};
use kechuang_platform::consumer::{Applied, EventHandler, HandlerError, Processed, apply_alone};
use kechuang_proto::events::{Envelope, envelope::Payload};
use lru::LruCache;
use sqlx::{PgConnection, PgPool};
use std::num::NonZeroUsize;
use std::sync::Mutex;

/// Messages the ledger's consumer handles at a time: what can wait in one fund's batch. The
/// events are independent of each other (a post that overtakes its reservation is retried).
pub const PARALLELISM: usize = 128;

/// The subsidy service's events that move money; rejections and the rest of its news move
/// none, and are acknowledged unrecorded.
pub const MONEY_MOVES: [&str; 3] = [
    kechuang_proto::event_types::SUBSIDY_APPROVED,
    kechuang_proto::event_types::SUBSIDY_DISBURSED,
    kechuang_proto::event_types::SUBSIDY_DISBURSEMENT_FAILED,
];

/// Reservations this process made, remembered by application: the fund a post or a void is
/// routed to without a read (a reservation's fund never changes: transfers are never edited).
const REMEMBERED_RESERVATIONS: usize = 65_536;

/// Handles `subsidy.*`; the subsidy events the ledger has no part in are acknowledged.
pub struct SubsidyEvents {
    funds: GroupCommit,
    /// Application → the fund this process reserved it on. Only a route: the fund's batch
    /// still checks the reservation it resolves against the ledger's own rows.
    reserved_on: Mutex<LruCache<String, String>>,
}

impl SubsidyEvents {
    pub fn new(funds: GroupCommit) -> Self {
        let capacity = NonZeroUsize::new(REMEMBERED_RESERVATIONS).expect("not zero");
        Self {
            funds,
            reserved_on: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, LruCache<String, String>> {
        self.reserved_on
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reservations, posts and voids go through the fund's group commit, the event recorded
    /// as processed in the batch's transaction.
    async fn batched(
        &self,
        pool: &PgPool,
        consumer: &str,
        event: &Envelope,
        ask: Ask,
        fund_id: Option<&str>,
    ) -> Result<Applied, HandlerError> {
        require_application(ask.application_id())?;
        let application_id = ask.application_id().to_string();
        let remembered = || self.remembered().get(&application_id).cloned();
        let fund_id = match fund_id.map(str::to_string).or_else(remembered) {
            Some(fund_id) => fund_id,
            None => {
                let mut conn = pool.acquire().await?;
                match ledger::fund_of(&mut conn, &ask).await? {
                    Some(fund_id) => fund_id,
                    None => {
                        return resolution(
                            &application_id,
                            Resolved::Refused(Refusal::NoReservation),
                        )
                        .map(|()| Applied::Now);
                    }
                }
            }
        };
        let request = Request {
            ask,
            cause: Some(event.clone()),
            processed: Some(Processed::of(consumer, event)?),
        };
        match self.funds.submit(&fund_id, request).await? {
            Answer::AlreadyProcessed => Ok(Applied::AlreadyProcessed),
            Answer::Reserved(outcome) => {
                if matches!(outcome, Reserved::Reserved { .. }) {
                    self.remembered().put(application_id.clone(), fund_id);
                }
                reservation(&application_id, &outcome);
                Ok(Applied::Now)
            }
            Answer::Resolved(outcome) => {
                resolution(&application_id, outcome).map(|()| Applied::Now)
            }
        }
    }
}

impl EventHandler for SubsidyEvents {
    fn wants(&self, event_type: &str) -> bool {
        MONEY_MOVES.contains(&event_type)
    }

    async fn apply(
        &self,
        pool: &PgPool,
        consumer: &str,
        event: &Envelope,
    ) -> Result<Applied, HandlerError> {
        let amount = |fen: i64| (fen != 0).then_some(fen);
        let (ask, fund_id) = match &event.payload {
            Some(Payload::SubsidyApproved(a)) => (
                Ask::Reserve {
                    application_id: a.application_id.clone(),
                    amount: a.amount_fen,
                },
                Some(a.fund_id.as_str()),
            ),
            Some(Payload::SubsidyDisbursed(d)) => (
                Ask::Post {
                    application_id: d.application_id.clone(),
                    amount: amount(d.amount_fen),
                },
                None,
            ),
            Some(Payload::SubsidyDisbursementFailed(f)) => (
                Ask::Void {
                    application_id: f.application_id.clone(),
                    amount: amount(f.amount_fen),
                },
                None,
            ),
            // Nothing for the ledger: recorded and acknowledged the usual way.
            _ => return apply_alone(self, pool, consumer, event).await,
        };
        self.batched(pool, consumer, event, ask, fund_id).await
    }

    /// One event in the caller's transaction, unbatched: what `apply` does, minus the group
    /// commit.
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        match &event.payload {
            Some(Payload::SubsidyApproved(a)) => {
                require_application(&a.application_id)?;
                let outcome =
                    ledger::reserve(tx, &a.fund_id, &a.application_id, a.amount_fen, Some(event))
                        .await?;
                reservation(&a.application_id, &outcome);
                Ok(())
            }
            Some(Payload::SubsidyDisbursed(d)) => {
                require_application(&d.application_id)?;
                let amount = (d.amount_fen != 0).then_some(d.amount_fen);
                let outcome = ledger::resolve(
                    tx,
                    TransferKind::Post,
                    &d.application_id,
                    amount,
                    Some(event),
                )
                .await?;
                resolution(&d.application_id, outcome)
            }
            Some(Payload::SubsidyDisbursementFailed(f)) => {
                require_application(&f.application_id)?;
                let amount = (f.amount_fen != 0).then_some(f.amount_fen);
                let outcome = ledger::resolve(
                    tx,
                    TransferKind::Void,
                    &f.application_id,
                    amount,
                    Some(event),
                )
                .await?;
                resolution(&f.application_id, outcome)
            }
            _ => Ok(()),
        }
    }
}

fn require_application(application_id: &str) -> Result<(), HandlerError> {
    if application_id.is_empty() || application_id.len() > 200 {
        return Err(HandlerError::Permanent(
            "application_id must be 1 to 200 characters".into(),
        ));
    }
    Ok(())
}

fn reservation(application_id: &str, outcome: &Reserved) {
    tracing::info!(application_id, ?outcome, "reservation");
}

fn resolution(application_id: &str, outcome: Resolved) -> Result<(), HandlerError> {
    match outcome {
        Resolved::Written { transfer_id } => {
            tracing::info!(application_id, %transfer_id, "reservation resolved");
            Ok(())
        }
        Resolved::AlreadyDone => Ok(()),
        Resolved::Refused(Refusal::NoReservation) => Err(HandlerError::Transient(format!(
            "no reservation for application {application_id} yet"
        ))),
        Resolved::Refused(refusal) => Err(HandlerError::Permanent(format!(
            "application {application_id}: {refusal}"
        ))),
    }
}
