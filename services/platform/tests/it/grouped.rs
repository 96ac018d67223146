//! Events applied in groups ([`Grouped`]): one transaction for the events queued together,
//! each recorded and answered on its own; a group that fails goes back to one transaction an
//! event.

use crate::consumer::messages_on_subject;
use crate::helpers::*;
use futures::future::join_all;
use kechuang_platform::EventHandler;
use kechuang_platform::consumer::{
    Applied, Consumer, ConsumerSpec, Grouped, HandlerError, Processed, record_new,
};
use kechuang_platform::outbox::Relay;
use kechuang_proto::events::Envelope;
use prost::Message;
use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const CONSUMER: &str = "grouped";

/// Applies `events` through one `Grouped` recording handler, all queued before its committer
/// takes its first group (so they form one group); the answers, in order.
async fn apply_as_one_group(
    pool: &PgPool,
    events: &[Envelope],
) -> Vec<Result<Applied, HandlerError>> {
    let (grouped, committer) = Grouped::new(recording());
    let stop = CancellationToken::new();
    // `join!` polls the applies first: each queues its event before the committer runs.
    let applies = join_all(events.iter().map(|e| grouped.apply(pool, CONSUMER, e)));
    let (answers, ()) = tokio::join!(
        async {
            let answers = applies.await;
            stop.cancel();
            answers
        },
        committer.run(pool.clone(), stop.clone()),
    );
    answers
}

/// The transactions (by `xmin`) that wrote each effect, by event id.
async fn effects_by_transaction(pool: &PgPool) -> Vec<(String, String)> {
    sqlx::query_as("SELECT event_id, xmin::text FROM effects ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn processed(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_id::text FROM processed_events WHERE consumer = $1 ORDER BY event_id",
    )
    .bind(CONSUMER)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn outcome(answer: &Result<Applied, HandlerError>) -> String {
    match answer {
        Ok(applied) => format!("{applied:?}"),
        Err(HandlerError::Transient(_)) => "Transient".into(),
        Err(HandlerError::Permanent(_)) => "Permanent".into(),
    }
}

#[tokio::test]
async fn events_queued_together_commit_in_one_transaction_each_once() {
    let (pool, db_name) = test_db().await;
    let mut events = Vec::new();
    for n in 0..6 {
        events.push(append_one(&pool, &format!("fund-{n}"), 1).await);
    }
    // events[0] was processed before (a redelivery); events[1] comes twice in the group.
    let mut conn = pool.acquire().await.unwrap();
    let before = Processed::of(CONSUMER, &events[0]).unwrap();
    record_new(&mut conn, &[before]).await.unwrap();
    drop(conn);
    let mut queued = events.clone();
    queued.insert(2, events[1].clone());

    let answers = apply_as_one_group(&pool, &queued).await;

    let outcomes: Vec<String> = answers.iter().map(outcome).collect();
    assert_eq!(
        outcomes,
        [
            "AlreadyProcessed",
            "Now",
            "AlreadyProcessed",
            "Now",
            "Now",
            "Now",
            "Now"
        ]
    );
    let effects = effects_by_transaction(&pool).await;
    let applied: Vec<&str> = effects.iter().map(|(e, _)| e.as_str()).collect();
    let expected: Vec<&str> = events[1..].iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(applied, expected, "each new event once, in arrival order");
    let transactions: std::collections::HashSet<&str> =
        effects.iter().map(|(_, x)| x.as_str()).collect();
    assert_eq!(transactions.len(), 1, "one transaction for the group");
    let mut all: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    all.sort();
    assert_eq!(processed(&pool).await, all);
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn a_group_with_a_bad_event_is_applied_one_event_at_a_time() {
    let (pool, db_name) = test_db().await;
    let first = append_one(&pool, "fund-a", 1).await;
    let permanent = append_one(&pool, "poison-permanent", 1).await;
    let transient = append_one(&pool, "poison-transient", 1).await;
    let last = append_one(&pool, "fund-b", 1).await;
    let queued = [first.clone(), permanent, transient, last.clone()];

    let answers = apply_as_one_group(&pool, &queued).await;

    let outcomes: Vec<String> = answers.iter().map(outcome).collect();
    assert_eq!(outcomes, ["Now", "Permanent", "Transient", "Now"]);
    // Applied alone, side by side: in whichever order, each in a transaction of its own.
    let effects = effects_by_transaction(&pool).await;
    let mut applied: Vec<&str> = effects.iter().map(|(e, _)| e.as_str()).collect();
    applied.sort();
    let mut good = vec![first.event_id.as_str(), last.event_id.as_str()];
    good.sort();
    assert_eq!(applied, good);
    assert_ne!(effects[0].1, effects[1].1, "applied alone, each in its own");
    // Neither refused event is recorded as processed: a retry or a replay applies it.
    assert_eq!(processed(&pool).await, good);
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn a_grouped_consumer_applies_each_event_once_and_dead_letters_the_bad_one() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let mut expected = Vec::new();
    for n in 0..20 {
        expected.push(append_one(&pool, &format!("fund-{n}"), 1).await.event_id);
    }
    let poison = append_one(&pool, "poison-permanent", 1).await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    let (grouped, committer) = Grouped::new(recording());
    let committing = tokio::spawn(committer.run(pool.clone(), stop.clone()));
    let spec = ConsumerSpec::new(CONSUMER, "fund.*").in_parallel(8);
    let consumer = Consumer::new(
        pool.clone(),
        js.clone(),
        bus_cfg.clone(),
        "test",
        spec,
        grouped,
        event_keys(),
    );
    let consuming = tokio::spawn(consumer.run(stop.clone()));
    let dead_letters = bus_cfg.dead_letter_subject("test");
    eventually(Duration::from_secs(30), "the consumer to drain", || async {
        effect_count(&pool).await == 20
            && messages_on_subject(&js, &bus_cfg.stream_name, &dead_letters)
                .await
                .len()
                == 1
    })
    .await;
    let mut applied: Vec<String> = sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_all(&pool)
        .await
        .unwrap();
    applied.sort();
    expected.sort();
    assert_eq!(applied, expected, "each event once");
    let letter = &messages_on_subject(&js, &bus_cfg.stream_name, &dead_letters).await[0];
    let body = Envelope::decode(letter.payload.as_ref()).unwrap();
    assert_eq!(body.event_id, poison.event_id);

    stop.cancel();
    relay.await.unwrap();
    consuming.await.unwrap();
    committing.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}
