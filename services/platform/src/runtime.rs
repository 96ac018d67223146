//! What every service does to run: database and migrations, NATS and the stream, the outbox
//! relay, its consumers, and a gRPC server with auth, health, reflection, a span per RPC, the
//! limits of [`crate::limits`] and metrics ([`crate::metrics`]: each call timed, the queues
//! sampled).

use crate::auth::{AuthInterceptor, Authenticator};
use crate::config::{ServiceConfig, ServiceKind};
use crate::consumer::{Consumer, ConsumerSpec, EventHandler, Grouped};
use crate::limits::grpc::LimitLayer;
use crate::limits::{Admission, WriteLimiter};
use crate::metrics::rpc::RpcMetricsLayer;
use crate::metrics::sampler::{Probe, Sample, Sampler};
use crate::outbox::{Handover, Relay};
use crate::seal::EventKeys;
use crate::{bus, db, telemetry};
use async_nats::jetstream::Context as JetStream;
use futures::FutureExt;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::Routes;
use tonic_health::ServingStatus;

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Services every server answers besides its own API.
const REFLECTED_ALWAYS: [&str; 3] = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// A started service: connected, migrated, listening, relaying. Add its gRPC routes and
/// consumers, then [`run_until_stopped`].
///
/// [`run_until_stopped`]: ServiceRuntime::run_until_stopped
pub struct ServiceRuntime {
    pub config: ServiceConfig,
    pub pool: PgPool,
    pub jetstream: JetStream,
    pub authenticator: Arc<Authenticator>,
    /// This service's signing key and every producer's public key.
    pub event_keys: Arc<EventKeys>,
    /// Where the service hands the events of aggregates it creates to its relay.
    pub handover: Handover,
    listener: TcpListener,
    routes: Option<Routes>,
    health_names: Vec<String>,
    /// Components reported under their own health names (see `report_component`).
    components: Vec<(String, bool)>,
    /// The durable consumers started, whose lag the sampler reads.
    durables: Vec<String>,
    /// The service's own gauges (see `sample`).
    probes: Vec<Probe>,
    background: CancellationToken,
    tasks: TaskTracker,
}

