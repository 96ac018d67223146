//! Prometheus metrics. One recorder per process ([`install`]), served at `/metrics` on a port
//! of its own ([`MetricsServer`], `KC_METRICS_PORT`); every series carries the `service` it is
//! about, so `kechuang up` (four services and the gateway in one process) needs one endpoint.
//!
//! What is measured, and where:
//! - [`rpc`]: every gRPC call by method and status code, a tower layer on each server.
//! - [`sampler`]: gauges that take a query, sampled every `KC_METRICS_SAMPLE_SECS`: the
//!   outbox's backlog and the age of its oldest row, each durable consumer's pending and
//!   ack-pending messages, and what a service adds with [`crate::ServiceRuntime::sample`]
//!   (fund balances, the embedding backlog).
//! - Counters where things happen: redeliveries and dead letters (`consumer.rs`), payout
//!   attempts and failures (subsidy), HTTP requests (gateway), tables a service analyzed
//!   itself (`crate::upkeep`).
//!
//! Until [`install`] runs, every metric is a no-op: libraries and tests that serve no metrics
//! pay nothing. docs/operations.md lists the series.

pub mod rpc;
pub mod sampler;
mod server;

pub use sampler::{Probe, Sample};
pub use server::MetricsServer;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// gRPC calls: a histogram by `service`, `method` and `code` (its `_count` is the call count).
pub const RPC_DURATION: &str = "kc_rpc_duration_seconds";
/// Unsent outbox rows of a service's database (counted up to [`sampler::BACKLOG_CAP`]).
pub const OUTBOX_BACKLOG: &str = "kc_outbox_backlog";
/// Age of the oldest unsent outbox row; 0 when the outbox is empty.
pub const OUTBOX_OLDEST_AGE: &str = "kc_outbox_oldest_age_seconds";
/// Messages of a durable consumer's subjects not yet delivered to it.
pub const CONSUMER_PENDING: &str = "kc_consumer_pending_messages";
/// Messages delivered to a durable consumer and not yet acknowledged.
pub const CONSUMER_ACK_PENDING: &str = "kc_consumer_ack_pending_messages";
/// Deliveries after the first, as this process received them.
pub const REDELIVERIES: &str = "kc_consumer_redeliveries_total";
/// Messages copied to the dead-letter subject, by `reason`.
pub const DEAD_LETTERS: &str = "kc_dead_letters_total";
/// Tables a service analyzed itself, by `action` (`crate::upkeep`).
pub const TABLE_UPKEEP: &str = "kc_table_upkeep_total";
/// HTTP requests to the gateway: a histogram by `route`, `method` and `status`.
pub const HTTP_DURATION: &str = "kc_http_request_duration_seconds";
/// Requests applied per group-committed transaction (a fund's ledger batch), by `service`:
/// 1 when quiet, more when busy.
pub const BATCH_SIZE: &str = "kc_batch_size";

/// Buckets of [`BATCH_SIZE`]: powers of two up to the largest batch a service forms.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Buckets of every `_seconds` histogram: 1 ms (a read served from memory) to 30 s (the
/// default request timeout); a watch that outlives it lands in `+Inf`.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder, once; later calls return the same handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .set_buckets_for_metric(Matcher::Full(BATCH_SIZE.into()), &BATCH_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if let Err(e) = ::metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed: /metrics stays empty");
        }
        describe();
        handle
    })
}

/// Whether this process records metrics (someone will serve them).
pub fn installed() -> bool {
    HANDLE.get().is_some()
}

/// Counts `tables` that `service` tended by `action` (analyze). Called with 0 when the upkeep
/// starts, so that the series exists (a quiet service shows 0, not nothing).
pub fn count_upkeep(service: &'static str, action: &'static str, tables: usize) {
    ::metrics::counter!(TABLE_UPKEEP, "service" => service, "action" => action)
        .increment(tables as u64);
}

/// The HELP line of a service's own gauge (a [`Probe`]'s), for services that record through
/// the sampler only. A no-op before [`install`].
pub fn describe_gauge(name: &'static str, help: &'static str) {
    ::metrics::describe_gauge!(name, help);
}

/// The HELP lines of the platform's own series.
fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        RPC_DURATION,
        Unit::Seconds,
        "gRPC calls by method and status code, from the request to the last byte of the answer"
    );
    describe_gauge!(OUTBOX_BACKLOG, "Unsent rows in the service's outbox");
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest unsent outbox row (0: none)"
    );
    describe_gauge!(
        CONSUMER_PENDING,
        "Messages of the durable consumer's subjects not yet delivered"
    );
    describe_gauge!(
        CONSUMER_ACK_PENDING,
        "Messages delivered to the durable consumer, not yet acknowledged"
    );
    describe_counter!(REDELIVERIES, "Deliveries of a message after its first");
    describe_counter!(DEAD_LETTERS, "Messages dead-lettered, by reason");
    describe_counter!(
        TABLE_UPKEEP,
        "Tables the service analyzed itself (the planner had their size wrong), by action"
    );
    describe_histogram!(
        BATCH_SIZE,
        "Requests applied per group-committed transaction"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Gateway HTTP requests by route, method and status"
    );
}
