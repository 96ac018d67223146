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

use crate::domain::{Refusal, TransferKind};
use crate::ledger::{self, Resolved};
use kechuang_platform::consumer::{EventHandler, HandlerError};
use kechuang_proto::events::{Envelope, envelope::Payload};
use sqlx::PgConnection;

/// Handles `subsidy.*`; the subsidy events the ledger has no part in are acknowledged.
pub struct SubsidyEvents;

impl EventHandler for SubsidyEvents {
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        match &event.payload {
            Some(Payload::SubsidyApproved(a)) => {
                require_application(&a.application_id)?;
                let outcome =
                    ledger::reserve(tx, &a.fund_id, &a.application_id, a.amount_fen, Some(event))
                        .await?;
                tracing::info!(application_id = %a.application_id, ?outcome, "reservation");
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
