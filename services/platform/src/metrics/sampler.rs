//! Gauges that take a query, sampled by one task per service every `KC_METRICS_SAMPLE_SECS`
//! rather than at scrape time: a scrape never waits on the database, and however often (or by
//! however many Prometheus servers) the endpoint is scraped, a service asks the same few cheap
//! questions: two index reads of its outbox, one JetStream consumer info per durable, and its
//! own [`Probe`]s.

use super::{CONSUMER_ACK_PENDING, CONSUMER_PENDING, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE};
use crate::config::BacklogLimits;
use async_nats::jetstream::Context as JetStream;
use futures::future::BoxFuture;
use metrics::Label;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Outbox rows counted at most. A backlog of millions (NATS down for hours) would otherwise be
/// scanned whole at every sample; past the cap the gauge stays there and the oldest row's age
/// says how far behind the relay is.
pub const BACKLOG_CAP: i64 = 100_000;

/// The health name that says whether a service keeps up with its events: `SERVING` while
/// its outbox's oldest unsent event and each durable consumer's waiting messages are within
/// [`BacklogLimits`], `NOT_SERVING` while they are not. The service itself stays `SERVING`
/// and keeps accepting requests (the outbox holds the work); this says it lags, for probes
/// and operators (docs/operations.md).
pub const BACKLOG_HEALTH: &str = "kechuang.v1.EventBacklog";

/// A sample that takes longer is abandoned (and logged): the next one starts on time.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One value of a service's own gauge; the sampler adds the `service` label.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A service's own gauges, read from its database at every sample. Keep it bounded: one or
/// two indexed queries, a bounded number of series.
pub type Probe =
    Arc<dyn Fn(PgPool) -> BoxFuture<'static, Result<Vec<Sample>, sqlx::Error>> + Send + Sync>;

/// The sampling task of one service.
pub struct Sampler {
    pub service: &'static str,
    pub pool: PgPool,
    pub jetstream: JetStream,
    pub stream_name: String,
    /// The service's durable consumers.
    pub consumers: Vec<String>,
    pub probes: Vec<Probe>,
    pub every: Duration,
    /// Where [`BACKLOG_HEALTH`] is reported (none: gauges only).
    pub health: Option<tonic_health::server::HealthReporter>,
    pub backlog: BacklogLimits,
}

impl Sampler {
    /// Samples at once, then every `every`, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failing = false;
        let mut lagging: Option<String> = None;
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            // Nobody will read the gauges or the health (a library's user): spare the queries.
            if !super::installed() && self.health.is_none() {
                continue;
            }
            let outcome = match tokio::time::timeout(SAMPLE_TIMEOUT, self.sample()).await {
                Ok(outcome) => outcome,
                Err(_) => Err(format!("no answer within {SAMPLE_TIMEOUT:?}")),
            };
            // One line when sampling starts failing and one when it recovers, not one a tick.
            let outcome = match outcome {
                Ok(lag) => {
                    self.report_lag(&lagging, &lag).await;
                    lagging = lag;
                    Ok(())
                }
                Err(e) => Err(e),
            };
            match outcome {
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(service = self.service, error = %e, "cannot sample the metrics' gauges; they keep their last values");
                }
                Err(e) => {
                    tracing::debug!(service = self.service, error = %e, "sampling still fails")
                }
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!(service = self.service, "sampling the metrics' gauges again");
                }
                Ok(()) => {}
            }
        }
    }

    /// Says when the service starts or stops lagging: its health, and one log line.
    async fn report_lag(&self, before: &Option<String>, now: &Option<String>) {
        if before.is_some() == now.is_some() {
            return;
        }
        match now {
            Some(why) => {
                tracing::warn!(service = self.service, lag = %why, "lagging behind its events")
            }
            None => tracing::info!(service = self.service, "caught up with its events"),
        }
        if let Some(health) = &self.health {
            let status = if now.is_some() {
                tonic_health::ServingStatus::NotServing
            } else {
                tonic_health::ServingStatus::Serving
            };
            health.set_service_status(BACKLOG_HEALTH, status).await;
        }
    }

    /// One sample of every gauge, and why the service lags, if it does; the first failure
    /// ends it (the rest keep their values).
    async fn sample(&self) -> Result<Option<String>, String> {
        let (backlog, oldest_age) = outbox(&self.pool).await.map_err(|e| e.to_string())?;
        ::metrics::gauge!(OUTBOX_BACKLOG, "service" => self.service).set(backlog as f64);
        ::metrics::gauge!(OUTBOX_OLDEST_AGE, "service" => self.service).set(oldest_age);
        let stream = self
            .jetstream
            .get_stream_no_info(&self.stream_name)
            .await
            .map_err(|e| e.to_string())?;
        let mut waiting = Vec::with_capacity(self.consumers.len());
        for consumer in &self.consumers {
            // A consumer not created yet (its task is still connecting) has nothing to show.
            let Ok(info) = stream.consumer_info(consumer).await else {
                continue;
            };
            let labels = vec![
                Label::new("service", self.service),
                Label::new("consumer", consumer.clone()),
            ];
            ::metrics::gauge!(CONSUMER_PENDING, labels.clone()).set(info.num_pending as f64);
            ::metrics::gauge!(CONSUMER_ACK_PENDING, labels).set(info.num_ack_pending as f64);
            waiting.push((consumer.as_str(), info.num_pending));
        }
        for probe in &self.probes {
            for sample in probe(self.pool.clone()).await.map_err(|e| e.to_string())? {
                ::metrics::gauge!(sample.name, labels_of(self.service, &sample)).set(sample.value);
            }
        }
        Ok(lag(&self.backlog, oldest_age, &waiting))
    }
}

