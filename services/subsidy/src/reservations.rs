//! The ledger's reservations, applied in groups: each `kc.fund.reserved` moves its application
//! to FUNDS_RESERVED and owes its payout. One transaction a reservation spent more on BEGIN,
//! COMMIT and five single-row statements than on the work, and the ledger answers a busy
//! fund's reservations a batch at a time; so the reservations that arrive while the previous
//! group commits are applied together, in five statements whatever their number (BEGIN, lock,
//! records, the moves and their payouts, COMMIT), each still
//! recorded as processed beside its effect and answered on its own.
//!
//! If a group fails as a whole (a database error spoils its transaction), nothing of it is
//! written and each of its events is applied alone, as before, so that one bad event fails by
//! itself.

use crate::domain::application::on_reservation;
use crate::store::{applications, payouts};
use kechuang_platform::consumer::{HandlerError, Processed, record_new};
use kechuang_platform::groups::Groups;
use kechuang_proto::events::FundReserved;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The most reservations one transaction applies.
pub const MAX_GROUP: usize = 128;

/// What became of one reservation event.
#[derive(Debug)]
pub enum Outcome {
    /// Processed before: nothing done.
    AlreadyProcessed,
    /// Committed; the payout it owes (leased to this process), if it owes one.
    Now(Option<payouts::Payout>),
    /// Its group failed: apply it alone.
    Alone,
}

pub struct Pending {
    record: Processed,
    reserved: FundReserved,
    answer: oneshot::Sender<Result<Outcome, HandlerError>>,
}

/// Where the consumer hands reservations to the group commit. Cheap to clone.
#[derive(Clone)]
pub struct Reservations(mpsc::UnboundedSender<Pending>);

/// The reservations handed in, not yet applied.
pub type Queue = Groups<Pending>;

impl Reservations {
    /// Where reservations are handed in, and the queue [`run`] applies them from.
    pub fn new() -> (Self, Queue) {
        let (send, groups) = kechuang_platform::groups::queue();
        (Self(send), groups)
    }

    /// Applies `reserved` (the event `record` names) in the next group; `Alone` if the group
    /// failed or the group commit has stopped.
    pub async fn apply(
        &self,
        record: Processed,
        reserved: FundReserved,
    ) -> Result<Outcome, HandlerError> {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            record,
            reserved,
            answer,
        };
        if self.0.send(pending).is_err() {
            return Ok(Outcome::Alone);
        }
        answered.await.unwrap_or(Ok(Outcome::Alone))
    }
}

/// The committer: applies the queued reservations a group at a time until `shutdown` (the
/// group in hand is finished first; what is still queued then is answered `Alone`).
pub async fn run(pool: PgPool, mut queue: Queue, shutdown: CancellationToken) {
    while let Some(group) = queue.next(MAX_GROUP, &shutdown).await {
        metrics::histogram!(kechuang_platform::metrics::BATCH_SIZE, "service" => crate::PRODUCER)
            .record(group.len() as f64);
        match commit(&pool, &group).await {
            Ok(outcomes) => {
                for (pending, outcome) in group.into_iter().zip(outcomes) {
                    let _ = pending.answer.send(outcome);
                }
            }
            Err(e) => {
                tracing::warn!(size = group.len(), error = %e, "reservation group failed; applying its events one by one");
                for pending in group {
                    let _ = pending.answer.send(Ok(Outcome::Alone));
                }
            }
        }
    }
}

/// One transaction for `group`; each one's outcome, in order.
async fn commit(
    pool: &PgPool,
    group: &[Pending],
) -> Result<Vec<Result<Outcome, HandlerError>>, kechuang_platform::Error> {
    let events: Vec<(&Processed, &FundReserved)> =
        group.iter().map(|p| (&p.record, &p.reserved)).collect();
    let mut tx = pool.begin().await?;
    let ids: Vec<&str> = events
        .iter()
        .map(|(_, r)| r.application_id.as_str())
        .collect();
    let mut apps: HashMap<String, applications::Reservable> =
        applications::lock_reservable(&mut tx, &ids)
            .await?
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
    // Decided in arrival order against the application as the events before left it: a
    // second reservation of one application moves nothing.
    let mut decided = Vec::with_capacity(events.len());
    let mut seen = HashSet::new();
    for &(record, reserved) in &events {
        if !seen.insert(record) {
            decided.push(Decision::Twice);
            continue;
        }
        let Some(app) = apps.get_mut(&reserved.application_id) else {
            decided.push(Decision::Stays); // another subsidy installation's application
            continue;
        };
        decided.push(
            match on_reservation(
                app.status(),
                app.fund_id.as_deref(),
                app.amount_fen,
                &reserved.fund_id,
                reserved.amount_fen,
            ) {
                Ok(None) => Decision::Stays,
                Ok(Some(next)) => {
                    app.status = next.as_str().to_string();
                    Decision::Moves(app.clone())
                }
                Err(why) => {
                    Decision::Refused(format!("application {}: {why}", reserved.application_id))
                }
            },
        );
    }
    // Recorded: the events that apply (a refused one is not processed: it goes to the
    // dead letters, as when applied alone).
    let applying: Vec<Processed> = events
        .iter()
        .zip(&decided)
        .filter(|(_, d)| matches!(d, Decision::Stays | Decision::Moves(_)))
        .map(|((record, _), _)| (*record).clone())
        .collect();
    let new = record_new(&mut tx, &applying).await?;
    let moved: Vec<&applications::Reservable> = events
        .iter()
        .zip(&decided)
        .filter_map(|((record, _), d)| match d {
            Decision::Moves(app) if new.contains(*record) => Some(app),
            _ => None,
        })
        .collect();
    let owed: Vec<(&str, &str, i64)> = moved
        .iter()
        .map(|a| (a.id.as_str(), a.payee.as_str(), a.amount_fen))
        .collect();
    let mut payouts: HashMap<String, payouts::Payout> =
        payouts::reserve_and_owe(&mut tx, &owed, crate::payout::LEASE_SECS)
            .await?
            .into_iter()
            .map(|p| (p.application_id.clone(), p))
            .collect();
    tx.commit().await?;
    Ok(events
        .iter()
        .zip(decided)
        .map(|((record, reserved), d)| match d {
            Decision::Refused(why) => Err(HandlerError::Permanent(why)),
            Decision::Twice => Ok(Outcome::AlreadyProcessed),
            _ if !new.contains(*record) => Ok(Outcome::AlreadyProcessed),
            _ => Ok(Outcome::Now(payouts.remove(&reserved.application_id))),
        })
        .collect())
}

/// What one event of a group does.
enum Decision {
    /// The same event came twice in the group: the first applies.
    Twice,
    /// Nothing moves (its application is past that point, or not ours); still recorded.
    Stays,
    /// Its application moves to FUNDS_RESERVED and owes its payout.
    Moves(applications::Reservable),
    /// It cannot apply: why.
    Refused(String),
}
