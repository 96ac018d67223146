//! What the subsidy service does with other services' events.

use crate::domain::application::on_reservation;
use crate::domain::registration;
use crate::reservations::Outcome;
use crate::store::{applications, audit, contracts, payouts, registrations};
use kechuang_platform::consumer::{
    Applied, EventHandler, HandlerError, Processed, in_one_transaction,
};
use kechuang_platform::events::from_timestamp;
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::event_types;
use kechuang_proto::events::{Envelope, SubsidyApproved, envelope::Payload};
use sqlx::{PgConnection, PgPool};

/// `kc.contract.signed`: records the contract payments will be recorded against, and opens
/// its registration, which waits for a registrar until `registration_window_days` after the
/// signing.
pub struct Contracts {
    pub registration_window_days: u32,
}

impl EventHandler for Contracts {
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let Some(Payload::ContractSigned(c)) = &event.payload else {
            return Ok(());
        };
        let signed_at = c
            .signed_at
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| HandlerError::Permanent("contract.signed without signed_at".into()))?;
        if c.contract_id.is_empty() || c.enterprise_id.is_empty() || c.amount_fen <= 0 {
            return Err(HandlerError::Permanent(
                "contract.signed is missing its parties or amount".into(),
            ));
        }
        contracts::register(tx, c, signed_at).await?;
        let deadline = registration::deadline(signed_at, self.registration_window_days);
        registrations::open(tx, &c.contract_id, deadline).await?;
        Ok(())
    }
}

/// The ledger's answers handled at a time: enough for the reservations that arrive together
/// to form one group ([`crate::reservations`]). A reservation and a rejection of one
/// application are ordered by its row lock and its status; top-ups re-ask for the waitlist,
/// which the ledger answers once per application whatever the number of asks.
pub const FUND_ANSWERS_PARALLELISM: usize = 64;

/// The ledger's events [`FundAnswers`] acts on; posts, voids and the rest of its news are
/// not ours to act on.
pub const FUND_ANSWERS: [&str; 3] = [
    event_types::FUND_RESERVED,
    event_types::FUND_RESERVATION_REJECTED,
    event_types::FUND_TOPPED_UP,
];

/// `kc.fund.*`: the ledger's answers to our reservation requests, and top-ups that let the
/// waitlist go on. A reservation owes its payout, which goes to this process's payout worker
/// once the transaction has committed.
pub struct FundAnswers {
    pub payouts: crate::payout::Handover,
    /// Reservations go through the group commit; the rest, one transaction each.
    pub reservations: crate::reservations::Reservations,
}

impl EventHandler for FundAnswers {
    fn wants(&self, event_type: &str) -> bool {
        FUND_ANSWERS.contains(&event_type)
    }

    async fn apply(
        &self,
        pool: &PgPool,
        consumer: &str,
        event: &Envelope,
    ) -> Result<Applied, HandlerError> {
        if let Some(Payload::FundReserved(reserved)) = &event.payload {
            let record = Processed::of(consumer, event)?;
            match self.reservations.apply(record, reserved.clone()).await? {
                Outcome::AlreadyProcessed => return Ok(Applied::AlreadyProcessed),
                Outcome::Now(owed) => {
                    if let Some(payout) = owed {
                        self.payouts.hand_over(payout);
                    }
                    return Ok(Applied::Now);
                }
                Outcome::Alone => {}
            }
        }
        let owed = in_one_transaction(pool, consumer, event, async |tx| {
            self.answer(event, tx).await
        })
        .await?;
        match owed {
            None => Ok(Applied::AlreadyProcessed),
            Some(owed) => {
                if let Some(payout) = owed {
                    self.payouts.hand_over(payout);
                }
                Ok(Applied::Now)
            }
        }
    }

    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        self.answer(event, tx).await.map(|_| ())
    }
}

impl FundAnswers {
    /// Applies one of the ledger's answers in `tx`; the payout it owes, if any.
    async fn answer(
        &self,
        event: &Envelope,
        tx: &mut PgConnection,
    ) -> Result<Option<payouts::Payout>, HandlerError> {
        let mut owed = None;
        match &event.payload {
            Some(Payload::FundReserved(r)) => {
                let Some(app) = applications::lock(tx, &r.application_id).await? else {
                    return Ok(None); // another subsidy installation's application
                };
                // Only the reservation we asked for is paid out on.
                let next = on_reservation(
                    app.status(),
                    app.fund_id.as_deref(),
                    app.amount_fen,
                    &r.fund_id,
                    r.amount_fen,
                )
                .map_err(|why| HandlerError::Permanent(format!("application {}: {why}", app.id)))?;
                if let Some(next) = next {
                    applications::set_status(tx, &app.id, next, "").await?;
                    // The payee: the enterprise, or the broker for a reward.
                    owed = payouts::owe(
                        tx,
                        &app.id,
                        &app.payee,
                        app.amount_fen,
                        crate::payout::LEASE_SECS,
                    )
                    .await?;
                }
            }
            Some(Payload::FundReservationRejected(r)) => {
                let Some(app) = applications::lock(tx, &r.application_id).await? else {
                    return Ok(None);
                };
                if let Some(next) = app.status().on_reservation_rejected() {
                    let reason = format!(
                        "资金不足，差额 {}：{}",
                        crate::domain::money::yuan(r.shortfall_fen),
                        r.reason
                    );
                    applications::set_status(tx, &app.id, next, &reason).await?;
                    audit::append(
                        tx,
                        "fund-ledger",
                        "service",
                        "application.waitlisted",
                        &app.id,
                        serde_json::json!({ "shortfall_fen": r.shortfall_fen, "available_fen": r.available_fen }),
                    )
                    .await?;
                }
            }
            Some(Payload::FundToppedUp(t)) => {
                retry_waitlist(tx, event, &t.fund_id, t.available_fen).await?
            }
            _ => {}
        }
        Ok(owed)
    }
}

/// Asks the ledger again for the waitlisted applications of `fund_id`, in approval order, as
/// far as `available_fen` reaches. Strictly first come, first served: a later, smaller
/// application does not overtake an earlier one that does not fit yet.
async fn retry_waitlist(
    tx: &mut PgConnection,
    cause: &Envelope,
    fund_id: &str,
    available_fen: i64,
) -> Result<(), HandlerError> {
    let waiting = applications::waitlisted(tx, fund_id).await?;
    let mut budget = available_fen;
    for app in waiting {
        if app.amount_fen > budget {
            break;
        }
        budget -= app.amount_fen;
        let approvers = applications::approvals(tx, std::slice::from_ref(&app.id))
            .await?
            .into_iter()
            .map(|a| a.approver)
            .collect();
        let payload = subsidy_approved(&app, fund_id, approvers);
        outbox::append(
            tx,
            crate::PRODUCER,
            NewEvent::new(&app.id, app.version, payload).caused_by(cause),
        )
        .await?;
    }
    Ok(())
}

/// The event that asks the ledger to reserve an approved application's subsidy from
/// `fund_id` (at approval, and again when a waitlisted one's fund is topped up).
pub(crate) fn subsidy_approved(
    app: &applications::Application,
    fund_id: &str,
    approvers: Vec<String>,
) -> Payload {
    Payload::SubsidyApproved(SubsidyApproved {
        application_id: app.id.clone(),
        fund_id: fund_id.to_string(),
        enterprise_id: app.enterprise_id.clone(),
        contract_id: app.contract_id.clone(),
        amount_fen: app.amount_fen,
        approvers,
        kind: app.kind().to_application_proto() as i32,
        payee: app.payee.clone(),
    })
}
