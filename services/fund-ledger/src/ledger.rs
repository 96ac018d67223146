//! The ledger's operations, each one transaction's worth of work: lock the fund, ask
//! `domain` what to write, write it with `store`, and append the events it causes to the
//! outbox in the same transaction. Used by the RPCs (`api`), the event handlers (`events`),
//! the seed, the tests and the benchmark.

use crate::domain::batch::{Ask, Running};
use crate::domain::{self, Decision, Fen, Refusal, TransferKind};
use crate::store::{self, Fund};
use kechuang_platform::consumer::{self, Processed};
use kechuang_platform::error::{Error, ResultExt};
use kechuang_platform::events::NewEvent;
use kechuang_platform::outbox;
use kechuang_proto::events::{
    Envelope, FundCreated, FundLowBalance, FundPosted, FundReservationRejected, FundReserved,
    FundToppedUp, FundVoided, envelope::Payload,
};
use sqlx::PgConnection;
use uuid::Uuid;

pub const PRODUCER: &str = "fund-ledger";

/// Appends one event about `fund`, stepping its version. The caller saves the fund state.
async fn emit(
    conn: &mut PgConnection,
    fund: &mut Fund,
    payload: Payload,
    cause: Option<&Envelope>,
) -> Result<(), Error> {
    fund.version += 1;
    let mut event = NewEvent::new(fund.id.clone(), fund.version, payload);
    if let Some(cause) = cause {
        event = event.caused_by(cause);
    }
    outbox::append(conn, PRODUCER, event).await?;
    Ok(())
}

/// Writes `transfer`, then fires the low-balance alarm if available just crossed below the
/// threshold, and saves the fund's version and alarm state.
async fn write(
    conn: &mut PgConnection,
    fund: &mut Fund,
    transfer: &domain::Transfer,
    event: Payload,
    cause: Option<&Envelope>,
) -> Result<(), Error> {
    let after = fund
        .balances
        .after(transfer)
        .ok_or_else(|| Error::internal("a decided transfer does not fit the balances"))?;
    store::write_transfer(conn, &fund.id, transfer).await?;
    fund.balances = after;
    emit(conn, fund, event, cause).await?;
    let (alerted, fire) = domain::low_balance_alarm(
        fund.low_balance_fen,
        fund.low_balance_alerted,
        after.available,
    );
    fund.low_balance_alerted = alerted;
    if fire {
        let alarm = Payload::FundLowBalance(FundLowBalance {
            fund_id: fund.id.clone(),
            available_fen: after.available,
            low_balance_fen: fund.low_balance_fen,
        });
        emit(conn, fund, alarm, cause).await?;
    }
    store::save_fund_state(conn, &fund.id, fund.version, fund.low_balance_alerted).await?;
    Ok(())
}

/// Creates a fund (with its accounts) and emits `kc.fund.created`; `None` if the id exists.
pub async fn create_fund(
    conn: &mut PgConnection,
    id: &str,
    name: &str,
    low_balance_fen: Fen,
) -> Result<Option<Fund>, Error> {
    let alerted = domain::initially_alerted(low_balance_fen);
    if !store::insert_fund(conn, id, name, low_balance_fen, alerted).await? {
        return Ok(None);
    }
    let mut fund = store::lock_fund(conn, id)
        .await?
        .ok_or_else(|| Error::internal("a fund just created is missing"))?;
    let created = Payload::FundCreated(FundCreated {
        fund_id: id.to_string(),
        name: name.to_string(),
        low_balance_fen,
    });
    emit(conn, &mut fund, created, None).await?;
    store::save_fund_state(conn, id, fund.version, fund.low_balance_alerted).await?;
    Ok(Some(fund))
}

/// Seeds the default fund (empty) unless it exists. Safe to run at every start, by every
/// replica: only the one that inserts it emits `kc.fund.created`.
pub async fn seed_default_fund(conn: &mut PgConnection) -> Result<(), Error> {
    create_fund(
        conn,
        domain::DEFAULT_FUND_ID,
        domain::DEFAULT_FUND_NAME,
        domain::DEFAULT_LOW_BALANCE_FEN,
    )
    .await?;
    Ok(())
}

/// Tops a fund up under a unique reference and emits `kc.fund.topped_up` with the new
/// available balance. The same reference again returns the fund and moves nothing.
pub async fn top_up(
    conn: &mut PgConnection,
    fund_id: &str,
    amount: Fen,
    reference: &str,
) -> Result<Fund, Error> {
    let mut fund = store::lock_fund(conn, fund_id)
        .await?
        .ok_or_else(|| Error::not_found(format!("fund {fund_id} not found")))?;
    let prior = store::prior_top_up(conn, reference).await?;
    let transfer = match domain::top_up(&fund.balances, fund_id, prior.as_ref(), amount, reference)
    {
        Ok(Decision::Write(t)) => t,
        Ok(Decision::AlreadyDone) => return Ok(fund),
        Err(Refusal::ReferenceReused) => {
            return Err(Error::invalid(
                "reference",
                "was already used for a top-up of another fund or amount",
            ));
        }
        Err(refusal) => return Err(Error::invalid("amount_fen", refusal.to_string())),
    };
    let available = fund.balances.available + transfer.amount;
    let event = Payload::FundToppedUp(FundToppedUp {
        fund_id: fund_id.to_string(),
        amount_fen: amount,
        reference: reference.to_string(),
        available_fen: available,
    });
    // Another fund's concurrent top-up under the same reference loses on the primary key.
    write(conn, &mut fund, &transfer, event, None)
        .await
        .on_constraint("transfers_pkey", || {
            Error::invalid("reference", "was already used for a top-up of another fund")
        })?;
    Ok(fund)
}

