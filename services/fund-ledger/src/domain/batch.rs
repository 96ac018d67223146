//! A batch of requests on one fund, decided one after another against the running balance:
//! each sees the balances and reservations as the requests before it in the batch left them,
//! so a batch decides exactly what the same requests decided one transaction each, in that
//! order, would. One refusal (a shortfall) refuses that request alone.

use super::{Balances, Decision, Fen, Refusal, Reservation, TransferKind, post, reserve, void};
use std::collections::HashMap;

/// What a request asks of a fund's money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Reserve `amount` for the application (a pending transfer available→reserved).
    Reserve { application_id: String, amount: Fen },
    /// Pay out the application's reservation; `amount`, when stated, must be what it holds.
    Post {
        application_id: String,
        amount: Option<Fen>,
    },
    /// Release the application's reservation back to available.
    Void {
        application_id: String,
        amount: Option<Fen>,
    },
}

impl Ask {
    pub fn application_id(&self) -> &str {
        match self {
            Ask::Reserve { application_id, .. }
            | Ask::Post { application_id, .. }
            | Ask::Void { application_id, .. } => application_id,
        }
    }
}

/// The fund as the batch has left it so far: its balances, and the reservations of the
/// applications the batch is about (those written before the batch, and those it writes).
#[derive(Debug, Clone)]
pub struct Running {
    balances: Balances,
    reservations: HashMap<String, Reservation>,
}

impl Running {
    /// The fund before the batch: its balances and the reservations already written for the
    /// batch's applications.
    pub fn new(balances: Balances, reservations: impl IntoIterator<Item = Reservation>) -> Self {
        Self {
            balances,
            reservations: reservations
                .into_iter()
                .map(|r| (r.application_id.clone(), r))
                .collect(),
        }
    }

    pub fn balances(&self) -> Balances {
        self.balances
    }

    /// Decides `ask` against the fund as the batch's earlier requests left it and, when it
    /// writes a transfer, applies it, so that the next request sees it (a second reservation
    /// of the same application is then a replay, a post after a void refused).
    pub fn decide(&mut self, ask: &Ask) -> Result<Decision, Refusal> {
        let id = ask.application_id();
        let prior = self.reservations.get(id);
        let decision = match ask {
            Ask::Reserve { amount, .. } => reserve(&self.balances, prior, id, *amount)?,
            Ask::Post { amount, .. } => post(prior, *amount)?,
            Ask::Void { amount, .. } => void(prior, *amount)?,
        };
        if let Decision::Write(transfer) = &decision {
            // Decided transfers fit by construction; `Overflow` guards the arithmetic anyway.
            self.balances = self.balances.after(transfer).ok_or(Refusal::Overflow)?;
            match transfer.kind {
                TransferKind::Reserve => {
                    self.reservations.insert(
                        id.to_string(),
                        Reservation {
                            id: transfer.id,
                            application_id: id.to_string(),
                            amount: transfer.amount,
                            resolution: None,
                        },
                    );
                }
                kind @ (TransferKind::Post | TransferKind::Void) => {
                    if let Some(r) = self.reservations.get_mut(id) {
                        r.resolution = Some(kind);
                    }
                }
                TransferKind::TopUp => {}
            }
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests;
