//! ApproveApplication, committed in groups. Alone, an approval is eight statements (BEGIN, lock
//! the application, read its approvals, record the approval, queue the audit entry, move it to
//! APPROVED, append its event, COMMIT), the largest share of a subsidy's round trips to the
//! database between approval and payment. The approvals that arrive while the previous group
//! commits share one transaction of the same eight statements, whatever their number; each is
//! still decided on its own (the same rules, [`application::approve`]) and answered on its
//! own, with exactly what it would have been answered alone.
//!
//! Two approvals of one application never share a transaction (the second must see the
//! first): they go in successive rounds. If a group fails as a whole (a database error spoils
//! its transaction), nothing of it is written and each of its approvals is made alone, as
//! before, so that one bad approval fails by itself.

use crate::domain::application::{self, Approval, Review};
use crate::store::applications::{self as apps, Application, ApprovalRow};
use crate::store::audit::{self, NewEntry};
use crate::wire;
use kechuang_platform::groups::Groups;
use kechuang_platform::{Caller, Error, NewEvent, outbox};
use kechuang_proto::subsidy as pb;
use sqlx::PgPool;
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The most approvals one transaction makes.
pub const MAX_GROUP: usize = 64;

/// What became of one approval.
#[derive(Debug)]
pub enum Outcome {
    /// Decided and, if granted, committed: the caller's answer.
    Answered(Box<Result<pb::SubsidyApplication, Error>>),
    /// Its group failed, or the group commit has stopped: make it alone.
    Alone,
}

pub struct Pending {
    who: Caller,
    id: String,
    note: String,
    answer: oneshot::Sender<Outcome>,
}

/// Where ApproveApplication hands approvals to the group commit. Cheap to clone.
#[derive(Clone)]
pub struct Approvals(mpsc::UnboundedSender<Pending>);

/// The approvals handed in, not yet made.
pub type Queue = Groups<Pending>;

impl Approvals {
    /// Where approvals are handed in, and the queue [`run`] makes them from.
    pub fn new() -> (Self, Queue) {
        let (send, groups) = kechuang_platform::groups::queue();
        (Self(send), groups)
    }

    /// `who` approves application `id` with `note` (both already checked for shape) in the
    /// next group.
    pub async fn approve(&self, who: &Caller, id: &str, note: &str) -> Outcome {
        let (answer, answered) = oneshot::channel();
        let pending = Pending {
            who: who.clone(),
            id: id.to_string(),
            note: note.trim().to_string(),
            answer,
        };
        if self.0.send(pending).is_err() {
            return Outcome::Alone;
        }
        answered.await.unwrap_or(Outcome::Alone)
    }
}

/// The committer: makes the queued approvals a group at a time until `shutdown` (the group in
/// hand is finished first; what is still queued then is answered `Alone`, when the queue is
/// dropped).
pub async fn run(pool: PgPool, mut queue: Queue, shutdown: CancellationToken) {
    while let Some(group) = queue.next(MAX_GROUP, &shutdown).await {
        metrics::histogram!(kechuang_platform::metrics::BATCH_SIZE, "service" => crate::PRODUCER)
            .record(group.len() as f64);
        for round in rounds(group, |p| p.id.as_str()) {
            match commit(&pool, &round).await {
                Ok(answers) => {
                    for (pending, answer) in round.into_iter().zip(answers) {
                        let _ = pending.answer.send(Outcome::Answered(Box::new(answer)));
                    }
                }
                Err(e) => {
                    tracing::warn!(size = round.len(), error = %e, "approval group failed; making its approvals one by one");
                    for pending in round {
                        let _ = pending.answer.send(Outcome::Alone);
                    }
                }
            }
        }
    }
}

/// Splits `items` into rounds in which no key repeats, keeping their order: the n-th item of
/// a key goes in the n-th round.
fn rounds<T>(items: Vec<T>, key: impl Fn(&T) -> &str) -> Vec<Vec<T>> {
    let mut rounds: Vec<Vec<T>> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        let n = seen.entry(key(&item).to_string()).or_insert(0);
        if rounds.len() <= *n {
            rounds.push(Vec::new());
        }
        rounds[*n].push(item);
        *n += 1;
    }
    rounds
}

