//! Recording what the bank said, in groups: each settled payout moves its application to
//! DISBURSED (or DISBURSEMENT_FAILED), queues its audit entry and emits the event the ledger
//! posts (or voids) on. The outcomes that arrive while the previous group commits are
//! recorded together, in seven statements whatever their number (BEGIN, lock with their
//! demands, settle the payouts, move the applications, queue the audit entries, append the
//! events, COMMIT), instead of a transaction of that many each.
//!
//! If a group fails as a whole, nothing of it is written and each outcome is recorded alone
//! ([`settle_alone`]); if that fails too, the payout's lease runs out and another attempt
//! settles it (the bank is idempotent on the disbursement id).

use crate::domain::application::Status;
use crate::store::{applications, audit, payouts};
use kechuang_platform::groups::Groups;
use kechuang_platform::{Error, NewEvent, outbox};
use kechuang_proto::events::{SubsidyDisbursed, SubsidyDisbursementFailed, envelope::Payload};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The most outcomes one transaction records.
pub const MAX_GROUP: usize = 128;

/// A payout and what the bank said: its reference, or why it failed for good.
pub struct Settlement {
    pub payout: payouts::Payout,
    pub outcome: Result<String, String>,
}

pub struct Pending {
    settlement: Settlement,
    answer: oneshot::Sender<Result<(), Error>>,
}

/// Where payouts' outcomes are handed in. Cheap to clone.
#[derive(Clone)]
pub struct Settlements(mpsc::UnboundedSender<Pending>);

/// The outcomes handed in, not yet recorded.
pub type Queue = Groups<Pending>;

impl Settlements {
    pub fn new() -> (Self, Queue) {
        let (send, groups) = kechuang_platform::groups::queue();
        (Self(send), groups)
    }

    /// Records `settlement` in the next group (alone if the group fails, or if the group
    /// commit has stopped).
    pub async fn settle(&self, pool: &PgPool, settlement: Settlement) -> Result<(), Error> {
        let (answer, answered) = oneshot::channel();
        let Err(mpsc::error::SendError(pending)) = self.0.send(Pending { settlement, answer })
        else {
            return answered.await.unwrap_or_else(|_| {
                Err(Error::Unavailable(
                    "the settlement group was interrupted".into(),
                ))
            });
        };
        settle_alone(pool, &pending.settlement).await
    }
}

/// The committer: records the queued outcomes a group at a time until `shutdown`; the group
/// in hand is finished first, then what is still queued, one by one.
pub async fn run(pool: PgPool, mut queue: Queue, shutdown: CancellationToken) {
    while let Some(group) = queue.next(MAX_GROUP, &shutdown).await {
        metrics::histogram!(kechuang_platform::metrics::BATCH_SIZE, "service" => crate::PRODUCER)
            .record(group.len() as f64);
        let settlements: Vec<&Settlement> = group.iter().map(|p| &p.settlement).collect();
        let recorded = in_one_transaction(&pool, &settlements).await;
        if let Err(e) = &recorded {
            tracing::warn!(size = group.len(), error = %e, "settlement group failed; recording its outcomes one by one");
        }
        for pending in group {
            let outcome = match &recorded {
                Ok(()) => Ok(()),
                Err(_) => settle_alone(&pool, &pending.settlement).await,
            };
            let _ = pending.answer.send(outcome);
        }
    }
    for pending in queue.rest().await {
        let _ = pending
            .answer
            .send(settle_alone(&pool, &pending.settlement).await);
    }
}

/// One outcome in a transaction of its own.
pub async fn settle_alone(pool: &PgPool, settlement: &Settlement) -> Result<(), Error> {
    in_one_transaction(pool, &[settlement]).await
}

async fn in_one_transaction(pool: &PgPool, settlements: &[&Settlement]) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    let failures = record(&mut tx, settlements).await?;
    outbox::commit(tx, crate::PRODUCER).await?;
    if failures > 0 {
        metrics::counter!(crate::payout::FAILURES_METRIC, "service" => crate::PRODUCER)
            .increment(failures);
    }
    Ok(())
}

