//! The ledger's rules, in plain Rust: which transfer a top-up, reservation, post or void
//! writes, or why it is refused; when the low-balance alarm fires; and which invariants a
//! ledger's figures must satisfy. No I/O: `store` reads the figures, `ledger` writes the result.
//!
//! Double entry, TigerBeetle-style. Each fund has four accounts. Money enters from the
//! fund's *treasury* (its debits are everything ever topped up) and moves by immutable
//! transfers, each debiting one account and crediting another by the same positive amount:
//!
//! | kind    | debit     | credit    |
//! |---------|-----------|-----------|
//! | top-up  | treasury  | available |
//! | reserve | available | reserved  |  (the pending transfer of an application)
//! | post    | reserved  | disbursed |  (resolves the pending transfer: paid out)
//! | void    | reserved  | available |  (resolves the pending transfer: released)

use uuid::Uuid;

/// Money, in fen (0.01 CNY).
pub type Fen = i64;

/// The largest single top-up or reservation: 100 billion CNY. Far above any real fund, low
/// enough that sums of many of them stay far from `i64::MAX`.
pub const MAX_AMOUNT_FEN: Fen = kechuang_platform::input::MAX_FEN;

/// The id of the fund seeded at start, which the seeded subsidy policy draws on.
pub use kechuang_vocabulary::DEFAULT_FUND_ID;
pub const DEFAULT_FUND_NAME: &str = "湖北省科技成果转化补贴专项资金";
/// The default fund's alarm: available below 10,000,000 CNY.
pub const DEFAULT_LOW_BALANCE_FEN: Fen = 1_000_000_000;

/// Namespace of the ledger's deterministic (UUIDv5) transfer ids.
const TRANSFER_NAMESPACE: Uuid = Uuid::from_u128(0x6b63_6675_6e64_4c65_6467_6572_0000_0001);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    Treasury,
    Available,
    Reserved,
    Disbursed,
}

impl AccountKind {
    pub const ALL: [AccountKind; 4] = [
        AccountKind::Treasury,
        AccountKind::Available,
        AccountKind::Reserved,
        AccountKind::Disbursed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Treasury => "treasury",
            AccountKind::Available => "available",
            AccountKind::Reserved => "reserved",
            AccountKind::Disbursed => "disbursed",
        }
    }

    /// The account's id: `<fund id>:<kind>`.
    pub fn account_id(self, fund_id: &str) -> String {
        format!("{fund_id}:{}", self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferKind {
    TopUp,
    Reserve,
    Post,
    Void,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferKind::TopUp => "top_up",
            TransferKind::Reserve => "reserve",
            TransferKind::Post => "post",
            TransferKind::Void => "void",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::TopUp, Self::Reserve, Self::Post, Self::Void]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// (debit, credit): where a transfer of this kind takes money from and puts it.
    pub fn accounts(self) -> (AccountKind, AccountKind) {
        match self {
            TransferKind::TopUp => (AccountKind::Treasury, AccountKind::Available),
            TransferKind::Reserve => (AccountKind::Available, AccountKind::Reserved),
            TransferKind::Post => (AccountKind::Reserved, AccountKind::Disbursed),
            TransferKind::Void => (AccountKind::Reserved, AccountKind::Available),
        }
    }
}

/// The deterministic id of a transfer: one per (phase, key), so a replayed request or event
/// derives the id already written and cannot move money twice. The key is the application
/// id for reserve/post/void and the top-up's reference for a top-up.
pub fn transfer_id(kind: TransferKind, key: &str) -> Uuid {
    Uuid::new_v5(
        &TRANSFER_NAMESPACE,
        format!("{}:{key}", kind.as_str()).as_bytes(),
    )
}

/// A transfer about to be written. Never changed once written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: Uuid,
    pub kind: TransferKind,
    pub amount: Fen,
    /// For a post or void: the reservation it resolves.
    pub pending_id: Option<Uuid>,
    /// The top-up's reference, or the application id of a reservation and its resolution.
    pub reference: String,
}

/// A fund's balances: credits minus debits of each account (the treasury's is negative:
/// it is where the money came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    pub available: Fen,
    pub reserved: Fen,
    pub disbursed: Fen,
}

impl Balances {
    /// Everything ever topped up.
    pub fn total(&self) -> Fen {
        self.available + self.reserved + self.disbursed
    }

    /// The balances after `transfer`; `None` if an account would go negative or overflow.
    pub fn after(&self, transfer: &Transfer) -> Option<Balances> {
        let mut next = *self;
        let (debit, credit) = transfer.kind.accounts();
        for (account, delta) in [(debit, -transfer.amount), (credit, transfer.amount)] {
            let slot = match account {
                AccountKind::Treasury => continue,
                AccountKind::Available => &mut next.available,
                AccountKind::Reserved => &mut next.reserved,
                AccountKind::Disbursed => &mut next.disbursed,
            };
            *slot = slot.checked_add(delta).filter(|b| *b >= 0)?;
        }
        next.available
            .checked_add(next.reserved)?
            .checked_add(next.disbursed)?;
        Some(next)
    }
}

/// An application's reservation as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: Uuid,
    pub application_id: String,
    pub amount: Fen,
    /// `Post` or `Void` once resolved; a reservation is resolved at most once.
    pub resolution: Option<TransferKind>,
}

