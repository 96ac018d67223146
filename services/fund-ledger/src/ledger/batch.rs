//! A batch of requests on one fund, applied in the caller's transaction under one lock of
//! the fund: decided in order by `domain::batch`, written with a statement per kind of row
//! (transfers, events, processed records) whatever the batch's size.

use super::{PRODUCER, Reserved, Resolved};
use crate::domain::batch::{Ask, Running};
use crate::domain::{self, Decision, Fen, Refusal};
use crate::store::{self, Fund};
use kechuang_platform::consumer::{self, Processed};
use kechuang_platform::error::Error;
use kechuang_platform::events::NewEvent;
use kechuang_platform::outbox;
use kechuang_proto::events::{
    Envelope, FundLowBalance, FundPosted, FundReservationRejected, FundReserved, FundVoided,
    envelope::Payload,
};
use sqlx::PgConnection;

/// One request of a batch: what it asks, the event that asked it (the cause of the events
/// it emits) and, from a consumer, the record that the event was processed, written with its
/// effect.
#[derive(Debug, Clone)]
pub struct Request {
    pub ask: Ask,
    pub cause: Option<Envelope>,
    pub processed: Option<Processed>,
}

/// What one request of a batch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Reserved(Reserved),
    Resolved(Resolved),
    /// Its event was processed before (earlier, or earlier in this batch): nothing done.
    AlreadyProcessed,
}

impl Answer {
    /// Whether the request's event counts as processed: everything but a refused post or
    /// void, which the consumer retries (an early post) or dead-letters.
    fn settles_its_event(&self) -> bool {
        !matches!(self, Answer::Resolved(Resolved::Refused(_)))
    }
}

/// Applies `requests` on `fund_id` in the caller's transaction, in order, under one lock of
/// the fund: each decided against the balance the ones before it left (`domain::batch`),
/// answered on its own. A request's error (`Err` inside the list) wrote nothing and recorded
/// nothing; the others stand. The outer error is the database's: the transaction is spoiled
/// and must be rolled back, every request with it.
///
/// Per batch, not per request: one lock, one read of the reservations, one statement for
/// the transfers and the fund's new version, one for the events, one for the processed
/// records.
pub async fn apply_batch(
    conn: &mut PgConnection,
    fund_id: &str,
    requests: &[Request],
) -> Result<Vec<Result<Answer, Error>>, Error> {
    let locked = store::lock_fund(conn, fund_id).await?;
    let records: Vec<Processed> = requests
        .iter()
        .filter_map(|r| r.processed.clone())
        .collect();
    // Asked after the lock: a batch on this fund that committed meanwhile is seen.
    let mut seen = consumer::already_processed(conn, &records).await?;
    let applications: Vec<&str> = requests.iter().map(|r| r.ask.application_id()).collect();
    let known = store::reservations(conn, &applications).await?;
    let mut batch = Written::default();
    let mut answers = Vec::with_capacity(requests.len());
    let mut fund = locked;
    // Every reservation of the batch's applications, whichever fund holds it: reserving an
    // application again, even on another fund, is a replay or a contradiction, never a
    // second reservation (its transfer id is the same).
    let mut running = fund
        .as_ref()
        .map(|f| Running::new(f.balances, known.iter().map(|(_, r)| r.clone())));
    for request in requests {
        if let Some(record) = &request.processed
            && !seen.insert(record.clone())
        {
            answers.push(Ok(Answer::AlreadyProcessed));
            continue;
        }
        let answer = match (fund.as_mut(), running.as_mut()) {
            (Some(fund), Some(running)) => match held_elsewhere(&known, fund, &request.ask) {
                // Posts and voids are routed to the fund of their reservation; one that
                // reached another fund's batch must not move this fund's money.
                Some(other) => Err(Error::internal(format!(
                    "the reservation is held by fund {other}, not {}",
                    fund.id
                ))),
                None => decide(fund, running, request, &mut batch),
            },
            _ => no_such_fund(fund_id, request, &mut batch),
        };
        match &answer {
            Ok(a) if a.settles_its_event() => {
                if let Some(record) = &request.processed {
                    batch.processed.push(record.clone());
                }
            }
            // Not processed: a redelivery of it in this batch must be decided again.
            _ => {
                if let Some(record) = &request.processed {
                    seen.remove(record);
                }
            }
        }
        answers.push(answer);
    }
    let state = fund
        .as_ref()
        .filter(|_| batch.fund_changed)
        .map(|f| store::FundState {
            version: f.version,
            low_balance_alerted: f.low_balance_alerted,
        });
    store::write_transfers(conn, fund_id, &batch.transfers, state).await?;
    outbox::append_many(conn, PRODUCER, batch.events).await?;
    if !consumer::record_processed(conn, &batch.processed).await? {
        return Err(Error::Aborted(
            "an event of the batch was recorded as processed meanwhile".into(),
        ));
    }
    Ok(answers)
}

