use super::audit::{AccountFigures, FundFigures, TransferGroup, audit};
use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

const FUND: &str = "fund-t";

/// An in-memory ledger that applies the domain's decisions the way `ledger` does in SQL.
#[derive(Default)]
struct Model {
    balances: Balances,
    transfers: Vec<Transfer>,
    reservations: HashMap<String, Reservation>,
    top_ups: HashMap<String, PriorTopUp>,
    alerted: bool,
    alarms: usize,
}

#[derive(Debug, Clone)]
enum Op {
    TopUp { reference: u8, amount: Fen },
    Reserve { application: u8, amount: Fen },
    Post { application: u8 },
    Void { application: u8 },
}

const THRESHOLD: Fen = 500;

impl Model {
    fn new() -> Self {
        Self {
            alerted: initially_alerted(THRESHOLD),
            ..Self::default()
        }
    }

    fn write(&mut self, t: Transfer) {
        assert!(
            !self.transfers.iter().any(|x| x.id == t.id),
            "a transfer id is written once"
        );
        self.balances = self.balances.after(&t).expect("a decided transfer fits");
        match t.kind {
            TransferKind::Reserve => {
                self.reservations.insert(
                    t.reference.clone(),
                    Reservation {
                        id: t.id,
                        application_id: t.reference.clone(),
                        amount: t.amount,
                        resolution: None,
                    },
                );
            }
            TransferKind::Post | TransferKind::Void => {
                let r = self.reservations.get_mut(&t.reference).expect("resolves");
                assert_eq!(r.resolution, None, "resolved once");
                r.resolution = Some(t.kind);
            }
            TransferKind::TopUp => {
                self.top_ups.insert(
                    t.reference.clone(),
                    PriorTopUp {
                        fund_id: FUND.into(),
                        amount: t.amount,
                    },
                );
            }
        }
        self.transfers.push(t);
        let (alerted, fire) = low_balance_alarm(THRESHOLD, self.alerted, self.balances.available);
        self.alerted = alerted;
        self.alarms += usize::from(fire);
    }

    fn apply(&mut self, op: &Op) -> Result<Decision, Refusal> {
        let decision = match op {
            Op::TopUp { reference, amount } => {
                let reference = format!("doc-{reference}");
                top_up(
                    &self.balances,
                    FUND,
                    self.top_ups.get(&reference),
                    *amount,
                    &reference,
                )
            }
            Op::Reserve {
                application,
                amount,
            } => {
                let app = format!("app-{application}");
                reserve(&self.balances, self.reservations.get(&app), &app, *amount)
            }
            Op::Post { application } => {
                post(self.reservations.get(&format!("app-{application}")), None)
            }
            Op::Void { application } => {
                void(self.reservations.get(&format!("app-{application}")), None)
            }
        };
        if let Ok(Decision::Write(t)) = &decision {
            self.write(t.clone());
        }
        decision
    }

    fn figures(&self) -> FundFigures {
        let mut accounts: Vec<AccountFigures> = AccountKind::ALL
            .into_iter()
            .map(|kind| AccountFigures {
                kind,
                debits: 0,
                credits: 0,
                transfer_debits: 0,
                transfer_credits: 0,
            })
            .collect();
        let mut groups: HashMap<TransferKind, (i64, Fen)> = HashMap::new();
        for t in &self.transfers {
            let (d, c) = t.kind.accounts();
            for a in accounts.iter_mut() {
                if a.kind == d {
                    a.transfer_debits += t.amount;
                }
                if a.kind == c {
                    a.transfer_credits += t.amount;
                }
            }
            let g = groups.entry(t.kind).or_insert((0, Fen::MAX));
            g.0 += 1;
            g.1 = g.1.min(t.amount);
        }
        // The stored columns are the model's balances, split the way SQL keeps them.
        for a in accounts.iter_mut() {
            a.debits = a.transfer_debits;
            a.credits = a.transfer_credits;
        }
        let pending_fen = self
            .reservations
            .values()
            .filter(|r| r.resolution.is_none())
            .map(|r| r.amount)
            .sum();
        let posted_fen = self
            .transfers
            .iter()
            .filter(|t| t.kind == TransferKind::Post)
            .map(|t| t.amount)
            .sum();
        FundFigures {
            fund_id: FUND.into(),
            accounts,
            transfer_groups: groups
                .into_iter()
                .map(|(kind, (count, min_amount))| {
                    let (d, c) = kind.accounts();
                    TransferGroup {
                        kind: kind.as_str().into(),
                        debit_account: d.account_id(FUND),
                        credit_account: c.account_id(FUND),
                        count,
                        min_amount,
                    }
                })
                .collect(),
            pending_fen,
            posted_fen,
            stray_resolutions: vec![],
            resolved_twice: vec![],
            paid_twice: vec![],
        }
    }

