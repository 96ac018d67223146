//! The tower layer that times every gRPC call of a server, by method and status code
//! ([`super::RPC_DURATION`]).
//!
//! The code is where gRPC puts it: in the response headers of a trailers-only answer (every
//! error tonic or the limits return before a message), else in the trailers after the last
//! message, which the layer reads by wrapping the body. A call is recorded once, when its code
//! is known; a body dropped before its trailers (the client went away) counts as CANCELLED.
//! For a streaming call (WatchPairings) the time is the stream's life.
//!
//! The method label is bounded: only the methods of the platform's own protos (and health and
//! reflection) are named; any other path is `other`, so a client sending random paths cannot
//! grow the series without end.

use super::RPC_DURATION;
use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use prost::Message;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};

/// See the module's documentation.
#[derive(Clone)]
pub struct RpcMetricsLayer {
    service: &'static str,
}

impl RpcMetricsLayer {
    /// Labels the calls with `service`, the kechuang service the server belongs to.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics {
            inner,
            service: self.service,
        }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
    service: &'static str,
}

impl<S> Service<http::Request<Body>> for RpcMetrics<S>
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
        let call = Call {
            service: self.service,
            method: method_label(request.uri().path()),
            started: Instant::now(),
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(e) => {
                    call.record(Code::Unknown);
                    return Err(e);
                }
            };
            if let Some(code) = code_in(response.headers()) {
                call.record(code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(Observed {
                    inner: body,
                    call: Some(call),
                })
            }))
        })
    }
}

/// One call being timed.
struct Call {
    service: &'static str,
    method: &'static str,
    started: Instant,
}

impl Call {
    fn record(self, code: Code) {
        ::metrics::histogram!(
            RPC_DURATION,
            "service" => self.service,
            "method" => self.method,
            "code" => code_name(code),
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

/// A response body that records its call when the trailers pass (or when it is dropped
/// without them).
struct Observed {
    inner: Body,
    call: Option<Call>,
}

impl HttpBody for Observed {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let code = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(code_in),
            Poll::Ready(Some(Err(status))) => Some(Some(status.code())),
            // The end without trailers: not a gRPC answer.
            Poll::Ready(None) => Some(Some(Code::Unknown)),
            Poll::Pending => None,
        };
        if let Some(code) = code
            && let Some(call) = self.call.take()
        {
            call.record(code.unwrap_or(Code::Unknown));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.record(Code::Cancelled);
        }
    }
}

/// The `grpc-status` in `headers`, if there is one.
fn code_in(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// The canonical name of a status code, as gRPC's documentation spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// `path` without its leading slash when it names a method the platform serves
/// (`kechuang.demand.v1.DemandService/SubmitDemand`), else `other`.
pub fn method_label(path: &str) -> &'static str {
    let known = KNOWN_METHODS.get_or_init(known_methods);
    path.strip_prefix('/')
        .and_then(|method| known.get(method))
        .map_or("other", String::as_str)
}

static KNOWN_METHODS: OnceLock<HashSet<String>> = OnceLock::new();

/// Every `package.Service/Method` of the descriptor sets the servers register.
fn known_methods() -> HashSet<String> {
    let sets = [
        kechuang_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashSet::new();
    for encoded in sets {
        let set = prost_types::FileDescriptorSet::decode(encoded)
            .expect("the compiled-in descriptor sets decode");
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!("{package}.{}/{}", service.name(), method.name()));
                }
            }
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_the_platform_are_named_and_anything_else_is_other() {
        assert_eq!(
            method_label("/kechuang.demand.v1.DemandService/SubmitDemand"),
            "kechuang.demand.v1.DemandService/SubmitDemand"
        );
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        for unknown in [
            "/kechuang.demand.v1.DemandService/NoSuchMethod",
            "/x.Y/Z",
            "kechuang.demand.v1.DemandService/SubmitDemand",
            "",
        ] {
            assert_eq!(method_label(unknown), "other", "{unknown}");
        }
    }

    #[test]
    fn every_code_has_its_canonical_name() {
        let names: HashSet<&str> = (0..=16).map(|i| code_name(Code::from_i32(i))).collect();
        assert_eq!(names.len(), 17, "one name per code");
        assert_eq!(code_name(Code::from_i32(3)), "INVALID_ARGUMENT");
        assert_eq!(code_name(Code::from_i32(16)), "UNAUTHENTICATED");
    }

    #[test]
    fn the_code_is_read_from_grpc_status() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(code_in(&headers), None);
        headers.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(code_in(&headers), Some(Code::NotFound));
        headers.insert("grpc-status", "junk".parse().unwrap());
        assert_eq!(code_in(&headers), None);
    }
}
