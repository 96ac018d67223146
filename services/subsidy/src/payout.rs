//! Paying subsidies out: the payout gateway (a bank) and the worker that drives owed payouts
//! to DISBURSED or DISBURSEMENT_FAILED.

use crate::settlements::{Settlement, Settlements};
use crate::store::payouts;
use futures::future::BoxFuture;
use kechuang_platform::Error;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Payout attempts, by `result`: `paid`, `transient` (retried, or failed at the last
/// attempt) or `refused` (the bank said no for good).
pub const ATTEMPTS_METRIC: &str = "kc_payout_attempts_total";
/// Disbursements declared failed (DISBURSEMENT_FAILED; the ledger then voids the reservation).
pub const FAILURES_METRIC: &str = "kc_payout_failures_total";

/// The HELP lines of the payout metrics (after the process's recorder is installed).
pub fn describe_metrics() {
    metrics::describe_counter!(ATTEMPTS_METRIC, "Payout attempts at the bank, by result");
    metrics::describe_counter!(
        FAILURES_METRIC,
        "Disbursements that failed for good (refused, or out of attempts)"
    );
}

/// One transfer to the payee's account.
#[derive(Debug, Clone)]
pub struct PayoutOrder {
    /// The bank's idempotency key: the same id is never paid twice.
    pub disbursement_id: String,
    /// The payee (the column keeps its first name): the enterprise for a subsidy, the
    /// broker's subject for a reward.
    pub enterprise_id: String,
    pub amount_fen: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    /// Try again later (timeout, bank busy).
    #[error("transient: {0}")]
    Transient(String),
    /// The bank refused the transfer for good (closed account, ...).
    #[error("refused: {0}")]
    Refused(String),
}

/// A bank. Implementations must be idempotent on `disbursement_id`.
pub trait PayoutGateway: Send + Sync + 'static {
    /// Pays the order; returns the bank's reference.
    fn pay(&self, order: &PayoutOrder) -> BoxFuture<'_, Result<String, PayoutError>>;
}

/// A simulated bank: configurable latency and share of transient failures, idempotent on the
/// disbursement id (within its process: a real bank keeps that memory for ever).
pub struct SimulatedBank {
    latency: Duration,
    failure_rate: f64,
    state: Mutex<BankState>,
}

#[derive(Default)]
struct BankState {
    paid: HashMap<String, String>,
    attempts: HashMap<String, u32>,
}

impl SimulatedBank {
    pub fn new(latency: Duration, failure_rate: f64) -> Self {
        Self {
            latency,
            failure_rate: failure_rate.clamp(0.0, 1.0),
            state: Mutex::new(BankState::default()),
        }
    }

    /// Deterministic "random" failure: the same id and attempt always fail or succeed alike.
    fn fails(&self, disbursement_id: &str, attempt: u32) -> bool {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{disbursement_id}#{attempt}"));
        let draw =
            u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        draw < self.failure_rate
    }
}

impl PayoutGateway for SimulatedBank {
    fn pay(&self, order: &PayoutOrder) -> BoxFuture<'_, Result<String, PayoutError>> {
        let order = order.clone();
        Box::pin(async move {
            tokio::time::sleep(self.latency).await;
            let mut state = self.state.lock().expect("bank state");
            if let Some(reference) = state.paid.get(&order.disbursement_id) {
                return Ok(reference.clone());
            }
            let attempt = state
                .attempts
                .entry(order.disbursement_id.clone())
                .or_insert(0);
            *attempt += 1;
            if self.fails(&order.disbursement_id, *attempt) {
                return Err(PayoutError::Transient("simulated bank timeout".into()));
            }
            let reference = format!("SIMBANK-{}", uuid::Uuid::now_v7().simple());
            state
                .paid
                .insert(order.disbursement_id.clone(), reference.clone());
            Ok(reference)
        })
    }
}

/// Payouts one worker drives at a time. Each is a bank call and a settlement: side by side, a
/// slow bank holds up only one of them, and the outcomes that come back together are recorded
/// in one transaction ([`crate::settlements`]).
pub const PAYOUTS_IN_FLIGHT: usize = 64;

/// How long an owed or claimed payout is its worker's alone.
pub const LEASE_SECS: i64 = 30;

