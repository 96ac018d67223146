//! Dead letters an operator handles: listed, shown, replayed before the consumer that failed
//! (and only that one), purged; against the real stream and a real consumer.

use crate::helpers::*;
use async_nats::HeaderMap;
use async_nats::jetstream::Context as JetStream;
use kechuang_platform::config::BusConfig;
use kechuang_platform::consumer::{Consumer, ConsumerSpec, EventHandler, HandlerError};
use kechuang_platform::dead_letters::{DeadLetter, DeadLetterError, DeadLetters};
use kechuang_platform::outbox::Relay;
use kechuang_proto::events::Envelope;
use prost::Message;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Applies an event only once its aggregate is known (a row in `aggregates`): the kind of
/// failure an operator fixes and then replays. Records its effect under its own label.
struct NeedsAggregate {
    label: &'static str,
}

impl EventHandler for NeedsAggregate {
    async fn handle(&self, event: &Envelope, tx: &mut PgConnection) -> Result<(), HandlerError> {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM aggregates WHERE id = $1)")
                .bind(&event.aggregate_id)
                .fetch_one(&mut *tx)
                .await?;
        if !known {
            return Err(HandlerError::Transient(format!(
                "aggregate {} is not known yet",
                event.aggregate_id
            )));
        }
        sqlx::query("INSERT INTO effects (event_id, aggregate_id) VALUES ($1, $2)")
            .bind(&event.event_id)
            .bind(self.label)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// One test's stream, database, relay and consumers.
struct Bench {
    pool: PgPool,
    db_name: String,
    bus: BusConfig,
    js: JetStream,
    letters: DeadLetters,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Bench {
    async fn start() -> Self {
        let (pool, db_name) = test_db().await;
        let bus = test_bus(NATS);
        let js = provisioned(&bus).await;
        let stop = CancellationToken::new();
        let relay = Relay::new(pool.clone(), js.clone(), bus.clone(), signer());
        let tasks = vec![tokio::spawn(relay.run(stop.clone()))];
        Self {
            letters: DeadLetters::new(js.clone(), bus.clone()),
            pool,
            db_name,
            bus,
            js,
            stop,
            tasks,
        }
    }

    /// A consumer of `fund.*` for service `service`, durable `durable`.
    fn consume<H: EventHandler>(&mut self, service: &str, durable: &str, handler: Arc<H>) {
        let consumer = Consumer::new(
            self.pool.clone(),
            self.js.clone(),
            self.bus.clone(),
            service,
            ConsumerSpec::new(durable, "fund.*"),
            handler,
            event_keys(),
        );
        self.tasks
            .push(tokio::spawn(consumer.run(self.stop.clone())));
    }

    async fn list(&self, service: Option<&str>) -> Vec<DeadLetter> {
        self.letters.list(service, 0, 100).await.unwrap().letters
    }

    /// Waits until `service` has `n` dead letters, and returns them.
    async fn wait_for_letters(&self, service: &str, n: usize) -> Vec<DeadLetter> {
        eventually(Duration::from_secs(30), "the dead letters", || async {
            self.list(Some(service)).await.len() == n
        })
        .await;
        self.list(Some(service)).await
    }

    /// Waits until `durable` has settled everything up to stream sequence `sequence`.
    async fn settled(&self, durable: &str, sequence: u64) {
        eventually(
            Duration::from_secs(30),
            "the consumer to settle",
            || async {
                let stream = self.js.get_stream(&self.bus.stream_name).await.unwrap();
                let Ok(info) = stream.consumer_info(durable).await else {
                    return false;
                };
                info.delivered.stream_sequence >= sequence
                    && info.num_pending == 0
                    && info.num_ack_pending == 0
            },
        )
        .await;
    }

    async fn effects(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT event_id, aggregate_id FROM effects ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    async fn know(&self, aggregate: &str) {
        sqlx::query("INSERT INTO aggregates (id) VALUES ($1)")
            .bind(aggregate)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
        delete_stream(&self.js, &self.bus).await;
        drop_db(self.pool, &self.db_name).await;
    }
}

#[tokio::test]
async fn a_poison_message_is_listed_shown_replayed_into_its_error_again_and_purged() {
    let mut bench = Bench::start().await;
    let poison = append_one(&bench.pool, "poison-permanent-1", 1).await;
    append_one(&bench.pool, "healthy", 1).await;
    bench.consume("svc", "ledger", recording());

    let listed = bench.wait_for_letters("svc", 1).await;
    let letter = &listed[0];
    assert_eq!(letter.event_id(), poison.event_id);
    assert_eq!(letter.service, "svc");
    assert_eq!(letter.consumer, "ledger");
    assert_eq!(letter.subject, bench.bus.subject("fund.low_balance"));
    assert!(letter.error.contains("makes no sense"), "{}", letter.error);
    assert_eq!(letter.deliveries, 1);
    assert_eq!(letter.replay_of, None);
    let page = bench.letters.list(None, 0, 10).await.unwrap();
    assert_eq!((page.letters.len(), page.more), (1, 0));

    let shown = bench.letters.get(letter.id).await.unwrap();
    assert_eq!(shown.envelope().unwrap(), poison);
    assert!(shown.headers.get("Kc-Signature").is_some(), "replayable");
    assert!(shown.original_sequence > 0 && shown.original_sequence < shown.id);
    // An event is not a dead letter.
    assert!(matches!(
        bench.letters.get(shown.original_sequence).await,
        Err(DeadLetterError::NotADeadLetter { .. })
    ));

    let replayed = bench.letters.replay(letter.id).await.unwrap();
    assert!(replayed.sequence > letter.id);
    // Still poison: dead-lettered again, under a new id, saying which one it replays.
    let again = bench.wait_for_letters("svc", 1).await;
    let again = &again[0];
    assert!(again.id > replayed.sequence);
    assert_eq!(again.event_id(), poison.event_id);
    assert_eq!(again.replay_of, Some(letter.id));
    assert!(again.error.contains("makes no sense"), "{}", again.error);
    assert!(matches!(
        bench.letters.get(letter.id).await,
        Err(DeadLetterError::NotFound(_))
    ));

    let purged = bench.letters.purge(again.id).await.unwrap();
    assert_eq!(purged.event_id(), poison.event_id);
    assert!(bench.list(None).await.is_empty());
    assert!(matches!(
        bench.letters.get(again.id).await,
        Err(DeadLetterError::NotFound(_))
    ));
    assert_eq!(effect_count(&bench.pool).await, 1, "only the healthy event");
    bench.stop().await;
}

#[tokio::test]
async fn an_event_that_failed_for_a_reason_since_fixed_is_handled_once_on_replay() {
    let mut bench = Bench::start().await;
    let event = append_one(&bench.pool, "fund-late", 1).await;
    bench.consume(
        "svc",
        "ledger",
        Arc::new(NeedsAggregate { label: "ledger" }),
    );
    let letter = bench.wait_for_letters("svc", 1).await.remove(0);
    assert_eq!(letter.deliveries, 3, "retried up to KC_MAX_DELIVER");
    assert!(letter.error.contains("not known yet"), "{}", letter.error);
    assert!(bench.effects().await.is_empty());

    bench.know("fund-late").await;
    let replayed = bench.letters.replay(letter.id).await.unwrap();
    bench.settled("ledger", replayed.sequence).await;
    assert_eq!(
        bench.effects().await,
        vec![(event.event_id.clone(), "ledger".to_string())],
        "handled exactly once"
    );
    assert!(
        bench.list(None).await.is_empty(),
        "nothing left to attend to"
    );
    bench.stop().await;
}

#[tokio::test]
async fn replaying_an_event_already_handled_changes_nothing() {
    let mut bench = Bench::start().await;
    let event = append_one(&bench.pool, "fund-twice", 1).await;
    bench.consume(
        "svc",
        "ledger",
        Arc::new(NeedsAggregate { label: "ledger" }),
    );
    let letter = bench.wait_for_letters("svc", 1).await.remove(0);
    // Fixed, and the event came again (a copy past the duplicate window) and was handled.
    bench.know("fund-twice").await;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", unique().as_str());
    let body = event.encode_to_vec();
    signer().seal(&body, &mut headers);
    let copy = bench
        .js
        .publish_with_headers(bench.bus.subject(&event.event_type), headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
    bench.settled("ledger", copy.sequence).await;
    assert_eq!(bench.effects().await.len(), 1);

    // The operator replays the dead letter anyway: the consumer's inbox knows the event.
    let replayed = bench.letters.replay(letter.id).await.unwrap();
    bench.settled("ledger", replayed.sequence).await;
    assert_eq!(
        bench.effects().await,
        vec![(event.event_id.clone(), "ledger".to_string())],
        "the effect is counted once"
    );
    assert!(bench.list(None).await.is_empty());
    bench.stop().await;
}

#[tokio::test]
async fn a_replay_goes_to_the_consumer_that_failed_alone() {
    let mut bench = Bench::start().await;
    let event = append_one(&bench.pool, "fund-shared", 1).await;
    // Two services consume the subject; both fail on the event.
    bench.consume(
        "one",
        "one-ledger",
        Arc::new(NeedsAggregate { label: "one" }),
    );
    bench.consume(
        "two",
        "two-ledger",
        Arc::new(NeedsAggregate { label: "two" }),
    );
    let first = bench.wait_for_letters("one", 1).await.remove(0);
    let second = bench.wait_for_letters("two", 1).await.remove(0);

    bench.know("fund-shared").await;
    let replayed = bench.letters.replay(first.id).await.unwrap();
    bench.settled("one-ledger", replayed.sequence).await;
    bench.settled("two-ledger", replayed.sequence).await;
    assert_eq!(
        bench.effects().await,
        vec![(event.event_id.clone(), "one".to_string())],
        "service two did not handle service one's replay"
    );
    let left: Vec<u64> = bench.list(None).await.iter().map(|l| l.id).collect();
    assert_eq!(
        left,
        vec![second.id],
        "two's dead letter waits for its own replay"
    );
    bench.stop().await;
}

#[tokio::test]
async fn listing_pages_and_all_at_once_stay_within_what_was_there() {
    let mut bench = Bench::start().await;
    let mut poison = Vec::new();
    for n in 0..7 {
        let aggregate = format!("poison-permanent-{n}");
        poison.push(append_one(&bench.pool, &aggregate, 1).await.event_id);
    }
    bench.consume("svc", "ledger", recording());
    let all = bench.wait_for_letters("svc", 7).await;

    // Pages of three: the server counts what follows each page.
    let first = bench.letters.list(Some("svc"), 0, 3).await.unwrap();
    assert_eq!(first.letters.len(), 3);
    assert_eq!(first.more, 4);
    let after = first.letters.last().unwrap().id;
    let second = bench.letters.list(Some("svc"), after, 3).await.unwrap();
    assert_eq!(second.letters.len(), 3);
    assert_eq!(second.more, 1);
    assert!(second.letters[0].id > after);
    let rest = bench
        .letters
        .list(Some("svc"), second.letters[2].id, 100)
        .await
        .unwrap();
    assert_eq!((rest.letters.len(), rest.more), (1, 0));
    let paged: Vec<u64> = [first.letters, second.letters, rest.letters]
        .concat()
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(paged, all.iter().map(|l| l.id).collect::<Vec<_>>());
    assert!(bench.list(Some("other")).await.is_empty());
    assert!(matches!(
        bench.letters.list(Some("a.b"), 0, 1).await,
        Err(DeadLetterError::BadService(_))
    ));

    // Replaying all of them: each fails again, and is not replayed again in the same run.
    let summary = bench.letters.replay_all(Some("svc")).await.unwrap();
    assert_eq!((summary.replayed, summary.refused), (7, 0));
    assert!(summary.interrupted.is_none());
    let again = bench.wait_for_letters("svc", 7).await;
    let mut replayed: Vec<Option<u64>> = again.iter().map(|l| l.replay_of).collect();
    replayed.sort();
    let originals: Vec<Option<u64>> = all.iter().map(|l| Some(l.id)).collect();
    assert_eq!(replayed, originals, "each replayed once");

    // A consumer that is gone gets nothing: its dead letters stay.
    let stream = bench.js.get_stream(&bench.bus.stream_name).await.unwrap();
    bench.stop.cancel();
    for task in std::mem::take(&mut bench.tasks) {
        task.await.unwrap();
    }
    stream.delete_consumer("ledger").await.unwrap();
    let refused = bench.letters.replay_all(None).await.unwrap();
    assert_eq!((refused.replayed, refused.refused), (0, 7));
    assert!(
        refused.refusals[0]
            .to_string()
            .contains("consumer ledger no longer exists"),
        "{}",
        refused.refusals[0]
    );
    assert_eq!(bench.list(None).await.len(), 7);

    assert_eq!(bench.letters.purge_all(Some("svc")).await.unwrap(), 7);
    assert!(bench.list(None).await.is_empty());
    let events = crate::consumer::messages_on_subject(
        &bench.js,
        &bench.bus.stream_name,
        &bench.bus.subject("fund.low_balance"),
    )
    .await;
    assert_eq!(events.len(), 14, "the events and their replays stay");
    bench.stop().await;
}

#[tokio::test]
async fn a_forgery_marked_as_another_consumers_replay_is_still_dead_lettered() {
    let mut bench = Bench::start().await;
    let forged = kechuang_platform::NewEvent::new("forged", 1, low_balance("forged", 1))
        .into_envelope(PRODUCER, chrono::Utc::now());
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", unique().as_str());
    headers.insert("Kc-Replay-For", "somebody-else");
    bench
        .js
        .publish_with_headers(
            bench.bus.subject(&forged.event_type),
            headers,
            forged.encode_to_vec().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    bench.consume("svc", "ledger", recording());
    let letter = bench.wait_for_letters("svc", 1).await.remove(0);
    assert_eq!(letter.event_id(), forged.event_id);
    assert!(
        letter.error.starts_with("unauthentic event: unsigned"),
        "{}",
        letter.error
    );
    bench.stop().await;
}