impl ServiceRuntime {
    /// Connects everything the service needs and starts its outbox relay.
    pub async fn start(config: ServiceConfig, migrator: &Migrator) -> anyhow::Result<Self> {
        let name = config.kind.name();
        // Before anything is created: a service without its keys must not start at all.
        let event_keys = Arc::new(load_event_keys(&config)?);
        let pool = db::connect(&config.database, migrator).await?;
        let jetstream = bus::connect(&config.bus, name).await?;
        bus::ensure_stream(&jetstream, &config.bus).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| cannot_listen(name, config.listen, &e))?;
        let authenticator = Arc::new(
            config
                .tokens
                .authenticator()
                .await
                .map_err(|e| anyhow::anyhow!("{name}: {e}"))?,
        );
        let background = CancellationToken::new();
        let tasks = TaskTracker::new();
        let relay = Relay::new(
            pool.clone(),
            jetstream.clone(),
            config.bus.clone(),
            event_keys.signer(),
        );
        let handover = relay.handover();
        tasks.spawn(relay.run(background.clone()));
        tasks.spawn(crate::upkeep::run(pool.clone(), name, background.clone()));
        Ok(Self {
            config,
            pool,
            jetstream,
            authenticator,
            event_keys,
            handover,
            listener,
            routes: None,
            health_names: Vec::new(),
            components: Vec::new(),
            durables: Vec::new(),
            probes: Vec::new(),
            background,
            tasks,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn interceptor(&self) -> AuthInterceptor {
        AuthInterceptor::new(self.authenticator.clone())
    }

    /// Starts a durable consumer. Its durable name is prefixed with the service's name.
    pub fn consume<H: EventHandler>(
        &mut self,
        durable_suffix: &str,
        event_types: &str,
        handler: Arc<H>,
    ) {
        self.consume_in_parallel(durable_suffix, event_types, handler, 1);
    }

    /// As [`consume`](Self::consume), handling up to `parallelism` messages at a time: for
    /// independent events whose handlers take CPU time (the stream's order is not kept).
    pub fn consume_in_parallel<H: EventHandler>(
        &mut self,
        durable_suffix: &str,
        event_types: &str,
        handler: Arc<H>,
        parallelism: usize,
    ) {
        let spec = ConsumerSpec::new(
            format!("{}-{}", self.config.kind.name(), durable_suffix),
            event_types,
        )
        .in_parallel(parallelism);
        self.durables.push(spec.durable_name.clone());
        let consumer = Consumer::new(
            self.pool.clone(),
            self.jetstream.clone(),
            self.config.bus.clone(),
            self.config.kind.name(),
            spec,
            handler,
            self.event_keys.clone(),
        );
        self.tasks.spawn(consumer.run(self.background.clone()));
    }

    /// Starts one durable consumer per `(durable suffix, event types)` in `subscriptions`,
    /// each handling up to `parallelism` messages at a time, whose events `handler` applies in
    /// groups ([`Grouped`]): the events that arrive while the previous group commits share a
    /// transaction. For independent events (the stream's order is not kept) whose handler's
    /// whole effect is its `handle`.
    pub fn consume_grouped<H: EventHandler>(
        &mut self,
        subscriptions: &[(&str, &str)],
        handler: Arc<H>,
        parallelism: usize,
    ) {
        let (grouped, committer) = Grouped::new(handler);
        let pool = self.pool.clone();
        self.spawn(move |cancel| committer.run(pool, cancel));
        for (suffix, event_types) in subscriptions {
            self.consume_in_parallel(suffix, event_types, grouped.clone(), parallelism);
        }
    }

    /// Spawns a background task stopped with the service.
    pub fn spawn<F>(&self, task: impl FnOnce(CancellationToken) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.background.clone()));
    }

    /// Adds gauges of the service's own to those sampled every `metrics_sample_every` (see
    /// [`crate::metrics::sampler`]): `probe` reads them from the service's database.
    pub fn sample<F, Fut>(&mut self, probe: F)
    where
        F: Fn(PgPool) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Vec<Sample>, sqlx::Error>> + Send + 'static,
    {
        self.probes
            .push(Arc::new(move |pool: PgPool| probe(pool).boxed()));
    }

    /// Sets the service's gRPC routes; `health_names` are reported `SERVING` while it runs.
    pub fn set_routes(&mut self, routes: Routes, health_names: &[&str]) {
        self.routes = Some(routes);
        self.health_names = health_names.iter().map(|n| n.to_string()).collect();
    }

    /// Reports a component of the service under its own health name, `SERVING` or
    /// `NOT_SERVING` for as long as the service runs: a part that can be missing without the
    /// service being down (the sky net without its embedding model still matches on words).
    pub fn report_component(&mut self, health_name: &str, serving: bool) {
        self.components.push((health_name.to_string(), serving));
    }

