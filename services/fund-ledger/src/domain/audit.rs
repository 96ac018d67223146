//! The invariants of DESIGN.md ("The fund ledger"), as a check over one fund's figures.
//! `store::fund_figures` computes the figures from the account rows and the transfers;
//! property tests compute them from an in-memory ledger.

use super::{AccountKind, Fen, TransferKind};

/// What Reconcile checks, in the words it reports.
pub const CHECKS: [&str; 8] = [
    "every account's balance equals the sum of its transfers",
    "transfers balance: the fund's debits equal its credits",
    "available, reserved and disbursed are never negative",
    "available + reserved + disbursed equals everything topped up",
    "every transfer moves a positive amount between the accounts its kind names",
    "every post or void resolves one reservation of the same fund and amount",
    "a reservation is resolved at most once: no subsidy is paid twice",
    "reserved equals the pending reservations; disbursed equals the posted ones",
];

/// One account: its stored debits/credits and the sums of the transfers that touch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFigures {
    pub kind: AccountKind,
    pub debits: Fen,
    pub credits: Fen,
    pub transfer_debits: Fen,
    pub transfer_credits: Fen,
}

/// Transfers of one kind between one pair of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferGroup {
    pub kind: String,
    pub debit_account: String,
    pub credit_account: String,
    pub count: i64,
    pub min_amount: Fen,
}

/// Everything the invariants need about one fund.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FundFigures {
    pub fund_id: String,
    pub accounts: Vec<AccountFigures>,
    pub transfer_groups: Vec<TransferGroup>,
    /// Sum of reservations that have no post or void.
    pub pending_fen: Fen,
    /// Sum of post transfers.
    pub posted_fen: Fen,
    /// Posts or voids whose pending id is not a reservation of this fund with the same amount.
    pub stray_resolutions: Vec<String>,
    /// Reservations with more than one post or void.
    pub resolved_twice: Vec<String>,
    /// Applications with more than one post.
    pub paid_twice: Vec<String>,
}

/// The violations of one fund; empty when its ledger is sound.
pub fn audit(f: &FundFigures) -> Vec<String> {
    let fund = &f.fund_id;
    let mut out = Vec::new();
    let balance = |kind: AccountKind| {
        f.accounts
            .iter()
            .find(|a| a.kind == kind)
            .map(|a| a.credits - a.debits)
    };
    for kind in AccountKind::ALL {
        if !f.accounts.iter().any(|a| a.kind == kind) {
            out.push(format!("{fund}: the {} account is missing", kind.as_str()));
        }
    }
    for a in &f.accounts {
        if (a.debits, a.credits) != (a.transfer_debits, a.transfer_credits) {
            out.push(format!(
                "{fund}: the {} account holds debits {} / credits {} fen but its transfers sum to {} / {}",
                a.kind.as_str(),
                a.debits,
                a.credits,
                a.transfer_debits,
                a.transfer_credits
            ));
        }
    }
    let debits: i128 = f.accounts.iter().map(|a| i128::from(a.debits)).sum();
    let credits: i128 = f.accounts.iter().map(|a| i128::from(a.credits)).sum();
    if debits != credits {
        out.push(format!(
            "{fund}: debits ({debits} fen) differ from credits ({credits} fen)"
        ));
    }
    for kind in [
        AccountKind::Available,
        AccountKind::Reserved,
        AccountKind::Disbursed,
    ] {
        if let Some(b) = balance(kind)
            && b < 0
        {
            out.push(format!("{fund}: {} is negative: {b} fen", kind.as_str()));
        }
    }
    if let Some(treasury) = f.accounts.iter().find(|a| a.kind == AccountKind::Treasury) {
        let held: i128 = [
            AccountKind::Available,
            AccountKind::Reserved,
            AccountKind::Disbursed,
        ]
        .into_iter()
        .filter_map(balance)
        .map(i128::from)
        .sum();
        if treasury.credits != 0 || held != i128::from(treasury.debits) {
            out.push(format!(
                "{fund}: available + reserved + disbursed is {held} fen but {} fen were topped up",
                treasury.debits - treasury.credits
            ));
        }
    }
    for g in &f.transfer_groups {
        let expected = TransferKind::parse(&g.kind).map(|k| {
            let (d, c) = k.accounts();
            (d.account_id(fund), c.account_id(fund))
        });
        if expected != Some((g.debit_account.clone(), g.credit_account.clone())) {
            out.push(format!(
                "{fund}: {} {} transfer(s) from {} to {}, which that kind never moves between",
                g.count, g.kind, g.debit_account, g.credit_account
            ));
        }
        if g.min_amount <= 0 {
            out.push(format!(
                "{fund}: {} transfer(s) of a non-positive amount",
                g.kind
            ));
        }
    }
    for id in &f.stray_resolutions {
        out.push(format!(
            "{fund}: transfer {id} resolves no reservation of this fund and amount"
        ));
    }
    for id in &f.resolved_twice {
        out.push(format!(
            "{fund}: reservation {id} is resolved more than once"
        ));
    }
    for application in &f.paid_twice {
        out.push(format!(
            "{fund}: application {application} is paid more than once"
        ));
    }
    if let Some(reserved) = balance(AccountKind::Reserved)
        && reserved != f.pending_fen
    {
        out.push(format!(
            "{fund}: reserved is {reserved} fen but the pending reservations sum to {} fen",
            f.pending_fen
        ));
    }
    if let Some(disbursed) = balance(AccountKind::Disbursed)
        && disbursed != f.posted_fen
    {
        out.push(format!(
            "{fund}: disbursed is {disbursed} fen but the posted transfers sum to {} fen",
            f.posted_fen
        ));
    }
    out
}
