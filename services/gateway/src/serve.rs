//! Serving the router with hyper-util's server (axum::serve has no header-read timeout and no
//! connection limit): at most `max_connections` connections (the platform's [`Admission`]:
//! one more is closed at once), the first bytes within the handshake timeout, an HTTP/1
//! request head within it too, HTTP/2 keepalive pings and bounded streams.

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use kechuang_platform::config::Limits;
use kechuang_platform::limits::Admission;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Accepts and serves connections until `shutdown`; returns the watcher of the connections
/// still open, to wait for them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    shutdown: CancellationToken,
) -> GracefulShutdown {
    let admission = Admission::new("gateway", limits.max_connections, limits.handshake_timeout);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(limits.keepalive_timeout)
        .max_concurrent_streams(limits.max_concurrent_streams);
    let graceful = GracefulShutdown::new();
    loop {
        let (io, peer) = tokio::select! {
            accepted = admission.accept(&listener) => accepted,
            _ = shutdown.cancelled() => break,
        };
        // The peer's address for the write rate of callers without a token.
        let service =
            app.clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "gateway: connection ended");
            }
        });
    }
    graceful
}