    /// Serves the routes (plus health and reflection) until `shutdown`, then stops the relay
    /// and consumers, letting each finish what it has in hand.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let name = self.config.kind.name();
        let (health, health_service) = tonic_health::server::health_reporter();
        for service in &self.health_names {
            health
                .set_service_status(service, ServingStatus::Serving)
                .await;
        }
        // Keeping up until the first sample says otherwise.
        health
            .set_service_status(
                crate::metrics::sampler::BACKLOG_HEALTH,
                ServingStatus::Serving,
            )
            .await;
        for (component, serving) in &self.components {
            let status = if *serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            health.set_service_status(component, status).await;
        }
        // Reflection lists what this server serves, not every API of the platform, in both
        // versions (older grpcurl, Python's grpcio client and several GUIs speak v1alpha only).
        let reflection_of = |names: &[String]| {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(kechuang_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                );
            for name in names.iter().map(String::as_str).chain(REFLECTED_ALWAYS) {
                builder = builder.with_service_name(name);
            }
            builder
        };
        let reflection = reflection_of(&self.health_names).build_v1()?;
        let reflection_v1alpha = reflection_of(&self.health_names).build_v1alpha()?;
        let health_names = self.health_names.clone();
        let sampler = Sampler {
            service: name,
            pool: self.pool.clone(),
            jetstream: self.jetstream.clone(),
            stream_name: self.config.bus.stream_name.clone(),
            consumers: self.durables,
            probes: self.probes,
            every: self.config.metrics_sample_every,
            health: Some(health.clone()),
            backlog: self.config.backlog,
        };
        self.tasks.spawn(sampler.run(self.background.clone()));
        let stop = shutdown.clone();
        let limits = &self.config.limits;
        let admission = Admission::new(name, limits.max_connections, limits.handshake_timeout);
        let server = tonic::transport::Server::builder()
            .trace_fn(telemetry::grpc_request_span)
            // The client's `grpc-timeout` when shorter; CANCELLED when it runs out.
            .timeout(limits.request_timeout)
            .http2_keepalive_interval(Some(limits.keepalive_interval))
            .http2_keepalive_timeout(Some(limits.keepalive_timeout))
            .max_concurrent_streams(limits.max_concurrent_streams)
            // Outermost: calls the limits refuse are counted too.
            .layer(RpcMetricsLayer::new(name))
            .layer(LimitLayer::new(
                name,
                limits.max_concurrent_requests,
                WriteLimiter::new(limits.writes),
                self.authenticator.clone(),
            ))
            .add_routes(self.routes.unwrap_or_default())
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(admission.incoming(self.listener), async move {
                stop.cancelled().await;
                for service in health_names {
                    health
                        .set_service_status(service, ServingStatus::NotServing)
                        .await;
                }
            });
        // Graceful shutdown waits for clients to hang up; a watcher that never does must not
        // keep the service alive.
        let grace = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        let served = tokio::select! {
            served = server => served,
            _ = grace => {
                tracing::warn!(service = name, "clients still connected after {SHUTDOWN_GRACE:?}; closing");
                Ok(())
            }
        };
        self.background.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        self.pool.close().await;
        tracing::info!(service = name, "stopped");
        served.map_err(|e| anyhow::anyhow!("{name}: gRPC server failed: {e}"))
    }
}

/// Why a server cannot listen, and what to do about a port that is taken.
pub fn cannot_listen(name: &str, addr: SocketAddr, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        return anyhow::anyhow!(
            "{name}: cannot listen on {addr}: the port is taken. Another server may hold it, or an \
             outgoing connection: Linux hands out ports 32768-60999 to those, and the default \
             gRPC ports 50051-50054 lie in that range. Set KC_<SERVICE>_PORT (or \
             KC_GATEWAY_PORT) to a free port, or reserve the ports for good with \
             `sysctl -w net.ipv4.ip_local_reserved_ports=50051-50054`"
        );
    }
    anyhow::anyhow!("{name}: cannot listen on {addr}: {e}")
}

/// The service's event keys, or why it cannot start without them.
fn load_event_keys(config: &ServiceConfig) -> anyhow::Result<EventKeys> {
    let name = config.kind.name();
    let dir = config.event_keys.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "{name}: no event keys. Set KC_EVENT_KEYS to a directory holding {name}.key.pem and \
             every service's <service>.pub.pem (`kechuang event-keys DIR` writes a set)"
        )
    })?;
    Ok(EventKeys::load(dir, name, &ServiceKind::names())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_explained_with_the_setting_to_change() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let taken = std::net::TcpListener::bind(addr).unwrap_err();
        let message = cannot_listen("matching", addr, &taken).to_string();
        assert!(message.contains("the port is taken"), "{message}");
        assert!(message.contains("KC_<SERVICE>_PORT"), "{message}");
        let other = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        assert!(
            !cannot_listen("matching", addr, &other)
                .to_string()
                .contains("taken")
        );
    }
}
