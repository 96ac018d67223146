use crate::helpers::*;
use async_nats::HeaderMap;
use kechuang_platform::consumer::{Consumer, ConsumerSpec};
use kechuang_platform::outbox::Relay;
use kechuang_platform::testing::series_value;
use prost::Message;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn consumer_idle(js: &async_nats::jetstream::Context, stream: &str, durable: &str) -> bool {
    let Ok(stream) = js.get_stream(stream).await else {
        return false;
    };
    let Ok(mut consumer) = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(durable)
        .await
    else {
        return false;
    };
    let info = consumer.info().await.unwrap();
    info.num_pending == 0 && info.num_ack_pending == 0
}

#[tokio::test]
async fn an_event_delivered_three_times_takes_effect_once() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let envelope = append_one(&pool, "fund-1", 1).await;
    let other = append_one(&pool, "fund-1", 2).await;
    // Three copies of the first event reach the stream under different message ids, as
    // they would once the duplicate window has passed.
    for copy in 0..3 {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("copy-{copy}").as_str());
        let body = envelope.encode_to_vec();
        signer().seal(&body, &mut headers);
        js.publish_with_headers(bus_cfg.subject(&envelope.event_type), headers, body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    let spec = ConsumerSpec::new("effects", "fund.*");
    let consumer = Consumer::new(
        pool.clone(),
        js.clone(),
        bus_cfg.clone(),
        "test",
        spec,
        recording(),
        event_keys(),
    );
    let task = tokio::spawn(consumer.run(stop.clone()));

    eventually(Duration::from_secs(20), "the consumer to drain", || async {
        message_count(&js, &bus_cfg).await == 5
            && consumer_idle(&js, &bus_cfg.stream_name, "effects").await
    })
    .await;
    let applied: Vec<String> = sqlx::query_scalar("SELECT event_id FROM effects ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    // Order across the copies is the stream's; what matters is once each.
    let mut sorted = applied.clone();
    sorted.sort();
    let mut expected = vec![envelope.event_id.clone(), other.event_id.clone()];
    expected.sort();
    assert_eq!(sorted, expected);

    stop.cancel();
    relay.await.unwrap();
    task.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

#[tokio::test]
async fn a_failing_message_is_dead_lettered_with_its_error_and_the_rest_go_on() {
    // Installed before the first delivery: the redeliveries and dead letters are counted.
    let recorder = kechuang_platform::metrics::install();
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let transient = append_one(&pool, "poison-transient", 1).await;
    let permanent = append_one(&pool, "poison-permanent", 1).await;
    for v in 1..=5 {
        append_one(&pool, "healthy", v).await;
    }
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    let spec = ConsumerSpec::new("dlq-test", "fund.*");
    let consumer = Consumer::new(
        pool.clone(),
        js.clone(),
        bus_cfg.clone(),
        "svc",
        spec,
        recording(),
        event_keys(),
    );
    let task = tokio::spawn(consumer.run(stop.clone()));

    let dlq = bus_cfg.dead_letter_subject("svc");
    eventually(
        Duration::from_secs(30),
        "two dead letters and five effects",
        || async {
            let letters = count_on_subject(&js, &bus_cfg.stream_name, &dlq).await;
            letters == 2 && effect_count(&pool).await == 5
        },
    )
    .await;

    let letters = messages_on_subject(&js, &bus_cfg.stream_name, &dlq).await;
    let by_event = |id: &str| {
        letters
            .iter()
            .find(|m| {
                kechuang_proto::events::Envelope::decode(m.payload.clone())
                    .map(|e| e.event_id == id)
                    .unwrap_or(false)
            })
            .expect("a dead letter for the event")
            .clone()
    };
    let t = by_event(&transient.event_id);
    assert_eq!(
        header(&t, "Kc-Dlq-Deliveries"),
        "3",
        "retried up to the bound"
    );
    assert!(header(&t, "Kc-Dlq-Error").contains("the ledger is on fire"));
    assert_eq!(
        header(&t, "Kc-Dlq-Subject"),
        bus_cfg.subject("fund.low_balance")
    );
    let p = by_event(&permanent.event_id);
    assert_eq!(
        header(&p, "Kc-Dlq-Deliveries"),
        "1",
        "a permanent error is not retried"
    );
    assert!(header(&p, "Kc-Dlq-Error").contains("makes no sense"));

    eventually(
        Duration::from_secs(10),
        "the consumer to settle",
        || async { consumer_idle(&js, &bus_cfg.stream_name, "dlq-test").await },
    )
    .await;
    // Counted as they happened: the transient failure delivered twice more, then given up;
    // the permanent one dead-lettered at once. (Labels unique to this test.)
    let exposition = recorder.render();
    let ours = [("service", "svc"), ("consumer", "dlq-test")];
    let count = |name: &str, reason: Option<&str>| {
        let mut labels = ours.to_vec();
        labels.extend(reason.map(|r| ("reason", r)));
        series_value(&exposition, name, &labels)
    };
    assert_eq!(
        count("kc_consumer_redeliveries_total", None),
        Some(2.0),
        "{exposition}"
    );
    assert_eq!(count("kc_dead_letters_total", Some("exhausted")), Some(1.0));
    assert_eq!(count("kc_dead_letters_total", Some("permanent")), Some(1.0));
    assert_eq!(count("kc_dead_letters_total", Some("unauthentic")), None);
    stop.cancel();
    relay.await.unwrap();
    task.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}

pub(crate) fn header(m: &async_nats::jetstream::message::StreamMessage, name: &str) -> String {
    m.headers
        .get(name)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

pub(crate) async fn messages_on_subject(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    for seq in 1..=last {
        if let Ok(m) = stream.get_raw_message(seq).await
            && m.subject.as_str() == subject
        {
            out.push(m);
        }
    }
    out
}

async fn count_on_subject(
    js: &async_nats::jetstream::Context,
    stream: &str,
    subject: &str,
) -> usize {
    messages_on_subject(js, stream, subject).await.len()
}

/// Records the most handlers it saw running at once; each waits (bounded) for company.
struct Overlapping {
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
    company: tokio::sync::Notify,
}

impl kechuang_platform::EventHandler for Overlapping {
    async fn handle(
        &self,
        event: &kechuang_proto::events::Envelope,
        tx: &mut sqlx::PgConnection,
    ) -> Result<(), kechuang_platform::HandlerError> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        self.company.notify_waiters();
        if now < 2 {
            // Not a timing assertion: without a second handler the wait just ends.
            let _ = tokio::time::timeout(Duration::from_secs(2), self.company.notified()).await;
        }
        sqlx::query("INSERT INTO effects (event_id, aggregate_id) VALUES ($1, $2)")
            .bind(&event.event_id)
            .bind(&event.aggregate_id)
            .execute(&mut *tx)
            .await?;
        self.running.fetch_sub(1, SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_parallel_consumer_handles_several_at_once_and_each_event_once() {
    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let mut expected = Vec::new();
    for n in 0..12 {
        expected.push(append_one(&pool, &format!("fund-{n}"), 1).await.event_id);
    }
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    let handler = std::sync::Arc::new(Overlapping {
        running: Default::default(),
        most: Default::default(),
        company: Default::default(),
    });
    let spec = ConsumerSpec::new("parallel", "fund.*").in_parallel(4);
    let consumer = Consumer::new(
        pool.clone(),
        js.clone(),
        bus_cfg.clone(),
        "test",
        spec,
        handler.clone(),
        event_keys(),
    );
    let task = tokio::spawn(consumer.run(stop.clone()));
    eventually(Duration::from_secs(30), "the consumer to drain", || async {
        effect_count(&pool).await == 12
            && consumer_idle(&js, &bus_cfg.stream_name, "parallel").await
    })
    .await;
    let mut applied: Vec<String> = sqlx::query_scalar("SELECT event_id FROM effects")
        .fetch_all(&pool)
        .await
        .unwrap();
    applied.sort();
    expected.sort();
    assert_eq!(applied, expected, "each event once");
    let most = handler.most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=4).contains(&most), "{most} handlers ran at once");

    stop.cancel();
    relay.await.unwrap();
    task.await.unwrap();
    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}
