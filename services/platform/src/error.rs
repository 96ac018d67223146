//! One error type for every service, and its single mapping to a gRPC status with
//! `google.rpc` details. Internal errors are logged, never sent to the client.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One broken input rule: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    /// A concurrent change won; the client may retry.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A single bad field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound(what.into())
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal(what.to_string())
    }
}

/// Collects every broken rule of one request, so the client learns them all at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation of `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, description: impl Into<String>) -> &mut Self {
        if !ok {
            self.add(field, description);
        }
        self
    }

    /// [`Self::check`] whose description is only written when the check fails: most input
    /// passes, and a formatted description (some list the whole catalog) would otherwise be
    /// built and dropped on every call.
    pub fn check_with(
        &mut self,
        ok: bool,
        field: &str,
        describe: impl FnOnce() -> String,
    ) -> &mut Self {
        if !ok {
            self.add(field, describe());
        }
        self
    }

    pub fn add(&mut self, field: &str, description: impl Into<String>) -> &mut Self {
        self.0.push(FieldViolation {
            field: field.to_string(),
            description: description.into(),
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when nothing was broken, else `InvalidArgument` with every violation.
    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

/// Turns a named unique constraint into a client error.
pub trait ResultExt<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T>;
}

impl<T> ResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match &e {
            sqlx::Error::Database(db) if db.constraint() == Some(name) => f(),
            _ => Error::Database(e),
        })
    }
}

impl<T> ResultExt<T> for Result<T> {
    fn on_constraint(self, name: &str, f: impl FnOnce() -> Error) -> Result<T> {
        self.map_err(|e| match &e {
            Error::Database(sqlx::Error::Database(db)) if db.constraint() == Some(name) => f(),
            _ => e,
        })
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::InvalidArgument(violations) => {
                let message = bounded(format!("invalid argument: {}", describe(&violations)));
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(bounded(v.field), bounded(v.description));
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(m) => Status::not_found(bounded(m)),
            Error::AlreadyExists(m) => Status::already_exists(bounded(m)),
            Error::FailedPrecondition(m) => Status::failed_precondition(bounded(m)),
            Error::PermissionDenied(m) => Status::permission_denied(bounded(m)),
            Error::Unauthenticated(m) => Status::unauthenticated(bounded(m)),
            Error::Aborted(m) => Status::aborted(bounded(m)),
            Error::Unavailable(m) => Status::unavailable(bounded(m)),
            Error::Database(e) => {
                if is_serialization_failure(&e) {
                    return Status::aborted("concurrent update; retry");
                }
                if matches!(e, sqlx::Error::PoolTimedOut) {
                    // Every connection busy for the whole acquire timeout: the service is
                    // overloaded, not broken, and the caller may retry later.
                    tracing::warn!("no database connection within the acquire timeout");
                    return Status::unavailable("the database is busy; retry later");
                }
                if is_bad_value(&e) {
                    // A value the validation let through and the database refused: still the
                    // caller's input, and nothing was written.
                    tracing::warn!(error = %e, "the database refused a value");
                    return Status::invalid_argument("a value is not acceptable to the database");
                }
                tracing::error!(error = %e, "database error");
                Status::internal("internal error")
            }
            Error::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

/// The longest status message sent: a message that quotes its input cannot echo a megabyte.
const MAX_MESSAGE_CHARS: usize = 500;

fn bounded(message: String) -> String {
    if message.chars().nth(MAX_MESSAGE_CHARS).is_none() {
        return message;
    }
    let mut short: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
    short.push('…');
    short
}

/// Data exceptions caused by a value: bad characters (22021, 22P05), too long (22001), out of
/// range (22003, 22008).
fn is_bad_value(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("22021" | "22P05" | "22001" | "22003" | "22008")))
}

/// Serialization failures and deadlocks: the transaction lost a race and can be retried.
pub fn is_serialization_failure(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("40001") | Some("40P01")))
}

/// Could the statement that failed with `e` have committed? Only when the database itself
/// reported an error of another class than 08 (connection), 57 (operator intervention: a
/// terminated backend), 58 (system: I/O) or XX (internal) is it known to have rolled back;
/// a broken connection or a timeout may have come after the commit.
pub fn may_have_committed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| ["08", "57", "58", "XX"].iter().any(|c| code.starts_with(c))),
        _ => true,
    }
}

/// The field violations of a status, for tests and clients.
pub fn field_violations(status: &Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|b| {
            b.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_that_stays_busy_is_unavailable_and_other_database_errors_are_internal() {
        let busy: Status = Error::Database(sqlx::Error::PoolTimedOut).into();
        assert_eq!(busy.code(), tonic::Code::Unavailable);
        let broken: Status = Error::Database(sqlx::Error::RowNotFound).into();
        assert_eq!(broken.code(), tonic::Code::Internal);
        assert_eq!(broken.message(), "internal error");
    }

    #[test]
    fn a_lazy_description_is_written_only_for_a_failed_check() {
        let mut v = Violations::new();
        v.check_with(true, "title", || {
            unreachable!("a passing check describes nothing")
        })
        .check_with(false, "budget_max_fen", || format!("must be at most {}", 5));
        let status: Status = v.into_result().unwrap_err().into();
        assert_eq!(
            field_violations(&status),
            vec![(
                "budget_max_fen".to_string(),
                "must be at most 5".to_string()
            )]
        );
    }

    #[test]
    fn invalid_argument_carries_every_field() {
        let mut v = Violations::new();
        v.check(false, "title", "must not be empty")
            .check(true, "ok", "never")
            .check(false, "budget_max_fen", "must be at least budget_min_fen");
        let status: Status = v.into_result().unwrap_err().into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<_> = field_violations(&status).into_iter().map(|f| f.0).collect();
        assert_eq!(fields, ["title", "budget_max_fen"]);
        assert!(status.message().contains("title: must not be empty"));
    }

    #[test]
    fn internal_errors_are_not_leaked() {
        let status: Status = Error::internal("password=hunter2").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn no_message_echoes_a_megabyte() {
        let id = "x".repeat(1_000_000);
        let status: Status = Error::not_found(format!("contract {id} not found")).into();
        assert!(status.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        let status: Status = Error::invalid("contract_id", id).into();
        assert!(status.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        let (_, description) = field_violations(&status).remove(0);
        assert!(description.chars().count() <= MAX_MESSAGE_CHARS + 1);
    }
}
