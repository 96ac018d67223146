use crate::helpers::*;
use kechuang_platform::outbox::{self, Relay};
use kechuang_platform::{NewEvent, bus};
use kechuang_proto::events::Envelope;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Reads every message of the stream in stream order.
async fn stream_envelopes(
    js: &async_nats::jetstream::Context,
    stream_name: &str,
) -> Vec<(Envelope, Option<String>)> {
    let stream = js.get_stream(stream_name).await.unwrap();
    let mut stream = stream;
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await {
            let msg_id = m.headers.get("Nats-Msg-Id").map(|v| v.to_string());
            out.push((Envelope::decode(m.payload).unwrap(), msg_id));
        }
    }
    out
}

#[tokio::test]
async fn a_thousand_events_from_eight_writers_survive_a_nats_outage_in_order() {
    let (pool, db_name) = test_db().await;
    let proxy = Proxy::start("127.0.0.1:4222".parse().unwrap(), false).await;
    let bus_cfg = test_bus(&proxy.url());
    let js_direct = provisioned(&bus_cfg).await;
    let js_relay = bus::connect(&bus_cfg, "relay-under-test").await.unwrap();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js_relay, bus_cfg.clone(), signer()).run(stop.clone()),
    );

    // 8 writers, 125 events each, over 20 aggregates; each event bumps its aggregate's
    // version in the same transaction, as a service would.
    let aggregates: Vec<String> = (0..20).map(|i| format!("agg-{i}")).collect();
    for a in &aggregates {
        sqlx::query("INSERT INTO aggregates (id) VALUES ($1)")
            .bind(a)
            .execute(&pool)
            .await
            .unwrap();
    }
    let mut writers = Vec::new();
    for w in 0..8usize {
        let (pool, aggregates) = (pool.clone(), aggregates.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..125usize {
                let aggregate = &aggregates[(w * 7 + i * 3) % aggregates.len()];
                let mut tx = pool.begin().await.unwrap();
                let version: i64 = sqlx::query_scalar(
                    "UPDATE aggregates SET version = version + 1 WHERE id = $1 RETURNING version",
                )
                .bind(aggregate)
                .fetch_one(&mut *tx)
                .await
                .unwrap();
                let event = NewEvent::new(aggregate, version, low_balance(aggregate, version));
                outbox::append(&mut tx, "test", event).await.unwrap();
                tx.commit().await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(outbox::unsent_count(&pool).await.unwrap(), 1000);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        message_count(&js_direct, &bus_cfg).await,
        0,
        "NATS was unreachable"
    );

    proxy.set_up(true);
    eventually(
        Duration::from_secs(60),
        "all 1000 events in the stream",
        || async { message_count(&js_direct, &bus_cfg).await >= 1000 },
    )
    .await;
    eventually(Duration::from_secs(10), "the outbox emptied", || async {
        outbox::unsent_count(&pool).await.unwrap() == 0
    })
    .await;

    let published = stream_envelopes(&js_direct, &bus_cfg.stream_name).await;
    assert_eq!(published.len(), 1000, "each event exactly once");
    let ids: HashSet<_> = published.iter().map(|(e, _)| e.event_id.clone()).collect();
    assert_eq!(ids.len(), 1000);
    let mut last_version: HashMap<String, i64> = HashMap::new();
    for (envelope, msg_id) in &published {
        assert_eq!(msg_id.as_deref(), Some(envelope.event_id.as_str()));
        let last = last_version
            .entry(envelope.aggregate_id.clone())
            .or_insert(0);
        assert_eq!(
            envelope.aggregate_version,
            *last + 1,
            "{} out of order",
            envelope.aggregate_id
        );
        *last = envelope.aggregate_version;
    }
    assert_eq!(last_version.values().sum::<i64>(), 1000);

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js_direct, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn a_row_that_commits_after_a_later_row_is_still_published() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );

    // The slow transaction draws the smaller id, then waits while a later one commits.
    let mut slow = pool.begin().await.unwrap();
    let early = outbox::append(
        &mut slow,
        "test",
        NewEvent::new("a", 1, low_balance("a", 1)),
    )
    .await
    .unwrap();
    let late = append_one(&pool, "b", 1).await;
    eventually(
        Duration::from_secs(10),
        "the later row published",
        || async { message_count(&js, &bus_cfg).await == 1 },
    )
    .await;
    slow.commit().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the late-committing row published",
        || async { message_count(&js, &bus_cfg).await == 2 },
    )
    .await;
    let ids: Vec<_> = stream_envelopes(&js, &bus_cfg.stream_name)
        .await
        .into_iter()
        .map(|(e, _)| e.event_id)
        .collect();
    assert_eq!(ids, [late.event_id, early.event_id]);

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn a_relay_that_died_before_deleting_republishes_and_jetstream_drops_the_copies() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    for v in 1..=10 {
        append_one(&pool, "fund-1", v).await;
    }
    sqlx::query("CREATE TABLE outbox_before AS SELECT * FROM outbox")
        .execute(&pool)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    eventually(
        Duration::from_secs(10),
        "10 events published and removed",
        || async { outbox::unsent_count(&pool).await.unwrap() == 0 },
    )
    .await;
    stop.cancel();
    relay.await.unwrap();
    assert_eq!(message_count(&js, &bus_cfg).await, 10);

    // The state a crash between the publish acks and the DELETE leaves behind.
    sqlx::query("INSERT INTO outbox OVERRIDING SYSTEM VALUE SELECT * FROM outbox_before")
        .execute(&pool)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    eventually(
        Duration::from_secs(10),
        "the restarted relay to catch up",
        || async { outbox::unsent_count(&pool).await.unwrap() == 0 },
    )
    .await;
    assert_eq!(
        message_count(&js, &bus_cfg).await,
        10,
        "duplicates were dropped"
    );

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn two_relays_on_one_database_publish_each_event_once() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let stop = CancellationToken::new();
    let relays: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(
                Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
            )
        })
        .collect();
    for v in 1..=50 {
        append_one(&pool, "fund-2", v).await;
    }
    eventually(Duration::from_secs(20), "50 events published", || async {
        outbox::unsent_count(&pool).await.unwrap() == 0
    })
    .await;
    let versions: Vec<_> = stream_envelopes(&js, &bus_cfg.stream_name)
        .await
        .into_iter()
        .map(|(e, _)| e.aggregate_version)
        .collect();
    assert_eq!(versions, (1..=50).collect::<Vec<_>>());

    stop.cancel();
    for r in relays {
        r.await.unwrap();
    }
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn events_appended_together_keep_every_aggregates_order_and_are_published_once() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );

    let aggregates: Vec<String> = (0..6).map(|i| format!("many-{i}")).collect();
    for a in &aggregates {
        sqlx::query("INSERT INTO aggregates (id) VALUES ($1)")
            .bind(a)
            .execute(&pool)
            .await
            .unwrap();
    }
    // 4 writers, 40 transactions each: odd writers append three aggregates' events in one
    // statement (listed in reverse, to show the given order is kept), even ones one by one.
    let mut writers = Vec::new();
    for w in 0..4usize {
        let (pool, aggregates) = (pool.clone(), aggregates.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..40usize {
                let mut touched: Vec<&String> = (0..3)
                    .map(|j| &aggregates[(w + i * 5 + j * 2) % aggregates.len()])
                    .collect();
                touched.sort();
                touched.dedup();
                let mut tx = pool.begin().await.unwrap();
                let mut events = Vec::new();
                for aggregate in &touched {
                    let version: i64 = sqlx::query_scalar(
                        "UPDATE aggregates SET version = version + 1 WHERE id = $1 RETURNING version",
                    )
                    .bind(aggregate)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                    events.push(NewEvent::new(*aggregate, version, low_balance(aggregate, version)));
                }
                if w % 2 == 1 {
                    events.reverse();
                    let expected: Vec<_> =
                        events.iter().map(|e| e.aggregate_id.clone()).collect();
                    let envelopes = outbox::append_many(&mut tx, "test", events).await.unwrap();
                    let got: Vec<_> = envelopes.iter().map(|e| e.aggregate_id.clone()).collect();
                    assert_eq!(got, expected);
                } else {
                    for event in events {
                        outbox::append(&mut tx, "test", event).await.unwrap();
                    }
                }
                tx.commit().await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let total: i64 = sqlx::query_scalar("SELECT sum(version)::bigint FROM aggregates")
        .fetch_one(&pool)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "every event in the stream",
        || async { message_count(&js, &bus_cfg).await >= total as u64 },
    )
    .await;
    let published = stream_envelopes(&js, &bus_cfg.stream_name).await;
    assert_eq!(published.len() as i64, total, "each event exactly once");
    let mut last_version: HashMap<String, i64> = HashMap::new();
    for (envelope, _) in &published {
        let last = last_version
            .entry(envelope.aggregate_id.clone())
            .or_insert(0);
        assert_eq!(
            envelope.aggregate_version,
            *last + 1,
            "{} out of order",
            envelope.aggregate_id
        );
        *last = envelope.aggregate_version;
    }

    stop.cancel();
    relay.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}
