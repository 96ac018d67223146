//! Intake's group commit. Submissions that arrive together are written together: the writer
//! (see [`WRITERS`]) takes whatever has queued up (at most [`MAX_BATCH`]) and writes it in one
//! statement and one commit ([`store::insert_submitted`]). Nothing waits for a batch to fill:
//! a lone submission is written at once, alone; under load, the submissions that queued while
//! a batch was being written share the next one. One commit per batch instead of one per
//! demand is what lets intake keep pace with the database's raw single-row commit rate.
//!
//! Each written demand's event goes straight to the outbox relay ([`Handover`]), which
//! publishes it without reading its row back.
//!
//! The writers are tasks of their own, so a caller that hangs up (a cancelled RPC) cannot
//! cut short a statement that carries other callers' demands. Each keeps its own connection
//! ([`HeldConnection`]): giving it back to the pool after every statement cost a second round
//! trip (sqlx pings what it takes back).

use crate::store::{self, NewSubmission, Written};
use kechuang_platform::db::HeldConnection;
use kechuang_platform::error::{Error, may_have_committed};
use kechuang_platform::outbox::Handover;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Writers side by side. One: while it waits for its commit, the next batch gathers. With 8
/// and 64 clients on two cores, more writers made smaller batches and lower throughput
/// (measured with 1, 2, 4 and 8; see docs/benchmarks.md).
pub const WRITERS: usize = 1;
/// The most submissions one statement carries.
pub const MAX_BATCH: usize = 64;
/// Submissions waiting for a writer; beyond this, callers wait to queue.
const QUEUE: usize = 4096;

struct Job {
    submission: NewSubmission,
    reply: oneshot::Sender<Result<Written, Error>>,
}

/// Hands submissions to the writers.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

/// The writers' end of the queue.
#[derive(Clone)]
pub struct Writers {
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
}

pub fn group_commit() -> (GroupCommit, Writers) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (
        GroupCommit { queue: tx },
        Writers {
            queue: Arc::new(Mutex::new(rx)),
        },
    )
}

impl GroupCommit {
    /// Writes `submission` with whatever else is queued; returns what became of it.
    pub async fn write(&self, submission: NewSubmission) -> Result<Written, Error> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Unavailable("the service is stopping".into());
        self.queue
            .send(Job { submission, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Submissions waiting for a writer.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

impl Writers {
    /// One writer: until `cancel`, takes what has queued up, writes it and hands the events
    /// it wrote to the relay.
    pub async fn run(self, pool: PgPool, handover: Handover, cancel: CancellationToken) {
        let mut conn = HeldConnection::new(pool);
        while let Some(batch) = self.next_batch(&cancel).await {
            write(&mut conn, &handover, batch).await;
        }
    }

    /// Waits for a first job, then takes whatever else is already queued behind it.
    async fn next_batch(&self, cancel: &CancellationToken) -> Option<Vec<Job>> {
        let mut queue = tokio::select! {
            _ = cancel.cancelled() => return None,
            queue = self.queue.lock() => queue,
        };
        let first = tokio::select! {
            _ = cancel.cancelled() => return None,
            job = queue.recv() => job?,
        };
        let mut batch = Vec::with_capacity(MAX_BATCH.min(queue.len() + 1));
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        Some(batch)
    }
}

/// Writes a batch and answers each of its callers. If the batch's statement fails, nothing
/// of it was written, and each submission is tried again alone, so that one bad submission
/// (or a deadlock between two batches) fails only itself. The events of what was written go
/// to the relay before anyone is answered.
async fn write(conn: &mut HeldConnection, handover: &Handover, jobs: Vec<Job>) {
    let (mut submissions, replies): (Vec<NewSubmission>, Vec<_>) = jobs
        .into_iter()
        .map(|job| (job.submission, job.reply))
        .unzip();
    if handover.relay_leads() {
        // The events go straight to this process's relay: no other relay needs waking.
        for submission in &mut submissions {
            submission.event.notify = false;
        }
    }
    match insert(conn, &submissions).await {
        Ok(answers) => {
            hand_over(handover, submissions, &answers);
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(Ok(answer));
            }
        }
        Err(Failure::Refused(e)) if submissions.len() > 1 => {
            tracing::debug!(error = %e, size = submissions.len(), "a batch of submissions failed; writing each alone");
            for (submission, reply) in submissions.into_iter().zip(replies) {
                let answer = match insert(conn, std::slice::from_ref(&submission)).await {
                    Ok(answers) => answers
                        .into_iter()
                        .next()
                        .ok_or_else(|| Error::internal("a submission written without an answer")),
                    Err(failure) => Err(failure.into_answer()),
                };
                if let Ok(written) = answer {
                    hand_over(handover, vec![submission], &[written]);
                }
                let _ = reply.send(answer);
            }
        }
        Err(Failure::Refused(e)) => {
            let _ = replies.into_iter().next().map(|reply| reply.send(Err(e)));
        }
        Err(failure) => {
            // Writing the batch again could write a demand twice if it did commit; each
            // caller learns what is known instead.
            tracing::warn!(error = %failure, size = submissions.len(), "a batch of submissions was not written or has an unknown outcome");
            for reply in replies {
                let _ = reply.send(Err(failure.unavailable()));
            }
        }
    }
}

/// Why a batch's statement failed, which decides what its callers can be told.
enum Failure {
    /// No connection to run it on: nothing was written.
    NotReached(sqlx::Error),
    /// The database refused the statement and rolled its transaction back: nothing was
    /// written.
    Refused(Error),
    /// The connection failed while the statement ran (or timed out): it may have committed.
    Unknown(Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotReached(e) => write!(f, "no connection: {e}"),
            Failure::Refused(e) => write!(f, "refused: {e}"),
            Failure::Unknown(e) => write!(f, "outcome unknown: {e}"),
        }
    }
}

impl Failure {
    fn of_statement(e: Error) -> Self {
        match &e {
            Error::Database(db) if !may_have_committed(db) => Failure::Refused(e),
            _ => Failure::Unknown(e),
        }
    }

    /// What a caller of a batch that is not written again is told.
    fn unavailable(&self) -> Error {
        Error::Unavailable(match self {
            Failure::NotReached(_) => {
                "the database cannot be reached; nothing was written: try again later".into()
            }
            _ => "the connection to the database failed while this demand was being written; \
                  it may or may not have been saved: submit it again with the same request_id \
                  to find out"
                .into(),
        })
    }

    fn into_answer(self) -> Error {
        match self {
            Failure::Refused(e) => e,
            other => other.unavailable(),
        }
    }
}

/// Writes `batch` on the writer's connection, which is given back to the pool after an error.
async fn insert(
    conn: &mut HeldConnection,
    batch: &[NewSubmission],
) -> Result<Vec<Written>, Failure> {
    let held = conn.get().await.map_err(Failure::NotReached)?;
    let result = store::insert_submitted(held, batch).await;
    if result.is_err() {
        conn.give_back();
    }
    result.map_err(Failure::of_statement)
}

/// Hands the events of the submissions that were written to the relay.
fn hand_over(handover: &Handover, submissions: Vec<NewSubmission>, answers: &[Written]) {
    let events = submissions
        .into_iter()
        .zip(answers)
        .filter(|(_, written)| **written == Written::Yes)
        .map(|(submission, _)| submission.event.into())
        .collect();
    handover.committed(events);
}