/// Records `settlements` in `tx`: the number of disbursements that failed for good.
async fn record(tx: &mut PgConnection, settlements: &[&Settlement]) -> Result<u64, Error> {
    let ids: Vec<&str> = settlements
        .iter()
        .map(|s| s.payout.application_id.as_str())
        .collect();
    let apps: HashMap<String, applications::WithDemand> =
        applications::lock_all_with_demands(tx, &ids)
            .await?
            .into_iter()
            .map(|a| (a.application.id.clone(), a))
            .collect();
    let outcomes: Vec<(&str, &str, &str, &str)> = settlements
        .iter()
        .map(|s| match &s.outcome {
            Ok(reference) => (
                s.payout.application_id.as_str(),
                "PAID",
                reference.as_str(),
                "",
            ),
            Err(e) => (s.payout.application_id.as_str(), "FAILED", "", e.as_str()),
        })
        .collect();
    // A payout settled by another worker meanwhile, or twice in the group, is not again.
    let mut settled_now = payouts::settle_all(tx, &outcomes).await?;
    let mut paid = Vec::new();
    let mut entries = Vec::new();
    let mut events = Vec::new();
    let mut failures = 0;
    for s in settlements {
        let p = &s.payout;
        if !settled_now.remove(&p.application_id) {
            continue;
        }
        let Some(applications::WithDemand {
            application: app,
            demand_id,
        }) = apps.get(&p.application_id)
        else {
            return Err(Error::internal("payout for an unknown application"));
        };
        let Some(next) = app.status().on_payout(s.outcome.is_ok()) else {
            tracing::warn!(application_id = %app.id, status = %app.status, "payout settled for an application not awaiting it");
            continue;
        };
        let (action, reference, error) = match &s.outcome {
            Ok(reference) => {
                paid.push((app.id.as_str(), reference.as_str()));
                ("application.disbursed", reference.as_str(), "")
            }
            Err(e) => {
                applications::set_status(tx, &app.id, next, e).await?;
                failures += 1;
                ("application.disbursement_failed", "", e.as_str())
            }
        };
        entries.push(audit::NewEntry {
            actor: "subsidy-payout",
            role: "service",
            action,
            target_id: &app.id,
            details: serde_json::json!({ "amount_fen": app.amount_fen, "bank_reference": reference, "error": error, "attempts": p.attempts }),
        });
        events.push(NewEvent::new(
            &app.id,
            app.version + 1,
            disbursement(app, &s.outcome, demand_id.clone()),
        ));
    }
    applications::set_all_paid(tx, &paid, Status::Disbursed).await?;
    audit::append_all(tx, &entries).await?;
    outbox::append_many(tx, crate::PRODUCER, events).await?;
    Ok(failures)
}

/// `kc.subsidy.disbursed` or `kc.subsidy.disbursement_failed` for `app`.
fn disbursement(
    app: &applications::Application,
    outcome: &Result<String, String>,
    demand_id: String,
) -> Payload {
    let fund_id = app.fund_id.clone().unwrap_or_default();
    match outcome {
        Ok(reference) => Payload::SubsidyDisbursed(SubsidyDisbursed {
            application_id: app.id.clone(),
            fund_id,
            enterprise_id: app.enterprise_id.clone(),
            contract_id: app.contract_id.clone(),
            demand_id,
            amount_fen: app.amount_fen,
            payout_reference: reference.clone(),
            kind: app.kind().to_application_proto() as i32,
            payee: app.payee.clone(),
        }),
        Err(e) => Payload::SubsidyDisbursementFailed(SubsidyDisbursementFailed {
            application_id: app.id.clone(),
            fund_id,
            enterprise_id: app.enterprise_id.clone(),
            amount_fen: app.amount_fen,
            reason: e.clone(),
            kind: app.kind().to_application_proto() as i32,
            payee: app.payee.clone(),
        }),
    }
}
