//! The gateway: the finance office's console (审批, 资金, 漏斗, 审计) and the enterprises'
//! HTTP/JSON API. It is a client of the four services' public gRPC APIs like any other: it
//! never reads their databases, and every call carries the caller's own token, so the
//! services decide who may do what; the gateway only hides what a role may not do.

pub mod api;
pub mod console;
pub mod csrf;
pub mod desk;
pub mod health;
pub mod limits;
pub mod money;
pub mod oidc;
pub mod pages;
pub mod portal;
mod serve;
pub mod sessions;
pub mod stats;
pub mod status;
pub mod supplier;
pub mod upstream;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use kechuang_platform::GatewayConfig;
use kechuang_platform::auth::Authenticator;
use kechuang_platform::config::Limits;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub upstream: upstream::Upstream,
    /// Reads the role and subject of a pasted token, to show them and hide what they may not do.
    pub auth: Arc<Authenticator>,
    pub csrf: csrf::CsrfKey,
    /// The console's sign-ins, in the gateway's own database.
    pub sessions: sessions::Sessions,
    /// The per-caller write rate (none: unlimited).
    pub writes: Option<Arc<kechuang_platform::limits::WriteLimiter<limits::WriteKey>>>,
    /// The OpenID Connect provider people sign in with; none: a pasted token (development).
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// `kechuang up`'s development issuer: its development sign-in (never beside `oidc`).
    pub dev_issuer: Option<Arc<kechuang_platform::auth::Issuer>>,
}

/// The console and the API on one router, inside the request limits (see [`limits`]); the
/// probes outside them.
pub fn router(state: AppState, request_limits: &Limits) -> Router {
    let limited = Router::new()
        .merge(api::router())
        .merge(pages::router())
        .merge(console::router())
        .merge(portal::router())
        .merge(desk::router())
        .merge(supplier::router())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::write_rate,
        ));
    limits::guard(limited, request_limits)
        .merge(health::router())
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

async fn fallback(uri: axum::http::Uri) -> Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        api::not_found().await.into_response()
    } else {
        pages::not_found().await.into_response()
    }
}

/// Logs every request (debug) and times it into [`kechuang_platform::metrics::HTTP_DURATION`]
/// by route template (`/api/v1/demands/{id}`, never the path itself: the series stay bounded),
/// method and status.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    tracing::debug!(%method, path, status, elapsed_ms = elapsed.as_millis() as u64, "http");
    metrics::histogram!(
        kechuang_platform::metrics::HTTP_DURATION,
        "service" => "gateway",
        "route" => route,
        "method" => method_label(&method),
        "status" => status.to_string(),
    )
    .record(elapsed.as_secs_f64());
    response
}

/// The standard methods by name; any other (HTTP allows extension methods) is `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ]
    .iter()
    .find(|m| *m == method)
    .map_or("other", |m| m.as_str())
}

/// A bound, ready gateway; [`Gateway::run_until_stopped`] serves it.
pub struct Gateway {
    listener: TcpListener,
    app: Router,
    limits: Limits,
    sessions: sessions::Sessions,
}

impl Gateway {
    /// Binds the listen address and prepares clients of the services (connected on first use).
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        let csrf = csrf::CsrfKey::configured(config.csrf_key.as_deref())?;
        let upstream = upstream::Upstream::connect_lazy(&config)?;
        let sessions = sessions::Sessions::connect(&config.database, config.sessions)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "gateway: the session database {}: {e}",
                    config.database.name
                )
            })?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| kechuang_platform::runtime::cannot_listen("gateway", config.listen, &e))?;
        let state = AppState {
            sessions: sessions.clone(),
            upstream,
            auth: Arc::new(
                config
                    .tokens
                    .authenticator()
                    .await
                    .map_err(|e| anyhow::anyhow!("gateway: {e}"))?,
            ),
            csrf,
            writes: limits::writes(&config.limits),
            oidc: config
                .oidc
                .clone()
                .map(oidc::Oidc::new)
                .transpose()
                .map_err(|e| anyhow::anyhow!("gateway: {e}"))?
                .map(Arc::new),
            dev_issuer: config
                .dev_issuer
                .filter(|_| config.oidc.is_none())
                .map(|d| d.0),
        };
        Ok(Self {
            listener,
            app: router(state, &config.limits),
            limits: config.limits,
            sessions,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown`, then lets requests in flight finish (for a few seconds: a
    /// browser holding a connection open must not keep the gateway alive).
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tokio::spawn(sweep_sessions(self.sessions, shutdown.clone()));
        let graceful = serve::serve(self.listener, self.app, &self.limits, shutdown).await;
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("gateway: connections still open after {SHUTDOWN_GRACE:?}; closing"),
        }
        tracing::info!(service = "gateway", "stopped");
        Ok(())
    }
}

/// Deletes long-ended sessions every ten minutes (every replica does; the deletes are
/// idempotent and cheap).
async fn sweep_sessions(sessions: sessions::Sessions, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match sessions.sweep().await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "console: old sessions deleted"),
            Err(e) => tracing::warn!(error = %e, "console: cannot sweep old sessions"),
        }
    }
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the gateway alone in front of running services (its binary and `kechuang serve
/// gateway`): telemetry, Ctrl-C or SIGTERM to stop.
pub fn serve(settings: kechuang_platform::Settings) -> anyhow::Result<()> {
    settings
        .check_production_secrets()
        .map_err(|e| anyhow::anyhow!("gateway: {e}"))?;
    kechuang_platform::launcher::runtime(&settings)?.block_on(async {
        let _telemetry = kechuang_platform::telemetry::init(
            "gateway",
            settings.otlp_endpoint.as_deref(),
            settings.log_format == "json",
        )?;
        let shutdown = kechuang_platform::launcher::shutdown_on_signal();
        let metrics =
            kechuang_platform::metrics::MetricsServer::bind(settings.metrics_listen()).await?;
        println!("gateway metrics on {}", metrics.url());
        let gateway = Gateway::build(settings.gateway()).await?;
        println!(
            "gateway        console http://{}/console",
            gateway.local_addr()
        );
        tokio::try_join!(
            gateway.run_until_stopped(shutdown.clone()),
            metrics.run_until_stopped(shutdown)
        )?;
        Ok(())
    })
}
