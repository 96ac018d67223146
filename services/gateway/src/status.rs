//! One mapping from a service's gRPC status to the gateway's HTTP answer: the status code,
//! and a JSON body naming every field that was wrong (from `google.rpc.BadRequest`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

/// One broken input rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldViolation {
    /// The request field, e.g. `budget_max_fen` or `deadline`.
    pub field: String,
    pub description: String,
}

/// Every error of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// The gRPC code behind it (`INVALID_ARGUMENT`, `NOT_FOUND`, ...).
    pub code: String,
    /// For bad input: each wrong field.
    pub field_violations: Vec<FieldViolation>,
}

/// An HTTP error answer of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Whole seconds for `Retry-After`: a service at its write rate says in its
    /// `google.rpc.RetryInfo` when to come back, and an HTTP client should hear it too.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                code: code_name(code).into(),
                field_violations: Vec::new(),
            },
            retry_after: None,
        }
    }

    /// 400 naming one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let (field, description) = (field.into(), description.into());
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            format!("invalid argument: {field}: {description}"),
        );
        e.body
            .field_violations
            .push(FieldViolation { field, description });
        e
    }

    pub fn unauthenticated(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Code::Unauthenticated, error)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, error)
    }
}

/// The HTTP status for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        // A state conflict: the resource exists, or is not in a state that allows this now.
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal | Code::Unknown | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `INVALID_ARGUMENT` style names, as google.rpc.Code spells them.
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

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let code = status.code();
        let http = http_status(code);
        let error = if http.is_server_error() && code != Code::Unavailable {
            // The services already hide internals; say no more than they did.
            tracing::warn!(code = ?code, message = status.message(), "service error");
            "the service failed; try again later".to_string()
        } else if code == Code::Unavailable {
            format!("a service is unavailable: {}", status.message())
        } else {
            status.message().to_string()
        };
        let field_violations = status
            .get_details_bad_request()
            .map(|b| {
                b.field_violations
                    .into_iter()
                    .map(|v| FieldViolation {
                        field: v.field,
                        description: v.description,
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Rounded up, at least a second: "0" would invite an immediate retry.
        let retry_after = kechuang_platform::limits::retry_delay(&status)
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .map(|s| s.max(1));
        Self {
            status: http,
            body: ErrorBody {
                error,
                code: code_name(code).into(),
                field_violations,
            },
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn each_code_maps_to_its_http_status() {
        for (code, http) in [
            (Code::InvalidArgument, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::FailedPrecondition, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
        ] {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[test]
    fn a_services_retry_delay_becomes_retry_after_in_whole_seconds() {
        let mut details = ErrorDetails::new();
        details.set_retry_info(Some(std::time::Duration::from_millis(2300)));
        let status =
            tonic::Status::with_error_details(Code::ResourceExhausted, "write rate", details);
        let response = ApiError::from(status).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "3");

        let mut details = ErrorDetails::new();
        details.set_retry_info(Some(std::time::Duration::from_millis(10)));
        let status = tonic::Status::with_error_details(Code::ResourceExhausted, "soon", details);
        assert_eq!(ApiError::from(status).retry_after, Some(1));

        let bare = tonic::Status::resource_exhausted("in flight");
        let response = ApiError::from(bare).into_response();
        assert!(
            response
                .headers()
                .get(axum::http::header::RETRY_AFTER)
                .is_none()
        );
    }

    #[test]
    fn bad_request_details_become_field_violations() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("title", "must not be empty");
        details.add_bad_request_violation("budget_max_fen", "must be at least budget_min_fen");
        let status =
            tonic::Status::with_error_details(Code::InvalidArgument, "invalid argument", details);
        let e = ApiError::from(status);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.body.code, "INVALID_ARGUMENT");
        let fields: Vec<_> = e.body.field_violations.iter().map(|v| &v.field).collect();
        assert_eq!(fields, ["title", "budget_max_fen"]);
        let json = serde_json::to_value(&e.body).unwrap();
        assert_eq!(
            json["field_violations"][1]["description"],
            "must be at least budget_min_fen"
        );
    }

    #[test]
    fn refusals_keep_the_services_message_and_internals_stay_hidden() {
        let e = ApiError::from(tonic::Status::permission_denied(
            "role auditor may not do this",
        ));
        assert_eq!(
            (e.status.as_u16(), e.body.error.as_str()),
            (403, "role auditor may not do this")
        );
        assert!(e.body.field_violations.is_empty());
        let e = ApiError::from(tonic::Status::internal("db password=hunter2"));
        assert_eq!(e.status.as_u16(), 500);
        assert!(!e.body.error.contains("hunter2"));
        let e = ApiError::from(tonic::Status::unavailable("connection refused"));
        assert_eq!(e.status.as_u16(), 503);
    }
}