/// Why a service lags behind its events, if it does: its oldest unsent event has waited
/// longer than the limit, or a durable consumer has more messages waiting than the limit.
pub fn lag(
    limits: &BacklogLimits,
    oldest_unsent_age_secs: f64,
    waiting: &[(&str, u64)],
) -> Option<String> {
    let mut reasons = Vec::new();
    if oldest_unsent_age_secs > limits.max_age.as_secs_f64() {
        reasons.push(format!(
            "the oldest unsent event has waited {oldest_unsent_age_secs:.0} s (limit {} s)",
            limits.max_age.as_secs()
        ));
    }
    for (consumer, pending) in waiting {
        if *pending > limits.max_pending {
            reasons.push(format!(
                "consumer {consumer} has {pending} messages waiting (limit {})",
                limits.max_pending
            ));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The sample's labels after the service's.
fn labels_of(service: &'static str, sample: &Sample) -> Vec<Label> {
    std::iter::once(Label::new("service", service))
        .chain(
            sample
                .labels
                .iter()
                .map(|(key, value)| Label::new(*key, value.clone())),
        )
        .collect()
}

/// Unsent outbox rows (at most [`BACKLOG_CAP`]) and the age of the oldest in seconds (0 when
/// there is none): both read the primary key's index, the count stopping at the cap.
pub async fn outbox(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM outbox LIMIT $1) AS capped), \
                COALESCE((SELECT extract(epoch FROM now() - created_at)::float8 \
                          FROM outbox ORDER BY id LIMIT 1), 0)",
    )
    .bind(BACKLOG_CAP)
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BacklogLimits = BacklogLimits {
        max_age: Duration::from_secs(60),
        max_pending: 100,
    };

    #[test]
    fn a_service_within_its_limits_does_not_lag() {
        assert_eq!(lag(&LIMITS, 0.0, &[]), None);
        assert_eq!(lag(&LIMITS, 60.0, &[("fund", 100), ("contracts", 0)]), None);
    }

    #[test]
    fn an_old_unsent_event_or_a_long_queue_is_lag_and_each_is_named() {
        let old = lag(&LIMITS, 61.5, &[("fund", 3)]).unwrap();
        assert!(old.contains("62 s") && old.contains("limit 60 s"), "{old}");
        let queue = lag(&LIMITS, 1.0, &[("fund", 101), ("contracts", 5)]).unwrap();
        assert!(
            queue.contains("consumer fund has 101") && !queue.contains("contracts"),
            "{queue}"
        );
        let both = lag(&LIMITS, 100.0, &[("fund", 500)]).unwrap();
        assert!(
            both.contains("waited") && both.contains("consumer fund"),
            "{both}"
        );
    }
}
