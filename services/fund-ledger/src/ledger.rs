//! The ledger's operations, in the caller's transaction: lock the fund, ask `domain` what to
//! write, write it with `store`, and append the events it causes to the outbox in the same
//! transaction. Reservations, posts and voids go in batches ([`apply_batch`]; `reserve` and
//! `resolve` are batches of one). Used by the RPCs (`api`), the event handlers (`events`
//! through `group_commit`), the seed, the tests and the benchmark.

use crate::domain::batch::Ask;
use crate::domain::{self, Decision, Fen, Refusal, TransferKind};
use crate::store::{self, Fund};
use kechuang_platform::error::{Error, ResultExt};
use kechuang_platform::events::NewEvent;
use kechuang_platform::outbox;
use kechuang_proto::events::{
    Envelope, FundCreated, FundLowBalance, FundToppedUp, envelope::Payload,
};
use sqlx::PgConnection;
use uuid::Uuid;

mod batch;

pub use batch::{Answer, Request, apply_batch};

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
