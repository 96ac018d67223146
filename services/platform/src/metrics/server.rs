//! The process's `/metrics` endpoint: a small HTTP server on its own port, so that Prometheus
//! scrapes neither through the gateway nor through a gRPC port, and a scrape is never refused
//! by the limits on the API's requests.

use crate::limits::{Admission, Guarded};
use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Connections the endpoint holds at once: a few Prometheus servers and a curl or two.
const MAX_CONNECTIONS: usize = 32;
/// A scraper's request must start within it (see [`Admission`]).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often histograms are folded into their buckets when nobody scrapes, so that samples
/// do not pile up in memory (the exporter's upkeep).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// The text exposition format Prometheus scrapes.
const CONTENT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A bound metrics endpoint; [`MetricsServer::run_until_stopped`] serves it.
pub struct MetricsServer {
    listener: TcpListener,
    handle: &'static PrometheusHandle,
}

impl MetricsServer {
    /// Installs the process's recorder (see [`super::install`]) and binds `addr`.
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let handle = super::install();
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "metrics: cannot listen on {addr}: the port is taken. Set KC_METRICS_PORT \
                     to a free port (0: any free port)"
                )
            } else {
                anyhow::anyhow!("metrics: cannot listen on {addr}: {e}")
            }
        })?;
        Ok(Self { listener, handle })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The URL Prometheus scrapes (an unspecified address such as 0.0.0.0 shown as loopback).
    pub fn url(&self) -> String {
        let mut addr = self.local_addr();
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}/metrics")
    }

    /// Serves `GET /metrics` until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let handle = self.handle;
        let upkeep = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = upkeep.cancelled() => return,
                    _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
                }
            }
        });
        let app = Router::new().route(
            "/metrics",
            get(move || async move { ([(CONTENT_TYPE, CONTENT)], handle.render()) }),
        );
        let listener = Admitted {
            admission: Admission::new("metrics", MAX_CONNECTIONS, HANDSHAKE_TIMEOUT),
            listener: self.listener,
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|e| anyhow::anyhow!("metrics: server failed: {e}"))
    }
}

/// The listener under the platform's connection admission: at most [`MAX_CONNECTIONS`], each
/// sending its first bytes within [`HANDSHAKE_TIMEOUT`].
struct Admitted {
    admission: Arc<Admission>,
    listener: TcpListener,
}

impl axum::serve::Listener for Admitted {
    type Io = Guarded<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        self.admission.accept(&self.listener).await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}
