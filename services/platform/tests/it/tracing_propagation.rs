use crate::helpers::*;
use kechuang_platform::consumer::{Consumer, ConsumerSpec};
use kechuang_platform::outbox::Relay;
use kechuang_platform::telemetry;
use opentelemetry::trace::SpanId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

// One thread, so the thread-local subscriber sees the relay's and the consumer's spans too.
#[tokio::test(flavor = "current_thread")]
async fn the_span_around_a_publish_is_the_parent_of_the_consuming_handler() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber =
        tracing_subscriber::registry().with(telemetry::otel_layer(&provider, "trace-test"));
    let _guard = tracing::subscriber::set_default(subscriber);

    let (pool, db_name) = test_db().await;
    let bus_cfg = test_bus(NATS);
    let js = provisioned(&bus_cfg).await;
    let stop = CancellationToken::new();
    let relay = tokio::spawn(
        Relay::new(pool.clone(), js.clone(), bus_cfg.clone(), signer()).run(stop.clone()),
    );
    let spec = ConsumerSpec::new("traced", "fund.*");
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

    let envelope = async { append_one(&pool, "traced-fund", 1).await }
        .instrument(tracing::info_span!("publish"))
        .await;
    eventually(Duration::from_secs(20), "the handler to run", || async {
        effect_count(&pool).await == 1
    })
    .await;
    stop.cancel();
    relay.await.unwrap();
    task.await.unwrap();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let publish = spans
        .iter()
        .find(|s| s.name == "publish")
        .expect("publish span");
    let handler = spans
        .iter()
        .find(|s| s.name == "handle_event")
        .expect("handler span");
    assert_ne!(publish.span_context.span_id(), SpanId::INVALID);
    assert_eq!(handler.parent_span_id, publish.span_context.span_id());
    assert_eq!(
        handler.span_context.trace_id(),
        publish.span_context.trace_id()
    );
    assert!(
        handler
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "event_id"
                && kv.value.as_str() == envelope.event_id.as_str())
    );

    delete_stream(&js, &bus_cfg).await;
    drop_db(pool, &db_name).await;
}
