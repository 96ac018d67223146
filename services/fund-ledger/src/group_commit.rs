//! Group commit, TigerBeetle's lesson for a hot fund: every movement of a fund's money takes
//! the fund's row lock, so one transaction per reservation or post runs one commit after
//! another. Here each fund has a task that takes the requests that arrived while its previous
//! batch committed and applies them all in one transaction under one lock
//! ([`ledger::apply_batch`]), then answers each caller on its own. A batch is as large as the
//! queue: one request when it is quiet (no waiting for company), many when it is busy.
//!
//! If a batch fails as a whole (a database error spoils its transaction), nothing of it is
//! written, and its requests are applied again one transaction each, so that one bad request
//! fails alone. If the task dies mid-batch, its transaction is rolled back with its
//! connection and its callers are told to retry; the next request starts a fresh task.

use crate::ledger::{self, Answer, Request};
use kechuang_platform::error::Error;
use kechuang_platform::metrics::BATCH_SIZE;
use kechuang_platform::outbox;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// The most requests one transaction applies: bounds its lock time and statement sizes.
pub const MAX_BATCH: usize = 256;

/// A request and where its answer goes.
struct Pending {
    request: Request,
    answer: oneshot::Sender<Result<Answer, Error>>,
}

/// The funds' batching tasks, started on a fund's first request. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    pool: PgPool,
    funds: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Pending>>>>,
}

impl GroupCommit {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            funds: Arc::default(),
        }
    }

    /// Applies `request` on `fund_id` in the fund's next batch and waits for its answer.
    /// `Unavailable` if the batch was interrupted before it answered (its transaction then
    /// committed or rolled back as a whole; a retry finds out which).
    pub async fn submit(&self, fund_id: &str, request: Request) -> Result<Answer, Error> {
        let (answer, answered) = oneshot::channel();
        let mut pending = Pending { request, answer };
        // A queue whose task has died refuses the request: start another once.
        for _ in 0..2 {
            match self.queue(fund_id).send(pending) {
                Ok(()) => {
                    return answered.await.unwrap_or_else(|_| {
                        Err(Error::Unavailable(format!(
                            "the batch of fund {fund_id} was interrupted"
                        )))
                    });
                }
                Err(mpsc::error::SendError(back)) => {
                    self.forget(fund_id);
                    pending = back;
                }
            }
        }
        Err(Error::Unavailable(format!(
            "fund {fund_id} has no batch running"
        )))
    }

    fn queue(&self, fund_id: &str) -> mpsc::UnboundedSender<Pending> {
        let mut funds = self.funds.lock().expect("no panic while holding the map");
        funds
            .entry(fund_id.to_string())
            .or_insert_with(|| {
                let (queue, requests) = mpsc::unbounded_channel();
                tokio::spawn(run(self.pool.clone(), fund_id.to_string(), requests));
                queue
            })
            .clone()
    }

    fn forget(&self, fund_id: &str) {
        let mut funds = self.funds.lock().expect("no panic while holding the map");
        if funds.get(fund_id).is_some_and(|q| q.is_closed()) {
            funds.remove(fund_id);
        }
    }
}

/// The fund's task: one batch after another, each of what queued up meanwhile.
async fn run(pool: PgPool, fund_id: String, mut requests: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        metrics::histogram!(BATCH_SIZE, "service" => crate::ledger::PRODUCER)
            .record(batch.len() as f64);
        commit(&pool, &fund_id, batch).await;
    }
}

/// Applies `batch` in one transaction and answers each request; if the transaction fails,
/// applies each request alone.
async fn commit(pool: &PgPool, fund_id: &str, batch: Vec<Pending>) {
    let (requests, answers): (Vec<Request>, Vec<_>) =
        batch.into_iter().map(|p| (p.request, p.answer)).unzip();
    match in_one_transaction(pool, fund_id, &requests).await {
        Ok(outcomes) => {
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                // A caller that stopped waiting finds the outcome on its retry.
                let _ = answer.send(outcome);
            }
        }
        Err(e) if requests.len() == 1 => {
            let _ = answers.into_iter().next().map(|a| a.send(Err(e)));
        }
        Err(e) => {
            tracing::warn!(fund_id, size = requests.len(), error = %e, "batch failed; applying its requests one by one");
            for (request, answer) in requests.iter().zip(answers) {
                let outcome = in_one_transaction(pool, fund_id, std::slice::from_ref(request))
                    .await
                    .and_then(|mut a| a.pop().ok_or_else(|| Error::internal("no answer")))
                    .and_then(|a| a);
                let _ = answer.send(outcome);
            }
        }
    }
}

async fn in_one_transaction(
    pool: &PgPool,
    fund_id: &str,
    requests: &[Request],
) -> Result<Vec<Result<Answer, Error>>, Error> {
    let mut tx = pool.begin().await?;
    let answers = ledger::apply_batch(&mut tx, fund_id, requests).await?;
    outbox::commit(tx, crate::ledger::PRODUCER).await?;
    Ok(answers)
}