/// One transaction for `round` (no application twice); each approval's answer, in order.
async fn commit(
    pool: &PgPool,
    round: &[Pending],
) -> Result<Vec<Result<pb::SubsidyApplication, Error>>, Error> {
    let mut tx = pool.begin().await?;
    let ids: Vec<&str> = round.iter().map(|p| p.id.as_str()).collect();
    let held: HashMap<String, Application> = apps::lock_all(&mut tx, &ids)
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let held_ids: Vec<String> = held.keys().cloned().collect();
    let mut approvals = apps::approvals(&mut tx, &held_ids).await?;
    let mut answers: Vec<Option<Result<pb::SubsidyApplication, Error>>> =
        round.iter().map(|_| None).collect();
    // Each decided on its own, against what its application stands at.
    let mut granted: Vec<(usize, &Application, Approval)> = Vec::new();
    for (i, p) in round.iter().enumerate() {
        let Some(app) = held.get(&p.id) else {
            answers[i] = Some(Err(not_found(&p.id)));
            continue;
        };
        let approvers = approvers_of(&approvals, &app.id);
        match application::approve(&review(app, &approvers), &p.who) {
            Ok(outcome) => granted.push((i, app, outcome)),
            Err(refused) => answers[i] = Some(Err(refused)),
        }
    }
    if granted.is_empty() {
        tx.rollback().await?;
        return Ok(answers.into_iter().map(answered).collect());
    }
    let added: Vec<(&str, &str, &str)> = granted
        .iter()
        .map(|(i, app, _)| {
            let p = &round[*i];
            (app.id.as_str(), p.who.subject.as_str(), p.note.as_str())
        })
        .collect();
    approvals.extend(apps::add_approvals(&mut tx, &added).await?);
    // In the order a read gives (a transaction's clock is its start, which a concurrent
    // approver's commit may follow).
    approvals.sort_by(|a, b| (a.approved_at, &a.approver).cmp(&(b.approved_at, &b.approver)));
    let roles: Vec<String> = granted
        .iter()
        .map(|(i, _, _)| round[*i].who.roles.to_string())
        .collect();
    let entries: Vec<NewEntry<'_>> = granted
        .iter()
        .zip(&roles)
        .map(|((i, app, outcome), role)| NewEntry {
            actor: &round[*i].who.subject,
            role,
            action: "application.approved",
            target_id: &app.id,
            details: approved_details(
                app,
                &round[*i].note,
                approvers_of(&approvals, &app.id).len(),
                *outcome == Approval::Complete,
            ),
        })
        .collect();
    audit::append_all(&mut tx, &entries).await?;
    let complete: Vec<&str> = granted
        .iter()
        .filter(|(_, _, outcome)| *outcome == Approval::Complete)
        .map(|(_, app, _)| app.id.as_str())
        .collect();
    let moved: HashMap<String, Application> = apps::approved_all(&mut tx, &complete)
        .await?
        .into_iter()
        .map(|a| (a.id.clone(), a))
        .collect();
    let events: Vec<NewEvent> = complete
        .iter()
        .filter_map(|id| held.get(*id))
        .map(|app| approved_event(app, approvers_of(&approvals, &app.id)))
        .collect();
    outbox::append_many(&mut tx, crate::PRODUCER, events).await?;
    outbox::commit(tx, crate::PRODUCER).await?;
    for (i, app, _) in &granted {
        // The answer is built from what the statements returned, as alone.
        let now = moved.get(&app.id).unwrap_or(app);
        answers[*i] = Some(Ok(wire::application(now, &approvals)));
    }
    Ok(answers.into_iter().map(answered).collect())
}

/// Every approval of a round is answered; a gap would be a bug here, not the caller's.
fn answered(
    answer: Option<Result<pb::SubsidyApplication, Error>>,
) -> Result<pb::SubsidyApplication, Error> {
    answer.unwrap_or_else(|| Err(Error::internal("an approval of a group went unanswered")))
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("application {id} not found"))
}

fn approvers_of(approvals: &[ApprovalRow], id: &str) -> Vec<String> {
    approvals
        .iter()
        .filter(|a| a.application_id == id)
        .map(|a| a.approver.clone())
        .collect()
}

/// What the rules look at to decide an approval or a rejection of `app`.
pub(crate) fn review<'a>(app: &'a Application, approvers: &'a [String]) -> Review<'a> {
    Review {
        status: app.status(),
        kind: app.kind(),
        enterprise_id: &app.enterprise_id,
        payee: &app.payee,
        recorded_by: &app.recorded_by,
        approvers,
        required_approvals: app.required_approvals,
    }
}

/// The audit entry's details of an approval, the `approvals`-th of `app`.
pub(crate) fn approved_details(
    app: &Application,
    note: &str,
    approvals: usize,
    complete: bool,
) -> serde_json::Value {
    serde_json::json!({
        "kind": app.kind, "payee": app.payee,
        "amount_fen": app.amount_fen, "note": note, "approvals": approvals,
        "required_approvals": app.required_approvals, "complete": complete,
    })
}

/// `kc.subsidy.approved` for `app` (as it stood before the approval that completed it).
pub(crate) fn approved_event(app: &Application, approvers: Vec<String>) -> NewEvent {
    let fund_id = app.fund_id.clone().unwrap_or_default();
    let payload = crate::events::subsidy_approved(app, &fund_id, approvers);
    NewEvent::new(&app.id, app.version + 1, payload)
}

#[cfg(test)]
mod tests {
    use super::rounds;

    #[test]
    fn rounds_never_hold_a_key_twice_and_keep_the_order() {
        let items = vec!["a1", "b1", "a2", "c1", "a3", "b2"];
        let split = rounds(items, |s| &s[..1]);
        assert_eq!(
            split,
            vec![vec!["a1", "b1", "c1"], vec!["a2", "b2"], vec!["a3"]]
        );
    }

    #[test]
    fn distinct_keys_make_one_round() {
        let split = rounds(vec!["a", "b", "c"], |s| s);
        assert_eq!(split, vec![vec!["a", "b", "c"]]);
        assert!(rounds(Vec::<&str>::new(), |s| s).is_empty());
    }
}
