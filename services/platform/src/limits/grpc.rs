//! The tower layer in front of every gRPC service's routes: the process's bound on requests
//! in flight and the per-caller write rate, both answered with RESOURCE_EXHAUSTED and a
//! `google.rpc.RetryInfo`.
//!
//! Hand-written rather than tower's `GlobalConcurrencyLimit` + `LoadShed`: health checks must
//! pass the limit by, and the refusal should say which limit it was (tonic maps LoadShed's
//! refusal to "Too many active requests for the connection", which is not the case here).

use super::writes::{WriteLimiter, is_write_rpc};
use crate::auth::{Authenticator, Caller};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;
use tonic::Code;
use tonic::body::Body;
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

/// Paths outside the concurrency limit: an orchestrator's health check must keep answering
/// while the service is at its limit (it is busy, not down).
const EXEMPT_PREFIX: &str = "/grpc.health.v1.Health/";

/// How long a client refused at the concurrency limit is asked to wait.
const BUSY_RETRY: Duration = Duration::from_millis(100);

struct Shared {
    service: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    writes: Option<WriteLimiter<Caller>>,
    auth: Arc<Authenticator>,
}

/// See the module's documentation.
#[derive(Clone)]
pub struct LimitLayer(Arc<Shared>);

impl LimitLayer {
    /// At most `max_in_flight` requests at once; writes at `writes`' rate per caller (the
    /// caller read from the bearer token with `auth`, as the services' interceptor will).
    pub fn new(
        service: &'static str,
        max_in_flight: usize,
        writes: Option<WriteLimiter<Caller>>,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self(Arc::new(Shared {
            service,
            max: max_in_flight,
            permits: Arc::new(Semaphore::new(max_in_flight)),
            writes,
            auth,
        }))
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = Limit<S>;

    fn layer(&self, inner: S) -> Limit<S> {
        Limit {
            inner,
            shared: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Limit<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl Shared {
    /// The caller's write, or the refusal when its bucket is empty. A request without a valid
    /// token passes: the service's interceptor refuses it.
    fn check_write(&self, request: &http::Request<Body>) -> Result<(), tonic::Status> {
        let Some(limiter) = &self.writes else {
            return Ok(());
        };
        if !is_write_rpc(request.uri().path()) {
            return Ok(());
        }
        let Some(caller) = bearer(request).and_then(|t| self.auth.verify(t).ok()) else {
            return Ok(());
        };
        limiter.check(&caller).map_err(|wait| {
            tracing::debug!(
                service = self.service,
                subject = caller.subject,
                roles = %caller.roles,
                "write rate limit"
            );
            exhausted(limiter.message(wait), wait)
        })
    }
}

fn bearer<B>(request: &http::Request<B>) -> Option<&str> {
    crate::auth::bearer_token(request.headers().get("authorization")?.to_str().ok()?)
}

fn exhausted(message: String, retry: Duration) -> tonic::Status {
    tonic::Status::with_error_details(
        Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(retry)),
    )
}

impl<S> Service<http::Request<Body>> for Limit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<http::Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // Whoever refuses it (here, the interceptor, the service), its body is read.
        let request = request.map(super::drain::drained_when_dropped);
        if request.uri().path().starts_with(EXEMPT_PREFIX) {
            return Box::pin(self.inner.call(request));
        }
        if let Err(status) = self.shared.check_write(&request) {
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let Ok(permit) = self.shared.permits.clone().try_acquire_owned() else {
            let status = exhausted(
                format!(
                    "{} is at its limit of {} requests in flight; retry shortly",
                    self.shared.service, self.shared.max
                ),
                BUSY_RETRY,
            );
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(permit);
            response
        })
    }
}
