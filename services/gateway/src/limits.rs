//! The gateway's limits (issue 20, item 6), besides the connection limits of [`crate::serve`]:
//! a request timeout and a bound on requests in flight (503 beyond either), and a per-caller
//! write rate on POST, PUT, PATCH and DELETE (429 with Retry-After). `/healthz` and `/readyz`
//! are outside all three: a busy gateway is not a dead one.

use crate::AppState;
use crate::status::ApiError;
use axum::BoxError;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kechuang_platform::Caller;
use kechuang_platform::config::Limits;
use kechuang_platform::limits::WriteLimiter;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::Code;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;

/// Whose writes a bucket counts: the token's caller (bearer header or console session), or,
/// for a request without a valid token (signing in), the peer's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WriteKey {
    Caller(Caller),
    Peer(IpAddr),
}

/// The request timeout and the bound on requests in flight, around every route of `router`
/// (the probes are merged in after this layer, outside it).
pub fn guard(router: Router<AppState>, limits: &Limits) -> Router<AppState> {
    let in_flight = Arc::new(Semaphore::new(limits.max_concurrent_requests));
    let timeout = limits.request_timeout;
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(
                move |uri: Uri, e: BoxError| async move { refused(&uri, &e, timeout) },
            ))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight))
            .timeout(timeout),
    )
}

/// 503 for a request over the limit (retry in a second) or one that ran out of time.
fn refused(uri: &Uri, e: &BoxError, timeout: Duration) -> Response {
    let (message, retry) = if e.is::<tower::load_shed::error::Overloaded>() {
        (
            "the gateway is at its limit of requests in flight; retry shortly".to_string(),
            true,
        )
    } else if e.is::<tower::timeout::error::Elapsed>() {
        (format!("no answer within {} s", timeout.as_secs()), false)
    } else {
        tracing::warn!(error = %e, "gateway: request failed");
        ("the request failed; try again later".to_string(), false)
    };
    let mut response = error(
        uri,
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Unavailable,
        message,
    );
    if retry {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// JSON under `/api/`, plain text elsewhere (the console's pages).
fn error(uri: &Uri, status: StatusCode, code: Code, message: String) -> Response {
    if uri.path().starts_with("/api/") {
        ApiError::new(status, code, message).into_response()
    } else {
        (status, message).into_response()
    }
}

/// Middleware: takes one write from the caller's bucket for every POST, PUT, PATCH or DELETE;
/// 429 with Retry-After (whole seconds, at least 1) when it is empty.
pub async fn write_rate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_write = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(limiter) = state.writes.as_deref().filter(|_| is_write) else {
        return next.run(request).await;
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    let Some(key) = key(&state, request.headers(), peer).await else {
        return next.run(request).await;
    };
    match limiter.check(&key) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            let uri = request.uri();
            let mut response = error(
                uri,
                StatusCode::TOO_MANY_REQUESTS,
                Code::ResourceExhausted,
                limiter.message(wait),
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

async fn key(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<WriteKey> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(kechuang_platform::auth::bearer_token);
    let caller = match bearer {
        Some(token) => state.auth.verify(token).ok(),
        None => crate::pages::session(state, headers)
            .await
            .ok()
            .flatten()
            .map(|s| s.caller),
    };
    caller.map(WriteKey::Caller).or(peer.map(WriteKey::Peer))
}

/// The write limiter of `limits`, if writes are limited.
pub fn writes(limits: &Limits) -> Option<Arc<WriteLimiter<WriteKey>>> {
    WriteLimiter::new(limits.writes).map(Arc::new)
}
