//! A consumer acts only on events their entitled producer signed; the rest are dead-lettered
//! with the reason, and the genuine events around them still take effect.

use crate::consumer::{header, messages_on_subject};
use crate::helpers::*;
use async_nats::HeaderMap;
use kechuang_platform::NewEvent;
use kechuang_platform::consumer::{Consumer, ConsumerSpec};
use kechuang_platform::outbox::Relay;
use kechuang_platform::seal::Signer;
use prost::Message;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn forged_events_are_dead_lettered_with_their_reason_and_never_applied() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let forged_body = |aggregate: &str, producer: &str| {
        NewEvent::new(aggregate, 1, low_balance(aggregate, 1))
            .into_envelope(producer, chrono::Utc::now())
            .encode_to_vec()
    };
    let publish = |headers: HeaderMap, body: Vec<u8>| {
        let js = js.clone();
        let subject = bus_cfg.subject("fund.low_balance");
        async move {
            js.publish_with_headers(subject, headers, body.into())
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    let msg_id = || {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", unique().as_str());
        h
    };
    // 1. No signature at all.
    publish(msg_id(), forged_body("forged-unsigned", PRODUCER)).await;
    // 2. A key nobody trusts, under the ledger's name.
    let body = forged_body("forged-stranger", PRODUCER);
    let mut h = msg_id();
    Signer::generate(PRODUCER).seal(&body, &mut h);
    publish(h, body).await;
    // 3. A genuine signature over other bytes.
    let body = forged_body("forged-tampered", PRODUCER);
    let mut h = msg_id();
    signer().seal(&forged_body("something-else", PRODUCER), &mut h);
    publish(h, body).await;
    // And one genuine event through the relay.
    let genuine = append_one(&pool, "genuine", 1).await;

    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    let consumer = Consumer::new(
        pool.clone(),
        js.clone(),
        bus_cfg.clone(),
        "svc",
        ConsumerSpec::new("authenticity", "fund.*"),
        recording(),
        event_keys(),
    );
    let task = tokio::spawn(consumer.run(stop.clone()));
    let dlq = bus_cfg.dead_letter_subject("svc");
    eventually(
        Duration::from_secs(30),
        "three dead letters and the genuine effect",
        || async {
            messages_on_subject(&js, &bus_cfg.stream_name, &dlq)
                .await
                .len()
                == 3
                && effect_count(&pool).await == 1
        },
    )
    .await;
    let applied: Vec<String> = sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(applied, vec![genuine.event_id]);
    let mut reasons: Vec<String> = messages_on_subject(&js, &bus_cfg.stream_name, &dlq)
        .await
        .iter()
        .map(|m| {
            assert_eq!(header(m, "Kc-Dlq-Deliveries"), "1", "never retried");
            header(m, "Kc-Dlq-Error")
        })
        .collect();
    reasons.sort();
    assert!(reasons[0].starts_with("unauthentic event: the signature of \"fund-ledger\""));
    assert!(reasons[1].starts_with("unauthentic event: the signature of \"fund-ledger\""));
    assert!(
        reasons[2].starts_with("unauthentic event: unsigned"),
        "{reasons:?}"
    );

    stop.cancel();
    relay.await.unwrap();
    task.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}
