//! DESIGN.md's flow with two replicas of every service, each its own OS process, sharing the
//! service's database and durable consumers, every call going to the next replica in turn.
//! Two enterprises take their welding demands to a contract at the same time; the first is
//! paid and subsidised by all eight processes; then one replica of every service is
//! SIGKILLed and the survivors subsidise the second. Nothing may be handled, paired, paid or
//! posted twice, and the books must be exact.

use kechuang_e2e::books::{Books, Delivery};
use kechuang_e2e::journey::welding::{self, SUBSIDY_FEN};
use kechuang_e2e::journey::{audit_once_settled, top_up};
use kechuang_e2e::{Cluster, YUAN, settings};
use kechuang_platform::{ServiceKind, Settings};
use std::collections::BTreeSet;
use std::path::Path;

const PAIRINGS: usize = 2;
const TOP_UP_FEN: i64 = 1_000_000 * YUAN;

#[tokio::test]
async fn two_replicas_of_every_service_share_the_work_and_survive_a_sigkill() {
    let settings = Settings {
        pairings_per_demand: PAIRINGS,
        // Eight processes share the server's connections with every other test.
        database_max_connections: 4,
        ..settings()
    };
    let binary = Path::new(env!("CARGO_BIN_EXE_kc-e2e-replica"));
    let mut cluster = Cluster::start(binary, settings, 2).await;
    let api = cluster.api();
    top_up(&api, TOP_UP_FEN, "财预〔2026〕1号").await;
    welding::publish_catalog(&api).await;

    let (first, second) = tokio::join!(
        welding::to_contract(&api, "WELD00001"),
        welding::to_contract(&api, "WELD00002"),
    );
    welding::to_subsidy(&first).await;

    // Every replica has applied events of its service: JetStream hands a durable consumer's
    // messages to its waiting pull requests in turn, and each service has had events close
    // together (both demands verified at once, pairings pushed in one transaction, two
    // applications reserved and paid).
    let books = Books::open(&cluster.settings).await;
    books.quiesce().await;
    for replica in cluster.applied() {
        let (name, n) = (&replica.replica, replica.events.len());
        eprintln!("{name}: {n} events applied before the kill");
        assert!(n > 0, "{name} applied no event");
    }

    for kind in ServiceKind::ALL {
        cluster.kill(kind, 0);
        api.retire(kind, 0);
    }
    welding::to_subsidy(&second).await;

    let (fund, violations) = audit_once_settled(&api, |f| {
        f.reserved_fen == 0 && f.disbursed_fen == 2 * SUBSIDY_FEN
    })
    .await;
    assert_eq!(fund.available_fen, TOP_UP_FEN - 2 * SUBSIDY_FEN);
    assert_eq!(fund.total_fen, TOP_UP_FEN);
    assert!(violations.is_empty(), "{violations:?}");

    let deliveries = books.exactly_once().await;
    assert_eq!(
        books.tally().await,
        welding::tally(2, PAIRINGS as i64, TOP_UP_FEN)
    );
    each_event_applied_by_one_replica(&cluster, &deliveries);
    books.close().await;
    cluster.stop().await;
}

/// The replicas' logs name the events each applied: per service, together exactly what the
/// service's consumers processed, and no event by two replicas.
fn each_event_applied_by_one_replica(cluster: &Cluster, deliveries: &[Delivery]) {
    let replicas = cluster.applied();
    for kind in ServiceKind::ALL {
        let processed: BTreeSet<(String, uuid::Uuid)> = deliveries
            .iter()
            .filter(|d| d.service == kind)
            .flat_map(|d| d.events.iter().map(|id| (d.consumer.clone(), *id)))
            .collect();
        let mut applied = BTreeSet::new();
        for replica in replicas.iter().filter(|r| r.service == kind) {
            for event in &replica.events {
                assert!(
                    applied.insert(event.clone()),
                    "{event:?} applied by {} and another replica",
                    replica.replica
                );
            }
        }
        assert_eq!(
            applied,
            processed,
            "{}: the replicas' logs against processed_events",
            kind.name()
        );
    }
}