/// The other fund holding the reservation a post or void of `fund` is about, if any.
fn held_elsewhere<'a>(
    known: &'a [(String, domain::Reservation)],
    fund: &Fund,
    ask: &Ask,
) -> Option<&'a str> {
    if matches!(ask, Ask::Reserve { .. }) {
        return None;
    }
    known
        .iter()
        .find(|(of, r)| r.application_id == ask.application_id() && *of != fund.id)
        .map(|(of, _)| of.as_str())
}

/// What a batch writes once it has decided every request.
#[derive(Default)]
struct Written {
    transfers: Vec<domain::Transfer>,
    events: Vec<NewEvent>,
    processed: Vec<Processed>,
    fund_changed: bool,
}

impl Written {
    /// Queues one event about `fund`, stepping its version.
    fn emit(&mut self, fund: &mut Fund, payload: Payload, cause: Option<&Envelope>) {
        fund.version += 1;
        self.fund_changed = true;
        self.events
            .push(fund_event(&fund.id, fund.version, payload, cause));
    }

    /// Queues `transfer` and its event, then the low-balance alarm if available just crossed
    /// below the threshold.
    fn transfer(
        &mut self,
        fund: &mut Fund,
        transfer: domain::Transfer,
        available: Fen,
        event: Payload,
        cause: Option<&Envelope>,
    ) {
        self.transfers.push(transfer);
        self.emit(fund, event, cause);
        let (alerted, fire) =
            domain::low_balance_alarm(fund.low_balance_fen, fund.low_balance_alerted, available);
        fund.low_balance_alerted = alerted;
        if fire {
            let alarm = Payload::FundLowBalance(FundLowBalance {
                fund_id: fund.id.clone(),
                available_fen: available,
                low_balance_fen: fund.low_balance_fen,
            });
            self.emit(fund, alarm, cause);
        }
    }
}