    fn check_invariants(&self) {
        let b = self.balances;
        assert!(b.available >= 0 && b.reserved >= 0 && b.disbursed >= 0);
        let topped_up: Fen = self.top_ups.values().map(|t| t.amount).sum();
        assert_eq!(b.total(), topped_up, "money is neither created nor lost");
        let figures = self.figures();
        let derived = |kind| {
            let a = figures.accounts.iter().find(|a| a.kind == kind).unwrap();
            a.transfer_credits - a.transfer_debits
        };
        assert_eq!(derived(AccountKind::Available), b.available);
        assert_eq!(derived(AccountKind::Reserved), b.reserved);
        assert_eq!(derived(AccountKind::Disbursed), b.disbursed);
        assert_eq!(audit(&figures), Vec::<String>::new());
        for app in self.reservations.keys() {
            let posts = self
                .transfers
                .iter()
                .filter(|t| t.kind == TransferKind::Post && &t.reference == app)
                .count();
            let resolutions = self
                .transfers
                .iter()
                .filter(|t| t.pending_id.is_some() && &t.reference == app)
                .count();
            assert!(
                posts <= 1 && resolutions <= 1,
                "{app} resolved once at most"
            );
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    // Few applications and references, so that repeats and out-of-order arrivals are common.
    prop_oneof![
        (0u8..4, 1i64..3_000).prop_map(|(reference, amount)| Op::TopUp { reference, amount }),
        (0u8..8, 1i64..1_500).prop_map(|(application, amount)| Op::Reserve {
            application,
            amount
        }),
        (0u8..8).prop_map(|application| Op::Post { application }),
        (0u8..8).prop_map(|application| Op::Void { application }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_after_every_step(ops in prop::collection::vec(op(), 1..80)) {
        let mut model = Model::new();
        for op in &ops {
            let before = model.balances;
            let count = model.transfers.len();
            let app = |a: &u8| format!("app-{a}");
            let prior = match op {
                Op::Post { application } | Op::Void { application } => {
                    model.reservations.get(&app(application)).cloned()
                }
                _ => None,
            };
            let outcome = model.apply(op);
            match (op, &outcome) {
                (Op::Post { .. } | Op::Void { .. }, _) if prior.is_none() => {
                    prop_assert_eq!(&outcome, &Err(Refusal::NoReservation));
                }
                (Op::Post { .. }, _) if prior.as_ref().unwrap().resolution == Some(TransferKind::Post) => {
                    prop_assert_eq!(&outcome, &Ok(Decision::AlreadyDone));
                }
                (Op::Reserve { amount, .. }, Err(Refusal::Shortfall { available, shortfall })) => {
                    prop_assert_eq!(*available, before.available);
                    prop_assert_eq!(available + shortfall, *amount);
                }
                _ => {}
            }
            if !matches!(outcome, Ok(Decision::Write(_))) {
                prop_assert_eq!(model.balances, before, "a refusal or replay moves nothing");
                prop_assert_eq!(model.transfers.len(), count);
            }
            model.check_invariants();
        }
    }

    #[test]
    fn replaying_what_was_applied_moves_nothing(ops in prop::collection::vec(op(), 1..60)) {
        let mut model = Model::new();
        let mut applied = Vec::new();
        for op in &ops {
            if let Ok(Decision::Write(_)) = model.apply(op) {
                applied.push(op.clone());
            }
        }
        let (balances, count) = (model.balances, model.transfers.len());
        for op in &applied {
            prop_assert_eq!(model.apply(op), Ok(Decision::AlreadyDone));
        }
        prop_assert_eq!(model.balances, balances);
        prop_assert_eq!(model.transfers.len(), count);
        model.check_invariants();
    }

    #[test]
    fn the_alarm_fires_once_per_downward_crossing(avail in prop::collection::vec(0i64..1_000, 1..50)) {
        let mut alerted = initially_alerted(THRESHOLD);
        let mut below = true;
        for a in avail {
            let (next, fire) = low_balance_alarm(THRESHOLD, alerted, a);
            let now_below = a < THRESHOLD;
            prop_assert_eq!(fire, now_below && !below);
            alerted = next;
            below = now_below;
        }
    }
}

#[test]
fn a_reservation_is_all_or_nothing() {
    let b = Balances {
        available: 900,
        ..Default::default()
    };
    assert_eq!(
        reserve(&b, None, "a1", 1_000),
        Err(Refusal::Shortfall {
            available: 900,
            shortfall: 100
        })
    );
    let Ok(Decision::Write(t)) = reserve(&b, None, "a1", 900) else {
        panic!("fits exactly");
    };
    assert_eq!(t.id, transfer_id(TransferKind::Reserve, "a1"));
    assert_eq!(
        b.after(&t),
        Some(Balances {
            available: 0,
            reserved: 900,
            disbursed: 0
        })
    );
}

#[test]
fn bad_amounts_are_refused() {
    let b = Balances {
        available: i64::MAX / 2,
        ..Default::default()
    };
    for amount in [0, -1, MAX_AMOUNT_FEN + 1, i64::MIN] {
        assert_eq!(reserve(&b, None, "a", amount), Err(Refusal::BadAmount));
        assert_eq!(top_up(&b, FUND, None, amount, "r"), Err(Refusal::BadAmount));
    }
    let full = Balances {
        available: i64::MAX - 1,
        ..Default::default()
    };
    assert_eq!(top_up(&full, FUND, None, 10, "r"), Err(Refusal::Overflow));
}

#[test]
fn post_and_void_resolve_a_reservation_once() {
    let r = Reservation {
        id: transfer_id(TransferKind::Reserve, "a1"),
        application_id: "a1".into(),
        amount: 70,
        resolution: None,
    };
    assert_eq!(post(None, None), Err(Refusal::NoReservation));
    assert_eq!(void(None, Some(70)), Err(Refusal::NoReservation));
    let Ok(Decision::Write(p)) = post(Some(&r), Some(70)) else {
        panic!("posts");
    };
    assert_eq!(p.pending_id, Some(r.id));
    assert_eq!(p.id, transfer_id(TransferKind::Post, "a1"));
    assert_eq!(
        post(Some(&r), Some(69)),
        Err(Refusal::AmountMismatch {
            reserved: 70,
            requested: 69
        })
    );
    let posted = Reservation {
        resolution: Some(TransferKind::Post),
        ..r.clone()
    };
    assert_eq!(post(Some(&posted), None), Ok(Decision::AlreadyDone));
    assert_eq!(
        void(Some(&posted), None),
        Err(Refusal::AlreadyResolved(TransferKind::Post))
    );
}

#[test]
fn a_top_up_reference_is_used_once() {
    let b = Balances::default();
    let prior = PriorTopUp {
        fund_id: FUND.into(),
        amount: 10,
    };
    assert_eq!(
        top_up(&b, FUND, Some(&prior), 10, "r"),
        Ok(Decision::AlreadyDone)
    );
    assert_eq!(
        top_up(&b, FUND, Some(&prior), 11, "r"),
        Err(Refusal::ReferenceReused)
    );
    assert_eq!(
        top_up(&b, "other", Some(&prior), 10, "r"),
        Err(Refusal::ReferenceReused)
    );
}

#[test]
fn transfer_ids_differ_by_phase_and_key() {
    let ids = [
        transfer_id(TransferKind::Reserve, "a"),
        transfer_id(TransferKind::Post, "a"),
        transfer_id(TransferKind::Void, "a"),
        transfer_id(TransferKind::Reserve, "b"),
        transfer_id(TransferKind::TopUp, "a"),
    ];
    for (i, x) in ids.iter().enumerate() {
        assert_eq!(x.get_version_num(), 5);
        for y in &ids[i + 1..] {
            assert_ne!(x, y);
        }
    }
    assert_eq!(ids[0], transfer_id(TransferKind::Reserve, "a"));
}

#[test]
fn audit_finds_a_corrupted_balance_and_a_stray_post() {
    let mut m = Model::new();
    m.apply(&Op::TopUp {
        reference: 1,
        amount: 1_000,
    })
    .unwrap();
    m.apply(&Op::Reserve {
        application: 1,
        amount: 400,
    })
    .unwrap();
    assert!(audit(&m.figures()).is_empty());
    let mut f = m.figures();
    f.accounts[1].credits += 1; // available
    let v = audit(&f);
    assert!(v.iter().any(|v| v.contains("available account")), "{v:?}");
    assert!(v.iter().any(|v| v.contains("debits")), "{v:?}");
    let mut f = m.figures();
    f.stray_resolutions.push("t-9".into());
    f.transfer_groups[0].debit_account = "elsewhere".into();
    assert_eq!(audit(&f).len(), 2);
}