/// How often the worker looks for payouts nobody holds: a lease that ran out (its worker
/// died), a retry that fell due.
const CLAIM_EVERY: Duration = Duration::from_millis(200);

/// Where the consumer that owes a payout hands it to its process's worker, after the commit.
#[derive(Clone)]
pub struct Handover(mpsc::UnboundedSender<payouts::Payout>);

impl Handover {
    /// A hand-over and the worker's end of it.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<payouts::Payout>) {
        let (send, receive) = mpsc::unbounded_channel();
        (Self(send), receive)
    }

    /// Gives the worker a payout owed (and leased to this process) in a committed transaction.
    /// If the worker has stopped, the lease runs out and a worker claims it.
    pub fn hand_over(&self, payout: payouts::Payout) {
        let _ = self.0.send(payout);
    }
}

/// Drives payouts until `shutdown`, up to [`PAYOUTS_IN_FLIGHT`] at a time: those handed over
/// by this process's consumer, and those nobody holds (claimed, so that replicas share them).
/// The payouts in hand are finished first.
pub async fn run_worker(
    pool: PgPool,
    gateway: Arc<dyn PayoutGateway>,
    settlements: Settlements,
    max_attempts: u32,
    mut handed: mpsc::UnboundedReceiver<payouts::Payout>,
    shutdown: CancellationToken,
) {
    // Tasks, not futures polled by this loop: a payout holds a connection through its
    // settlement, and one left unpolled while the loop waits for something else would hold it.
    let mut in_hand = JoinSet::new();
    let pay = |in_hand: &mut JoinSet<()>, p: payouts::Payout| {
        let (pool, gateway, settlements) = (pool.clone(), gateway.clone(), settlements.clone());
        in_hand.spawn(async move {
            pay_one(&pool, &settlements, gateway.as_ref(), &p, max_attempts).await
        });
    };
    let mut claims = tokio::time::interval(CLAIM_EVERY);
    claims.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let room = PAYOUTS_IN_FLIGHT.saturating_sub(in_hand.len());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = in_hand.join_next(), if !in_hand.is_empty() => {}
            Some(p) = handed.recv(), if room > 0 => pay(&mut in_hand, p),
            _ = claims.tick(), if room > 0 => match payouts::claim(&pool, LEASE_SECS, room as i64).await {
                Ok(claimed) => claimed.into_iter().for_each(|p| pay(&mut in_hand, p)),
                Err(e) => tracing::warn!(error = %e, "cannot claim payouts"),
            },
        }
    }
    while in_hand.join_next().await.is_some() {}
}

async fn pay_one(
    pool: &PgPool,
    settlements: &Settlements,
    gateway: &dyn PayoutGateway,
    p: &payouts::Payout,
    max_attempts: u32,
) {
    let order = PayoutOrder {
        disbursement_id: p.disbursement_id.clone(),
        enterprise_id: p.enterprise_id.clone(),
        amount_fen: p.amount_fen,
    };
    let outcome = gateway.pay(&order).await;
    let result = match &outcome {
        Ok(_) => "paid",
        Err(PayoutError::Transient(_)) => "transient",
        Err(PayoutError::Refused(_)) => "refused",
    };
    metrics::counter!(ATTEMPTS_METRIC, "service" => crate::PRODUCER, "result" => result)
        .increment(1);
    let result = match outcome {
        Ok(reference) => settle(pool, settlements, p, Ok(reference)).await,
        Err(PayoutError::Transient(e)) if (p.attempts as u32) < max_attempts => {
            let delay = 100i64 << p.attempts.clamp(0, 8);
            tracing::warn!(application_id = %p.application_id, attempt = p.attempts, error = %e, "payout failed; will retry");
            payouts::retry_later(pool, &p.application_id, delay, &e).await
        }
        Err(e) => settle(pool, settlements, p, Err(e.to_string())).await,
    };
    if let Err(e) = result {
        // The lease expires and another attempt settles it; the bank is idempotent.
        tracing::error!(application_id = %p.application_id, error = %e, "cannot record the payout outcome");
    }
}

async fn settle(
    pool: &PgPool,
    settlements: &Settlements,
    payout: &payouts::Payout,
    outcome: Result<String, String>,
) -> Result<(), Error> {
    let settlement = Settlement {
        payout: payout.clone(),
        outcome,
    };
    settlements.settle(pool, settlement).await
}
