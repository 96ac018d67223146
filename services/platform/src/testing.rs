//! Test support (feature `testing`): start one real service on port 0 against a fresh
//! database and a private stream, feed it events, watch what it emits, clean up.

use crate::auth::Role;
use crate::config::{ServiceConfig, ServiceKind, Settings};
use crate::events::NewEvent;
use crate::runtime::ServiceRuntime;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, Context as JetStream};
use kechuang_proto::events::Envelope;
use prost::Message;
use sqlx::PgPool;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Settings private to one test: own databases, stream, subject prefix, key; ports from the OS.
pub fn isolated_settings() -> Settings {
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let settings = Settings {
        database_prefix: format!("kct_{id}_"),
        stream_name: format!("T_{}", id.to_uppercase()),
        subject_prefix: format!("t{id}"),
        demand_port: 0,
        matching_port: 0,
        subsidy_port: 0,
        fund_port: 0,
        gateway_port: 0,
        metrics_port: 0,
        metrics_sample_secs: 1,
        max_deliver: 3,
        redelivery_backoff_ms: 50,
        database_max_connections: 8,
        event_keys: Some(test_event_keys(&id).display().to_string()),
        ..Settings::default()
    };
    with_test_issuer(settings)
}

/// `settings` with a token issuer of their own: its key and key set in their event key
/// directory, so that their services trust these tokens alone.
pub fn with_test_issuer(mut settings: Settings) -> Settings {
    let dir = std::path::PathBuf::from(settings.event_keys.as_deref().expect("test event keys"));
    let key = dir.join("issuer.key.pem");
    let issuer =
        crate::auth::Issuer::load_or_create(&key, settings.tokens().rules).expect("a test issuer");
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks()).expect("the test key set");
    settings.token_signing_key = Some(key.display().to_string());
    settings.token_jwks_file = Some(jwks.display().to_string());
    settings
}

/// A token of `settings`' issuer for `subject` in `role`, valid for an hour.
pub fn token(
    settings: &Settings,
    role: Role,
    subject: &str,
    enterprise_id: Option<&str>,
) -> String {
    settings.issuer().expect("the test issuer").mint_for(
        role,
        subject,
        enterprise_id,
        Duration::from_secs(3600),
    )
}

/// A fresh set of every service's event keys for one test, under the system's temp directory
/// (removed by [`cleanup`]).
pub fn test_event_keys(id: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join("kechuang-test-keys").join(id);
    crate::seal::generate(&dir, &ServiceKind::names()).expect("test event keys");
    dir
}

/// The event keys of `producer` in `settings`' key directory.
pub fn event_keys_of(settings: &Settings, producer: &str) -> crate::seal::EventKeys {
    let dir = settings
        .event_keys
        .as_deref()
        .expect("settings with event keys");
    crate::seal::EventKeys::load(dir.as_ref(), producer, &ServiceKind::names())
        .expect("the test event keys")
}

/// Every service's signer from `settings`' key directory, read once: a test publishes as any
/// producer without reading the keys again for each event.
pub fn signers(settings: &Settings) -> std::collections::HashMap<String, crate::seal::Signer> {
    ServiceKind::names()
        .into_iter()
        .map(|name| (name.to_string(), event_keys_of(settings, name).signer()))
        .collect()
}

/// Headers that make `envelope` authentic: its entitled producer's signature (or, for an
/// attack, whichever `signer` is given).
pub fn sealed_headers(signer: &crate::seal::Signer, body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::new_v4().to_string().as_str());
    signer.seal(body, &mut headers);
    headers
}

