use super::*;
use crate::domain::{Transfer, transfer_id};
use proptest::prelude::*;

fn reserve_ask(app: &str, amount: Fen) -> Ask {
    Ask::Reserve {
        application_id: app.into(),
        amount,
    }
}

fn post_ask(app: &str) -> Ask {
    Ask::Post {
        application_id: app.into(),
        amount: None,
    }
}

fn void_ask(app: &str) -> Ask {
    Ask::Void {
        application_id: app.into(),
        amount: None,
    }
}

fn funded(available: Fen) -> Balances {
    Balances {
        available,
        ..Balances::default()
    }
}

#[test]
fn a_shortfall_refuses_that_request_alone_and_the_next_sees_the_running_balance() {
    let mut fund = Running::new(funded(1_000), []);
    let decisions: Vec<_> = [
        reserve_ask("a", 600),
        reserve_ask("b", 600), // 400 left: refused
        reserve_ask("c", 400), // fits what b did not take
        reserve_ask("d", 1),   // nothing left
    ]
    .iter()
    .map(|ask| fund.decide(ask))
    .collect();
    assert!(matches!(decisions[0], Ok(Decision::Write(_))));
    assert_eq!(
        decisions[1],
        Err(Refusal::Shortfall {
            available: 400,
            shortfall: 200
        })
    );
    assert!(matches!(decisions[2], Ok(Decision::Write(_))));
    assert_eq!(
        decisions[3],
        Err(Refusal::Shortfall {
            available: 0,
            shortfall: 1
        })
    );
    assert_eq!(
        fund.balances(),
        Balances {
            available: 0,
            reserved: 1_000,
            disbursed: 0
        }
    );
}

#[test]
fn the_same_request_twice_in_one_batch_moves_money_once() {
    let mut fund = Running::new(funded(1_000), []);
    assert!(matches!(
        fund.decide(&reserve_ask("a", 300)),
        Ok(Decision::Write(_))
    ));
    assert_eq!(
        fund.decide(&reserve_ask("a", 300)),
        Ok(Decision::AlreadyDone)
    );
    assert!(matches!(
        fund.decide(&post_ask("a")),
        Ok(Decision::Write(_))
    ));
    assert_eq!(fund.decide(&post_ask("a")), Ok(Decision::AlreadyDone));
    assert_eq!(
        fund.decide(&void_ask("a")),
        Err(Refusal::AlreadyResolved(TransferKind::Post))
    );
    assert_eq!(
        fund.balances(),
        Balances {
            available: 700,
            reserved: 0,
            disbursed: 300
        }
    );
}

#[test]
fn reservations_written_before_the_batch_are_replays_and_can_be_resolved() {
    let before = Reservation {
        id: transfer_id(TransferKind::Reserve, "a"),
        application_id: "a".into(),
        amount: 300,
        resolution: None,
    };
    let balances = Balances {
        available: 700,
        reserved: 300,
        disbursed: 0,
    };
    let mut fund = Running::new(balances, [before]);
    assert_eq!(
        fund.decide(&reserve_ask("a", 300)),
        Ok(Decision::AlreadyDone)
    );
    assert_eq!(
        fund.decide(&reserve_ask("a", 301)),
        Err(Refusal::AmountMismatch {
            reserved: 300,
            requested: 301
        })
    );
    assert!(matches!(
        fund.decide(&void_ask("a")),
        Ok(Decision::Write(_))
    ));
    assert_eq!(fund.balances(), funded(1_000));
    assert_eq!(fund.decide(&post_ask("b")), Err(Refusal::NoReservation));
}

/// What the ledger's tables hold between batches: balances and every reservation.
#[derive(Clone, Default)]
struct Stored {
    balances: Balances,
    reservations: HashMap<String, Reservation>,
}

impl Stored {
    /// Commits what a batch wrote.
    fn commit(&mut self, written: &[(String, Transfer)], balances: Balances) {
        self.balances = balances;
        for (app, t) in written {
            match t.kind {
                TransferKind::Reserve => {
                    self.reservations.insert(
                        app.clone(),
                        Reservation {
                            id: t.id,
                            application_id: app.clone(),
                            amount: t.amount,
                            resolution: None,
                        },
                    );
                }
                kind => self.reservations.get_mut(app).unwrap().resolution = Some(kind),
            }
        }
    }
}

/// Decides `asks` in batches of the given sizes (cycled), each against what the batches
/// before it committed; the decisions, and the balances at the end.
fn in_batches(
    start: Balances,
    asks: &[Ask],
    sizes: &[usize],
) -> (Vec<Result<Decision, Refusal>>, Balances) {
    let mut stored = Stored {
        balances: start,
        ..Stored::default()
    };
    let mut decisions = Vec::new();
    let mut rest = asks;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (batch, after) = rest.split_at((*size).clamp(1, rest.len()));
        rest = after;
        let known = batch
            .iter()
            .filter_map(|a| stored.reservations.get(a.application_id()).cloned());
        let mut fund = Running::new(stored.balances, known);
        let mut written = Vec::new();
        for ask in batch {
            let before = fund.balances();
            let decision = fund.decide(ask);
            if let Ok(Decision::Write(t)) = &decision {
                assert_eq!(before.after(t), Some(fund.balances()));
                written.push((ask.application_id().to_string(), t.clone()));
            } else {
                assert_eq!(before, fund.balances(), "only a write moves money");
            }
            assert!(fund.balances().available >= 0);
            decisions.push(decision);
        }
        stored.commit(&written, fund.balances());
    }
    (decisions, stored.balances)
}

fn ask() -> impl Strategy<Value = Ask> {
    let app = (0u8..12).prop_map(|a| format!("app-{a}"));
    let stated = prop_oneof![Just(None), (1i64..400).prop_map(Some)];
    prop_oneof![
        3 => (app.clone(), 1i64..400).prop_map(|(a, amount)| reserve_ask(&a, amount)),
        2 => (app.clone(), stated.clone()).prop_map(|(application_id, amount)| Ask::Post { application_id, amount }),
        1 => (app, stated).prop_map(|(application_id, amount)| Ask::Void { application_id, amount }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// However requests are grouped into batches, each is decided as it would be alone, one
    /// transaction after another: the batching changes when money moves, never how much.
    #[test]
    fn batches_decide_what_single_requests_decide(
        available in 0i64..2_000,
        asks in prop::collection::vec(ask(), 1..60),
        sizes in prop::collection::vec(1usize..16, 1..6),
    ) {
        let start = funded(available);
        let (one_by_one, end) = in_batches(start, &asks, &[1]);
        let (batched, batched_end) = in_batches(start, &asks, &sizes);
        prop_assert_eq!(&batched, &one_by_one);
        prop_assert_eq!(batched_end, end);
        prop_assert_eq!(end.total(), start.total(), "reserve, post and void create no money");
        let written: Vec<_> = batched.iter().filter_map(|d| match d {
            Ok(Decision::Write(t)) => Some(t.id),
            _ => None,
        }).collect();
        let mut unique = written.clone();
        unique.sort();
        unique.dedup();
        prop_assert_eq!(unique.len(), written.len(), "every transfer id is written once");
    }
}
