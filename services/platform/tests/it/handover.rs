//! Events handed straight to the relay after their commit (`outbox::Handover`): each reaches
//! the bus exactly once and its row is deleted, whether the relay leads, stands by, or
//! finds NATS gone for a while.

use crate::helpers::*;
use async_nats::jetstream::Context as JetStream;
use futures::StreamExt;
use kechuang_platform::NewEvent;
use kechuang_platform::config::BusConfig;
use kechuang_platform::outbox::{self, CommittedEvent, Handover, Relay};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Commits `n` events of new aggregates (as a create statement does), in one statement.
async fn commit_new_aggregates(pool: &PgPool, n: usize) -> Vec<CommittedEvent> {
    let staged: Vec<_> = (0..n)
        .map(|_| {
            let aggregate = format!("fund-{}", unique());
            outbox::stage(
                "test",
                NewEvent::new(&aggregate, 1, low_balance(&aggregate, 1)),
            )
        })
        .collect();
    sqlx::query(
        "INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, \
             aggregate_version, envelope) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int8[], \
             $6::bytea[])",
    )
    .bind(staged.iter().map(|s| s.event_id).collect::<Vec<_>>())
    .bind(
        staged
            .iter()
            .map(|s| s.envelope.event_type.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        staged
            .iter()
            .map(|s| s.envelope.aggregate_type.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        staged
            .iter()
            .map(|s| s.envelope.aggregate_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(
        staged
            .iter()
            .map(|s| s.envelope.aggregate_version)
            .collect::<Vec<_>>(),
    )
    .bind(staged.iter().map(|s| s.encoded.clone()).collect::<Vec<_>>())
    .execute(pool)
    .await
    .unwrap();
    staged.into_iter().map(CommittedEvent::from).collect()
}

/// Counts every publish on the bus's subjects, by event id. A plain subscription sees each
/// publish, including the copies JetStream drops as duplicates.
struct Publishes {
    seen: std::sync::Arc<std::sync::Mutex<HashMap<String, usize>>>,
}

impl Publishes {
    async fn watch(bus: &BusConfig) -> Self {
        let nats = async_nats::connect(NATS).await.unwrap();
        let mut messages = nats
            .subscribe(format!("{}.>", bus.subject_prefix))
            .await
            .unwrap();
        nats.flush().await.unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
        let counts = seen.clone();
        tokio::spawn(async move {
            let _keep = nats;
            while let Some(m) = messages.next().await {
                let id = m
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                *counts.lock().unwrap().entry(id).or_insert(0) += 1;
            }
        });
        Self { seen }
    }

    fn of(&self) -> HashMap<String, usize> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts a relay that runs until `stop`, and waits until it leads.
async fn leading_relay(
    pool: &PgPool,
    js: JetStream,
    bus: &BusConfig,
    stop: &CancellationToken,
) -> (Handover, tokio::task::JoinHandle<()>) {
    let relay = Relay::new(pool.clone(), js, bus.clone(), signer());
    let handover = relay.handover();
    let running = tokio::spawn(relay.run(stop.clone()));
    eventually(Duration::from_secs(10), "the relay to lead", || async {
        handover.relay_leads()
    })
    .await;
    (handover, running)
}

fn assert_each_once(publishes: &HashMap<String, usize>, events: &[String]) {
    assert_eq!(publishes.len(), events.len(), "publishes: {publishes:?}");
    for id in events {
        assert_eq!(publishes.get(id), Some(&1), "event {id} published once");
    }
}

#[tokio::test]
async fn handed_over_events_are_published_once_each_and_removed() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let publishes = Publishes::watch(&bus_cfg).await;
    let stop = CancellationToken::new();
    let (handover, relay) = leading_relay(&pool, js.clone(), &bus_cfg, &stop).await;

    // 20 commits of 10, handed over as they commit, while the relay also reads (a ring after
    // every other commit): what it was handed it must not publish again.
    let mut ids = Vec::new();
    for i in 0..20 {
        let events = commit_new_aggregates(&pool, 10).await;
        ids.extend(events.iter().map(|e| e.event_id.to_string()));
        handover.committed(events);
        if i % 2 == 0 {
            outbox::ring(PRODUCER);
        }
    }
    eventually(Duration::from_secs(10), "every row removed", || async {
        outbox::unsent_count(&pool).await.unwrap() == 0
    })
    .await;
    assert_eq!(message_count(&js, &bus_cfg).await, 200);
    assert_each_once(&publishes.of(), &ids);

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn events_handed_to_a_standby_relay_are_published_by_the_leader() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let publishes = Publishes::watch(&bus_cfg).await;
    let stop = CancellationToken::new();
    let (leader_handover, leader) = leading_relay(&pool, js.clone(), &bus_cfg, &stop).await;
    let standby = Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer());
    let handover = standby.handover();
    let standby = tokio::spawn(standby.run(stop.clone()));

    let events = commit_new_aggregates(&pool, 30).await;
    let ids: Vec<_> = events.iter().map(|e| e.event_id.to_string()).collect();
    assert!(!handover.relay_leads());
    handover.committed(events);
    eventually(
        Duration::from_secs(10),
        "the leader to publish them",
        || async { outbox::unsent_count(&pool).await.unwrap() == 0 },
    )
    .await;
    assert_eq!(message_count(&js, &bus_cfg).await, 30);
    assert_each_once(&publishes.of(), &ids);
    assert!(leader_handover.relay_leads() && !handover.relay_leads());

    stop.cancel();
    leader.await.unwrap();
    standby.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn events_handed_over_while_nats_is_down_are_published_once_it_is_back() {
    let (pool, db_name) = test_db().await;
    let proxy = Proxy::start("127.0.0.1:4222".parse().unwrap(), true).await;
    let bus_cfg = test_bus(&proxy.url());
    let js_direct = provisioned(&bus_cfg).await;
    let js_relay = kechuang_platform::bus::connect(&bus_cfg, "relay-under-test")
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let (handover, relay) = leading_relay(&pool, js_relay, &bus_cfg, &stop).await;

    proxy.set_up(false);
    let events = commit_new_aggregates(&pool, 25).await;
    handover.committed(events);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(outbox::unsent_count(&pool).await.unwrap(), 25);
    proxy.set_up(true);
    eventually(
        Duration::from_secs(30),
        "the events after the outage",
        || async { outbox::unsent_count(&pool).await.unwrap() == 0 },
    )
    .await;
    assert_eq!(message_count(&js_direct, &bus_cfg).await, 25);

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js_direct, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn a_row_nobody_announced_is_still_read_while_hand_overs_keep_coming() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let stop = CancellationToken::new();
    let (handover, relay) = leading_relay(&pool, js.clone(), &bus_cfg, &stop).await;

    // A steady stream of hand-overs, far more often than the relay's poll.
    let stream_stop = CancellationToken::new();
    let stream = {
        let (pool, handover, stream_stop) = (pool.clone(), handover.clone(), stream_stop.clone());
        tokio::spawn(async move {
            while !stream_stop.is_cancelled() {
                handover.committed(commit_new_aggregates(&pool, 1).await);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    // A row committed with no ring and no NOTIFY: only the relay's own look finds it.
    let quiet = commit_new_aggregates(&pool, 1).await.remove(0).event_id;
    eventually(
        Duration::from_secs(5),
        "the unannounced row published",
        || async {
            sqlx::query_scalar::<_, bool>(
                "SELECT NOT EXISTS (SELECT 1 FROM outbox WHERE event_id = $1)",
            )
            .bind(quiet)
            .fetch_one(&pool)
            .await
            .unwrap()
        },
    )
    .await;
    assert!(!stream.is_finished(), "the hand-overs were still coming");
    stream_stop.cancel();
    stream.await.unwrap();
    eventually(Duration::from_secs(10), "every row removed", || async {
        outbox::unsent_count(&pool).await.unwrap() == 0
    })
    .await;

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}