/// Drops a test's databases and stream.
pub async fn cleanup(settings: &Settings) {
    if let Ok(admin) = PgPool::connect(&format!("{}/postgres", settings.database_url)).await {
        let services = ServiceKind::ALL.map(|kind| settings.service(kind).database.name);
        for name in services
            .into_iter()
            .chain([settings.gateway().database.name])
        {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
        }
        admin.close().await;
    }
    if let Some(dir) = &settings.event_keys {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Ok(client) = async_nats::connect(&settings.nats_url).await {
        let _ = jetstream::new(client)
            .delete_stream(&settings.stream_name)
            .await;
    }
}

/// Makes a test database record every outbox row as it is written, in `outbox_written`: the
/// relay deletes rows once JetStream has them, and tests still count what a service wrote.
/// Rows already in the outbox are recorded too; a row its relay has already published and
/// deleted is not, so install it before the service starts.
pub async fn tap_outbox(pool: &PgPool) {
    sqlx::raw_sql(include_str!("../testing/outbox_tap.sql"))
        .execute(pool)
        .await
        .expect("the outbox tap");
}

/// Outbox rows of `event_type` written since [`tap_outbox`].
pub async fn outbox_written(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_written WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .expect("the outbox tap")
}

pub use crate::auth::authed;

/// One service, running for a test.
pub struct TestService {
    pub settings: Settings,
    pub config: ServiceConfig,
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub jetstream: JetStream,
    signers: std::collections::HashMap<String, crate::seal::Signer>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestService {
    /// Builds the service with `build` (its crate's `build`) and runs it in the background.
    pub async fn start<F, Fut>(kind: ServiceKind, build: F) -> Self
    where
        F: FnOnce(ServiceConfig) -> Fut,
        Fut: Future<Output = anyhow::Result<ServiceRuntime>>,
    {
        Self::start_with(isolated_settings(), kind, build).await
    }

    pub async fn start_with<F, Fut>(settings: Settings, kind: ServiceKind, build: F) -> Self
    where
        F: FnOnce(ServiceConfig) -> Fut,
        Fut: Future<Output = anyhow::Result<ServiceRuntime>>,
    {
        let config = settings.service(kind);
        // The tap goes in before the service starts: one writes an event as it starts (the
        // default fund), and its relay could publish and delete that row before a tap
        // installed later saw it. The platform's migrations create the outbox; the service's
        // own may already be there (a second replica).
        let mut no_service_migrations = sqlx::migrate::Migrator::with_migrations(Vec::new());
        no_service_migrations.set_ignore_missing(true);
        let early = crate::db::connect(&config.database, &no_service_migrations)
            .await
            .expect("the test database");
        tap_outbox(&early).await;
        early.close().await;
        let runtime = build(config.clone()).await.expect("service starts");
        let addr = runtime.local_addr();
        let pool = runtime.pool.clone();
        let jetstream = runtime.jetstream.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime.run_until_stopped(shutdown.clone()));
        Self {
            signers: signers(&settings),
            settings,
            config,
            addr,
            pool,
            jetstream,
            shutdown,
            task: Some(task),
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to the service")
    }

    pub fn token(&self, role: Role, subject: &str, enterprise_id: Option<&str>) -> String {
        token(&self.settings, role, subject, enterprise_id)
    }

    /// Puts an event on the bus as the service entitled to it would: named and signed as
    /// that producer.
    pub async fn publish(&self, event: NewEvent) -> Envelope {
        use kechuang_proto::EventType;
        let producer = event.payload.producer();
        let envelope = event.into_envelope(producer, chrono::Utc::now());
        self.publish_envelope(&envelope).await;
        envelope
    }

    /// Publishes `envelope` as is, signed by the producer it names (again, to simulate a
    /// redelivery past the dedup window).
    pub async fn publish_envelope(&self, envelope: &Envelope) {
        let signer = self
            .signers
            .get(&envelope.producer)
            .unwrap_or_else(|| panic!("no key of producer {:?}", envelope.producer));
        let body = envelope.encode_to_vec();
        let headers = sealed_headers(signer, &body);
        self.publish_raw(
            &self.config.bus.subject(&envelope.event_type),
            headers,
            body,
        )
        .await;
    }

    /// Publishes bytes with headers on a subject as anyone with access to NATS could.
    pub async fn publish_raw(&self, subject: &str, headers: HeaderMap, body: Vec<u8>) {
        self.jetstream
            .publish_with_headers(subject.to_string(), headers, body.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
    }

    /// Every envelope in the stream so far, in stream order (dead letters excluded).
    pub async fn events(&self) -> Vec<Envelope> {
        stream_envelopes(
            &self.jetstream,
            &self.config.bus.stream_name,
            &self.config.bus.subject_prefix,
        )
        .await
    }

    /// Waits until an event of `event_type` satisfying `matches` is in the stream.
    pub async fn wait_for_event(
        &self,
        event_type: &str,
        matches: impl Fn(&Envelope) -> bool,
    ) -> Envelope {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self
                .events()
                .await
                .into_iter()
                .find(|e| e.event_type == event_type && matches(e))
            {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {event_type} event within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Events of `event_type` in the stream.
    pub async fn events_of(&self, event_type: &str) -> Vec<Envelope> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .collect()
    }

    /// Stops the service and drops its database and stream.
    /// Stops the service but keeps its database and stream, as a crash or a restart would;
    /// start it again with [`TestService::start_with`] and the settings returned.
    pub async fn halt(mut self) -> Settings {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("clean stop");
        }
        self.settings.clone()
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("clean stop");
        }
        cleanup(&self.settings).await;
    }
}

/// Reads every domain event of a stream (not dead letters), in order.
pub async fn stream_envelopes(js: &JetStream, stream: &str, prefix: &str) -> Vec<Envelope> {
    let Ok(mut stream) = js.get_stream(stream).await else {
        return Vec::new();
    };
    let Ok(info) = stream.info().await else {
        return Vec::new();
    };
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    let dlq = format!("{prefix}.dlq.");
    let mut out = Vec::new();
    for seq in first.max(1)..=last {
        if let Ok(m) = stream.get_raw_message(seq).await
            && !m.subject.as_str().starts_with(&dlq)
            && let Ok(envelope) = Envelope::decode(m.payload)
        {
            out.push(envelope);
        }
    }
    out
}

/// Polls `probe` every 50 ms until it answers; panics naming `what` after 60 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` every 25 ms until it holds; panics naming `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The value of one series in a Prometheus text exposition: the line of metric `name` whose
/// labels include every one of `labels` (in any order).
pub fn series_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        let wanted = labels.iter().all(|(k, v)| {
            let pair = format!("{k}=\"{v}\"");
            rest.starts_with(&pair) || rest.contains(&format!(",{pair}"))
        });
        (metric == name && wanted).then(|| value.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_found_by_name_and_labels() {
        let exposition = "# TYPE kc_x counter\n\
                          kc_x{service=\"a\",reason=\"p\"} 3\n\
                          kc_x{service=\"b\",reason=\"p\"} 4\n\
                          kc_x_total 5\n";
        assert_eq!(
            series_value(exposition, "kc_x", &[("service", "b")]),
            Some(4.0)
        );
        assert_eq!(
            series_value(exposition, "kc_x", &[("reason", "p"), ("service", "a")]),
            Some(3.0)
        );
        assert_eq!(series_value(exposition, "kc_x_total", &[]), Some(5.0));
        assert_eq!(series_value(exposition, "kc_x", &[("service", "c")]), None);
        assert_eq!(series_value(exposition, "kc_x", &[("ervice", "a")]), None);
    }
}