/// A top-up already written under a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorTopUp {
    pub fund_id: String,
    pub amount: Fen,
}

/// What to do about a request that is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write this transfer.
    Write(Transfer),
    /// It was done before (a replay): write nothing.
    AlreadyDone,
}

/// Why the ledger refuses to move money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the amount must be positive and at most {MAX_AMOUNT_FEN} fen")]
    BadAmount,
    #[error("available is {available} fen, {shortfall} fen short")]
    Shortfall { available: Fen, shortfall: Fen },
    #[error("the fund would exceed what a 64-bit amount of fen can hold")]
    Overflow,
    /// A post or void whose reservation the ledger does not (yet) have.
    #[error("no reservation for this application")]
    NoReservation,
    /// A post of a voided reservation, or a void of a posted one.
    #[error("the reservation was already {}", if *.0 == TransferKind::Post { "posted" } else { "voided" })]
    AlreadyResolved(TransferKind),
    #[error("the reservation holds {reserved} fen, not {requested}")]
    AmountMismatch { reserved: Fen, requested: Fen },
    #[error("the reference was already used for another top-up")]
    ReferenceReused,
}

fn check_amount(amount: Fen) -> Result<(), Refusal> {
    if amount > 0 && amount <= MAX_AMOUNT_FEN {
        Ok(())
    } else {
        Err(Refusal::BadAmount)
    }
}

/// A top-up of `amount` under `reference`; the same reference again is a replay only if it
/// names the same fund and amount.
pub fn top_up(
    balances: &Balances,
    fund_id: &str,
    prior: Option<&PriorTopUp>,
    amount: Fen,
    reference: &str,
) -> Result<Decision, Refusal> {
    if let Some(prior) = prior {
        return if prior.fund_id == fund_id && prior.amount == amount {
            Ok(Decision::AlreadyDone)
        } else {
            Err(Refusal::ReferenceReused)
        };
    }
    check_amount(amount)?;
    let transfer = Transfer {
        id: transfer_id(TransferKind::TopUp, reference),
        kind: TransferKind::TopUp,
        amount,
        pending_id: None,
        reference: reference.to_string(),
    };
    balances.after(&transfer).ok_or(Refusal::Overflow)?;
    Ok(Decision::Write(transfer))
}

/// Reserves `amount` for an application: all of it or nothing.
pub fn reserve(
    balances: &Balances,
    prior: Option<&Reservation>,
    application_id: &str,
    amount: Fen,
) -> Result<Decision, Refusal> {
    if let Some(prior) = prior {
        return if prior.amount == amount {
            Ok(Decision::AlreadyDone)
        } else {
            Err(Refusal::AmountMismatch {
                reserved: prior.amount,
                requested: amount,
            })
        };
    }
    check_amount(amount)?;
    if amount > balances.available {
        return Err(Refusal::Shortfall {
            available: balances.available,
            shortfall: amount - balances.available,
        });
    }
    Ok(Decision::Write(Transfer {
        id: transfer_id(TransferKind::Reserve, application_id),
        kind: TransferKind::Reserve,
        amount,
        pending_id: None,
        reference: application_id.to_string(),
    }))
}

/// Posts (pays out) an application's reservation. `amount`, when the event states one, must
/// be what was reserved.
pub fn post(reservation: Option<&Reservation>, amount: Option<Fen>) -> Result<Decision, Refusal> {
    resolve(TransferKind::Post, reservation, amount)
}

/// Voids (releases back to available) an application's reservation.
pub fn void(reservation: Option<&Reservation>, amount: Option<Fen>) -> Result<Decision, Refusal> {
    resolve(TransferKind::Void, reservation, amount)
}

fn resolve(
    kind: TransferKind,
    reservation: Option<&Reservation>,
    amount: Option<Fen>,
) -> Result<Decision, Refusal> {
    let reservation = reservation.ok_or(Refusal::NoReservation)?;
    match reservation.resolution {
        Some(done) if done == kind => return Ok(Decision::AlreadyDone),
        Some(other) => return Err(Refusal::AlreadyResolved(other)),
        None => {}
    }
    if let Some(requested) = amount
        && requested != reservation.amount
    {
        return Err(Refusal::AmountMismatch {
            reserved: reservation.amount,
            requested,
        });
    }
    Ok(Decision::Write(Transfer {
        id: transfer_id(kind, &reservation.application_id),
        kind,
        amount: reservation.amount,
        pending_id: Some(reservation.id),
        reference: reservation.application_id.clone(),
    }))
}

/// The low-balance alarm after a change of `available`: `(alerted, fire)`. It fires once when
/// available drops below the threshold and is re-armed once available is back at or above it.
pub fn low_balance_alarm(threshold: Fen, alerted: bool, available: Fen) -> (bool, bool) {
    if available < threshold {
        (true, !alerted)
    } else {
        (false, false)
    }
}

/// A fund whose available balance starts at 0 is already below a positive threshold: the
/// alarm starts disarmed, since nothing has crossed yet.
pub fn initially_alerted(threshold: Fen) -> bool {
    threshold > 0
}

pub mod audit;
pub mod batch;

#[cfg(test)]
mod tests;
