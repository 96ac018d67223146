//! The ledger's operations, each one transaction's worth of work: lock the fund, ask
//! `domain` what to write, write it with `store`, and append the events it causes to the
//! outbox in the same transaction. Used by the RPCs (`api`), the event handlers (`events`),
//! the seed, the tests and the benchmark.

use crate::domain::{self, Decision, Fen, Refusal, TransferKind};
use crate::store::{self, Fund};
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

/// Reserves `amount` of `fund_id` for an application: a pending transfer available→reserved
/// with an id derived from the application id, all of it or nothing.
pub async fn reserve(
    conn: &mut PgConnection,
    fund_id: &str,
    application_id: &str,
    amount: Fen,
    cause: Option<&Envelope>,
) -> Result<Reserved, Error> {
    let asked = Asked {
        fund_id,
        application_id,
        amount,
        cause,
    };
    let Some(mut fund) = store::lock_fund(conn, fund_id).await? else {
        let reason = format!("fund {fund_id:?} does not exist");
        return reject(conn, &asked, None, amount.max(0), reason).await;
    };
    let prior = store::reservation(conn, application_id)
        .await?
        .map(|(_, r)| r);
    let balances = fund.balances;
    let (shortfall, reason) =
        match domain::reserve(&balances, prior.as_ref(), application_id, amount) {
            Ok(Decision::AlreadyDone) => return Ok(Reserved::AlreadyReserved),
            Ok(Decision::Write(transfer)) => {
                let event = Payload::FundReserved(FundReserved {
                    fund_id: fund_id.to_string(),
                    application_id: application_id.to_string(),
                    transfer_id: transfer.id.to_string(),
                    amount_fen: amount,
                    available_fen: balances.available - amount,
                });
                write(conn, &mut fund, &transfer, event, cause).await?;
                return Ok(Reserved::Reserved {
                    transfer_id: transfer.id,
                    available: fund.balances.available,
                });
            }
            Err(Refusal::Shortfall { shortfall, .. }) => {
                (shortfall, "available is short of the amount".to_string())
            }
            Err(refusal @ Refusal::BadAmount) => (0, refusal.to_string()),
            // Another amount for an application already reserved: the events contradict each
            // other and no answer is right; the consumer dead-letters it for a person to see.
            Err(refusal) => return Err(Error::FailedPrecondition(refusal.to_string())),
        };
    reject(conn, &asked, Some(&mut fund), shortfall, reason).await
}

/// One reservation asked for: of which fund, for which application, how much, on which event.
struct Asked<'a> {
    fund_id: &'a str,
    application_id: &'a str,
    amount: Fen,
    cause: Option<&'a Envelope>,
}

/// Refuses `asked` (the fund, when it exists, steps its version): `kc.fund.reservation_rejected`
/// with the shortfall and the reason, which is also the answer.
async fn reject(
    conn: &mut PgConnection,
    asked: &Asked<'_>,
    fund: Option<&mut Fund>,
    shortfall: Fen,
    reason: String,
) -> Result<Reserved, Error> {
    let (fund_id, cause) = (asked.fund_id, asked.cause);
    let payload = Payload::FundReservationRejected(FundReservationRejected {
        fund_id: fund_id.to_string(),
        application_id: asked.application_id.to_string(),
        amount_fen: asked.amount,
        available_fen: fund.as_ref().map_or(0, |f| f.balances.available),
        shortfall_fen: shortfall,
        reason: reason.clone(),
    });
    match fund {
        Some(fund) => {
            emit(conn, fund, payload, cause).await?;
            store::save_fund_state(conn, &fund.id, fund.version, fund.low_balance_alerted).await?;
        }
        None => {
            // No such fund, hence no version to step.
            let mut event = NewEvent::new(fund_id, 0, payload);
            if let Some(cause) = cause {
                event = event.caused_by(cause);
            }
            outbox::append(conn, PRODUCER, event).await?;
        }
    }
    Ok(Reserved::Rejected { shortfall, reason })
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

/// Posts (reserved→disbursed) or voids (reserved→available) an application's reservation.
pub async fn resolve(
    conn: &mut PgConnection,
    kind: TransferKind,
    application_id: &str,
    amount: Option<Fen>,
    cause: Option<&Envelope>,
) -> Result<Resolved, Error> {
    let Some((fund_id, _)) = store::reservation(conn, application_id).await? else {
        return Ok(Resolved::Refused(Refusal::NoReservation));
    };
    let mut fund = store::lock_fund(conn, &fund_id)
        .await?
        .ok_or_else(|| Error::internal(format!("fund {fund_id} of a reservation is missing")))?;
    // Read again under the fund's lock: a concurrent resolution may just have committed.
    let reservation = store::reservation(conn, application_id)
        .await?
        .map(|(_, r)| r);
    let decision = match kind {
        TransferKind::Post => domain::post(reservation.as_ref(), amount),
        TransferKind::Void => domain::void(reservation.as_ref(), amount),
        other => return Err(Error::internal(format!("{other:?} resolves nothing"))),
    };
    let transfer = match decision {
        Ok(Decision::Write(t)) => t,
        Ok(Decision::AlreadyDone) => return Ok(Resolved::AlreadyDone),
        Err(refusal) => return Ok(Resolved::Refused(refusal)),
    };
    let pending_id = transfer
        .pending_id
        .map(|p| p.to_string())
        .unwrap_or_default();
    let event = if kind == TransferKind::Post {
        Payload::FundPosted(FundPosted {
            fund_id: fund_id.clone(),
            application_id: application_id.to_string(),
            transfer_id: transfer.id.to_string(),
            pending_id,
            amount_fen: transfer.amount,
        })
    } else {
        Payload::FundVoided(FundVoided {
            fund_id: fund_id.clone(),
            application_id: application_id.to_string(),
            transfer_id: transfer.id.to_string(),
            pending_id,
            amount_fen: transfer.amount,
        })
    };
    write(conn, &mut fund, &transfer, event, cause).await?;
    Ok(Resolved::Written {
        transfer_id: transfer.id,
    })
}
