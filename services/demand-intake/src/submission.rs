//! Writing submitted demands, batched. Every transaction that appends to the outbox also
//! NOTIFYs the relay, and Postgres serialises the commits of notifying transactions: one
//! submission per transaction would cap intake at one commit flush at a time, whatever the
//! concurrency. So concurrent submissions are queued and a few workers each write what has
//! accumulated in one transaction (group commit). Each request still gets its own answer:
//! an invalid one is refused alone; if the batch transaction fails, every submission in it is
//! written again on its own.

use crate::domain::validate;
use crate::store::{self, ChangeRow};
use crate::{SERVICE, wire};
use chrono::{DateTime, Utc};
use kechuang_platform::error::Error;
use kechuang_platform::idempotency::{self, Claim};
use kechuang_platform::{NewEvent, outbox};
use kechuang_proto::demand::{Demand, SubmitDemandRequest};
use kechuang_proto::events::DemandSubmitted;
use kechuang_proto::events::envelope::Payload;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many workers write batches side by side, and how much one batch holds at most.
pub const WORKERS: usize = 4;
pub const MAX_BATCH: usize = 64;
const QUEUE: usize = 4096;

/// One authorised SubmitDemand call.
#[derive(Debug, Clone)]
pub struct Submission {
    pub subject: String,
    pub request: SubmitDemandRequest,
    /// When it arrived: the deadline must lie after this.
    pub received: DateTime<Utc>,
}

impl Submission {
    /// Request ids are the enterprise's own: two enterprises may pick the same one.
    fn scope(&self) -> String {
        format!("submit_demand/{}", self.request.enterprise_id)
    }
}

/// Writes one submission in `conn`'s transaction, which the caller commits. Returns the
/// demand the request created, or the one an earlier identical request created.
pub async fn write(conn: &mut PgConnection, s: &Submission) -> Result<Demand, Error> {
    let req = &s.request;
    let scope = s.scope();
    let fingerprint = idempotency::fingerprint(req);
    if !req.request_id.is_empty() {
        // Looked up before validation: the retry of an accepted request gets its demand even
        // once the deadline it named has passed.
        let claim = idempotency::claim(conn, &scope, &req.request_id, &fingerprint).await?;
        if let Claim::Existing(id) = claim {
            let id = Uuid::parse_str(&id).map_err(Error::internal)?;
            let row = store::demand(conn, id)
                .await?
                .ok_or_else(|| Error::internal(format!("request id names lost demand {id}")))?;
            let history = store::history(conn, id).await?;
            return wire::demand(&row, &history);
        }
    }
    let new = validate::demand(req, s.received)?;
    let id = Uuid::now_v7();
    let correlation_id = Uuid::now_v7().to_string();
    let row = store::insert_demand(conn, id, &new, &s.subject, &correlation_id).await?;
    if !req.request_id.is_empty() {
        idempotency::record(conn, &scope, &req.request_id, &fingerprint, &id.to_string()).await?;
    }
    let payload = Payload::DemandSubmitted(DemandSubmitted {
        demand: Some(wire::details(&row)),
    });
    let event = NewEvent {
        correlation_id: Some(correlation_id),
        ..NewEvent::new(id.to_string(), row.version, payload)
    };
    outbox::append(conn, SERVICE, event).await?;
    // The history is the one line insert_demand wrote.
    let first = ChangeRow {
        from_status: None,
        to_status: row.status.clone(),
        actor: s.subject.clone(),
        cause_event_id: None,
        note: String::new(),
        changed_at: row.created_at,
    };
    wire::demand(&row, &[first])
}

struct Job {
    submission: Submission,
    reply: oneshot::Sender<Result<Demand, Error>>,
}

/// Hands submissions to the workers.
#[derive(Clone)]
pub struct Submitter(mpsc::Sender<Job>);

/// The workers' end of the queue.
#[derive(Clone)]
pub struct Queue(Arc<Mutex<mpsc::Receiver<Job>>>);

pub fn queue() -> (Submitter, Queue) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (Submitter(tx), Queue(Arc::new(Mutex::new(rx))))
}

impl Submitter {
    pub async fn submit(&self, submission: Submission) -> Result<Demand, Error> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Unavailable("the service is stopping".into());
        self.0
            .send(Job { submission, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// One worker: takes whatever has queued up (at most [`MAX_BATCH`]) and writes it.
pub async fn work(pool: PgPool, queue: Queue, cancel: CancellationToken) {
    loop {
        let batch = {
            let mut rx = queue.0.lock().await;
            let first = tokio::select! {
                _ = cancel.cancelled() => return,
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        write_batch(&pool, batch).await;
    }
}

async fn write_batch(pool: &PgPool, mut jobs: Vec<Job>) {
    // One lock order for every batch: two batches claiming the same request ids cannot
    // deadlock on their advisory locks.
    jobs.sort_by(|a, b| {
        (a.submission.scope(), &a.submission.request.request_id)
            .cmp(&(b.submission.scope(), &b.submission.request.request_id))
    });
    if jobs.len() > 1 {
        match write_together(pool, &jobs).await {
            Ok(answers) => {
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(answer);
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, size = jobs.len(), "batch failed; writing one by one")
            }
        }
    }
    for job in jobs {
        let answer = write_alone(pool, &job.submission).await;
        let _ = job.reply.send(answer);
    }
}

/// The whole batch in one transaction. Only answers that leave the transaction usable are
/// kept per request (success, or a refusal before anything was written); any other error
/// fails the batch, since the transaction may be aborted.
async fn write_together(pool: &PgPool, jobs: &[Job]) -> Result<Vec<Result<Demand, Error>>, Error> {
    let mut tx = pool.begin().await?;
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        match write(&mut tx, &job.submission).await {
            answer @ (Ok(_) | Err(Error::InvalidArgument(_))) => answers.push(answer),
            Err(e) => return Err(e),
        }
    }
    tx.commit().await?;
    Ok(answers)
}

async fn write_alone(pool: &PgPool, submission: &Submission) -> Result<Demand, Error> {
    let mut tx = pool.begin().await?;
    let demand = write(&mut tx, submission).await?;
    tx.commit().await?;
    Ok(demand)
}