/// Decides one request of a batch against the running fund and queues what it writes.
fn decide(
    fund: &mut Fund,
    running: &mut Running,
    request: &Request,
    batch: &mut Written,
) -> Result<Answer, Error> {
    let before = running.balances();
    let decision = running.decide(&request.ask);
    let after = running.balances();
    let cause = request.cause.as_ref();
    let application_id = request.ask.application_id().to_string();
    let fund_id = fund.id.clone();
    let transfer = match (&request.ask, decision) {
        (Ask::Reserve { .. }, Ok(Decision::AlreadyDone)) => {
            return Ok(Answer::Reserved(Reserved::AlreadyReserved));
        }
        (_, Ok(Decision::AlreadyDone)) => return Ok(Answer::Resolved(Resolved::AlreadyDone)),
        (_, Ok(Decision::Write(transfer))) => transfer,
        (Ask::Reserve { amount, .. }, Err(refusal)) => {
            let (shortfall, reason) = match refusal {
                Refusal::Shortfall { shortfall, .. } => {
                    (shortfall, "available is short of the amount".to_string())
                }
                refusal @ Refusal::BadAmount => (0, refusal.to_string()),
                // Another amount for an application already reserved: the events contradict
                // each other and no answer is right; the consumer dead-letters it for a
                // person to see.
                refusal => return Err(Error::FailedPrecondition(refusal.to_string())),
            };
            let rejected = rejection(
                &fund_id,
                &application_id,
                *amount,
                before.available,
                shortfall,
                &reason,
            );
            batch.emit(fund, rejected, cause);
            return Ok(Answer::Reserved(Reserved::Rejected { shortfall, reason }));
        }
        (_, Err(refusal)) => return Ok(Answer::Resolved(Resolved::Refused(refusal))),
    };
    let transfer_id = transfer.id;
    let (event, answer) = match &request.ask {
        Ask::Reserve { amount, .. } => (
            Payload::FundReserved(FundReserved {
                fund_id,
                application_id,
                transfer_id: transfer_id.to_string(),
                amount_fen: *amount,
                available_fen: after.available,
            }),
            Answer::Reserved(Reserved::Reserved {
                transfer_id,
                available: after.available,
            }),
        ),
        ask => {
            let pending_id = transfer
                .pending_id
                .map(|p| p.to_string())
                .unwrap_or_default();
            let amount_fen = transfer.amount;
            let transfer_id_text = transfer_id.to_string();
            let event = if matches!(ask, Ask::Post { .. }) {
                Payload::FundPosted(FundPosted {
                    fund_id,
                    application_id,
                    transfer_id: transfer_id_text,
                    pending_id,
                    amount_fen,
                })
            } else {
                Payload::FundVoided(FundVoided {
                    fund_id,
                    application_id,
                    transfer_id: transfer_id_text,
                    pending_id,
                    amount_fen,
                })
            };
            (event, Answer::Resolved(Resolved::Written { transfer_id }))
        }
    };
    batch.transfer(fund, transfer, after.available, event, cause);
    Ok(answer)
}

/// A request on a fund that does not exist: a reservation is rejected (with no version to
/// step), a post or void cannot be about it.
fn no_such_fund(fund_id: &str, request: &Request, batch: &mut Written) -> Result<Answer, Error> {
    let Ask::Reserve {
        application_id,
        amount,
    } = &request.ask
    else {
        return Err(Error::internal(format!(
            "fund {fund_id} of a reservation is missing"
        )));
    };
    let reason = format!("fund {fund_id:?} does not exist");
    let shortfall = (*amount).max(0);
    let payload = rejection(fund_id, application_id, *amount, 0, shortfall, &reason);
    batch
        .events
        .push(fund_event(fund_id, 0, payload, request.cause.as_ref()));
    Ok(Answer::Reserved(Reserved::Rejected { shortfall, reason }))
}

/// An event of the fund at `version`. One about an application's money (its reservation, or
/// the post or void of it) is ordered with that application's events only: the fund's
/// transfers are independent of each other, and its relay publishes different applications'
/// side by side instead of one ack at a time ([`NewEvent::ordered_by`]).
fn fund_event(fund_id: &str, version: i64, payload: Payload, cause: Option<&Envelope>) -> NewEvent {
    let application = match &payload {
        Payload::FundReserved(e) => Some(e.application_id.clone()),
        Payload::FundReservationRejected(e) => Some(e.application_id.clone()),
        Payload::FundPosted(e) => Some(e.application_id.clone()),
        Payload::FundVoided(e) => Some(e.application_id.clone()),
        _ => None,
    };
    let mut event = NewEvent::new(fund_id, version, payload);
    if let Some(application) = application {
        event = event.ordered_by(format!("application/{application}"));
    }
    if let Some(cause) = cause {
        event = event.caused_by(cause);
    }
    event
}

fn rejection(
    fund_id: &str,
    application_id: &str,
    amount: Fen,
    available: Fen,
    shortfall: Fen,
    reason: &str,
) -> Payload {
    Payload::FundReservationRejected(FundReservationRejected {
        fund_id: fund_id.to_string(),
        application_id: application_id.to_string(),
        amount_fen: amount,
        available_fen: available,
        shortfall_fen: shortfall,
        reason: reason.to_string(),
    })
}