/// What a reservation request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Reserved now; `kc.fund.reserved` emitted.
    Reserved { transfer_id: Uuid, available: Fen },
    /// The application already holds this reservation: nothing moved, nothing emitted.
    AlreadyReserved,
    /// Not reserved; `kc.fund.reservation_rejected` emitted.
    Rejected { shortfall: Fen, reason: String },
}

/// What a post or void came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Written now; `kc.fund.posted` / `kc.fund.voided` emitted.
    Written { transfer_id: Uuid },
    /// Already resolved the same way: nothing moved, nothing emitted.
    AlreadyDone,
    /// Refused by the ledger's rules (see `Refusal::NoReservation` for an early arrival).
    Refused(Refusal),
}

/// Reserves `amount` of `fund_id` for an application: a pending transfer available→reserved
/// with an id derived from the application id, all of it or nothing. A batch of one.
pub async fn reserve(
    conn: &mut PgConnection,
    fund_id: &str,
    application_id: &str,
    amount: Fen,
    cause: Option<&Envelope>,
) -> Result<Reserved, Error> {
    let ask = Ask::Reserve {
        application_id: application_id.to_string(),
        amount,
    };
    match apply_one(conn, fund_id, ask, cause).await? {
        Answer::Reserved(reserved) => Ok(reserved),
        other => Err(Error::internal(format!("a reservation answered {other:?}"))),
    }
}

/// Posts (reserved→disbursed) or voids (reserved→available) an application's reservation.
/// A batch of one, on the fund that holds the reservation.
pub async fn resolve(
    conn: &mut PgConnection,
    kind: TransferKind,
    application_id: &str,
    amount: Option<Fen>,
    cause: Option<&Envelope>,
) -> Result<Resolved, Error> {
    let application_id = application_id.to_string();
    let ask = match kind {
        TransferKind::Post => Ask::Post {
            application_id,
            amount,
        },
        TransferKind::Void => Ask::Void {
            application_id,
            amount,
        },
        other => return Err(Error::internal(format!("{other:?} resolves nothing"))),
    };
    let Some(fund_id) = fund_of(conn, &ask).await? else {
        return Ok(Resolved::Refused(Refusal::NoReservation));
    };
    match apply_one(conn, &fund_id, ask, cause).await? {
        Answer::Resolved(resolved) => Ok(resolved),
        other => Err(Error::internal(format!("a resolution answered {other:?}"))),
    }
}

/// The fund a request is about: the one named for a reservation, the one holding the
/// reservation for a post or void (`None` while the ledger has no reservation to resolve).
pub async fn fund_of(conn: &mut PgConnection, ask: &Ask) -> Result<Option<String>, Error> {
    match ask {
        Ask::Reserve { .. } => Err(Error::internal("a reservation names its fund")),
        Ask::Post { application_id, .. } | Ask::Void { application_id, .. } => {
            Ok(store::reservation(conn, application_id)
                .await?
                .map(|(fund_id, _)| fund_id))
        }
    }
}

async fn apply_one(
    conn: &mut PgConnection,
    fund_id: &str,
    ask: Ask,
    cause: Option<&Envelope>,
) -> Result<Answer, Error> {
    let request = Request {
        ask,
        cause: cause.cloned(),
        processed: None,
    };
    apply_batch(conn, fund_id, std::slice::from_ref(&request))
        .await?
        .pop()
        .ok_or_else(|| Error::internal("a batch of one answered nothing"))?
}

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
/// the transfers, one for the events, one for the processed records, one fund update.
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
            (Some(fund), Some(running)) => {
                if let Some((of, _)) = known.iter().find(|(of, r)| {
                    r.application_id == request.ask.application_id() && *of != fund.id
                }) && !matches!(request.ask, Ask::Reserve { .. })
                {
                    Err(Error::internal(format!(
                        "the reservation is held by fund {of}, not {}",
                        fund.id
                    )))
                } else {
                    decide(fund, running, request, &mut batch)
                }
            }
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
    store::write_transfers(conn, fund_id, &batch.transfers).await?;
    outbox::append_many(conn, PRODUCER, batch.events).await?;
    if !consumer::record_processed(conn, &batch.processed).await? {
        return Err(Error::Aborted(
            "an event of the batch was recorded as processed meanwhile".into(),
        ));
    }
    if let Some(fund) = &fund
        && batch.fund_changed
    {
        store::save_fund_state(conn, &fund.id, fund.version, fund.low_balance_alerted).await?;
    }
    Ok(answers)
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
        let mut event = NewEvent::new(fund.id.clone(), fund.version, payload);
        if let Some(cause) = cause {
            event = event.caused_by(cause);
        }
        self.events.push(event);
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
    let mut event = NewEvent::new(fund_id, 0, payload);
    if let Some(cause) = &request.cause {
        event = event.caused_by(cause);
    }
    batch.events.push(event);
    Ok(Answer::Reserved(Reserved::Rejected { shortfall, reason }))
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
