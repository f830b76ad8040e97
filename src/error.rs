//! The one error type every layer returns; `crate::http::error` turns it into the JSON answer.
//!
//! It lives below everything (not in `http/`) so that input parsing, stores and backends can
//! name field errors without depending on the HTTP layer.
//!
//! Which error to use when:
//! - bad builder or API input that names a field: [`ApiError::Invalid`] with a [`FieldError`];
//! - input over one of the job budgets (`crate::budget`): [`ApiError::OverLimit`], which
//!   names the limit, the value seen and the setting;
//! - a body that is not JSON, too large, or of the wrong content type: `crate::http::error`
//!   converts axum's rejection and picks the status;
//! - anything from upstream (Hume): [`ApiError::Upstream`], which keeps the upstream status,
//!   attempt count and message;
//! - a job store failure: [`StoreError`], which converts into the answer (a busy key asks for a
//!   retry; anything else is internal);
//! - our own faults: [`ApiError::Internal`]; its cause goes to the log when the answer is made,
//!   never to the caller.
//!
//! Every answer reads `{"error": {"code", "message", "field"?, "retryable", "upstream_status"?,
//! "attempts"?}}`, with a message written for a person reading a workflow's run log.

use std::time::Duration;

use axum::http::StatusCode;

use crate::budget::LimitExceeded;
pub use crate::error_code::ErrorCode;
use crate::upstream::UpstreamError;

/// A problem with one input field, named so a builder can show it next to that field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// Stable machine-readable code, listed in `action-manifest.json`.
    pub code: ErrorCode,
    /// The field at fault (`urls`, `models_face`, `urls[2]`, ...).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A field error with the given code, field and message.
    pub fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code, field: field.into(), message: message.into() }
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0}")]
    OverLimit(#[from] LimitExceeded),
    #[error("{message}")]
    BadRequest { code: ErrorCode, message: String },
    #[error("Missing or wrong token: send `Authorization: Bearer <token>` with the token this server was started with (HUME_ACTION_TOKEN).")]
    Unauthorized,
    #[error("No Hume API key: send it in the `X-Hume-Api-Key` header of this request, or start the server with HUME_API_KEY set.")]
    MissingApiKey,
    #[error("{0}")]
    NotFound(String),
    #[error("This Idempotency-Key was already used with a different request body. Use a new key for a new request, or resend the original body.")]
    IdempotencyConflict,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{0}")]
    Unavailable(String),
    /// Our own fault: `context` is answered, `cause` only logged (when the answer is made).
    #[error("Internal error: {context}")]
    Internal { context: String, cause: String },
}

impl ApiError {
    /// An internal error; the cause is kept out of the answer and logged where the answer is made
    /// (`crate::http::error`).
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        Self::Internal { context: context.to_owned(), cause: cause.to_string() }
    }

    /// The HTTP status of this error: its code's, but for an upstream rejection, which keeps
    /// Hume's own.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Upstream(e) => e.status_for_caller(),
            _ => self.code().status(),
        }
    }

    /// The stable error code (listed in `action-manifest.json`).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Invalid(e) => e.code,
            Self::OverLimit(e) => e.limit.code(),
            Self::BadRequest { code, .. } => *code,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::MissingApiKey => ErrorCode::MissingApiKey,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::IdempotencyConflict => ErrorCode::IdempotencyKeyReused,
            Self::Upstream(e) => e.code(),
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// How long the caller should wait before retrying, when known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Upstream(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// Why the job store (`crate::store`, and the idempotency records kept in it) could not do what
/// was asked. It lives here, below the stores, because `crate::idempotency`'s store trait returns
/// it too.
///
/// Callers branch on the kind, never on the text:
/// a lost lease abandons a run, a busy key asks the caller to retry, everything else fails the
/// operation and is logged where it becomes an answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write refused because another replica took the job (or the callback) over: the run
    /// must be abandoned, not failed.
    #[error("job store: this replica no longer holds the job's lease (another replica took it over)")]
    LeaseLost,
    /// An `Idempotency-Key` is claimed by a call (on some replica) that has not stored its job yet.
    #[error("job store: the Idempotency-Key is being used by a call still in progress; try again")]
    KeyInUse,
    /// The database refused or failed a statement, or could not be reached.
    #[error("job store: {0}")]
    Database(#[from] sqlx::Error),
    /// The store could not be opened or migrated at start-up (`what` says which, and how to fix it).
    #[error("job store: {what}: {cause}")]
    Open { what: String, cause: String },
    /// A stored row cannot be read back (written by a newer version, or damaged).
    #[error("job store: the stored {what} cannot be read: {cause}")]
    Corrupt { what: &'static str, cause: String },
    /// A call the store's contract does not allow (a bug in the caller).
    #[error("job store: {0}")]
    Misuse(String),
}

impl StoreError {
    /// A start-up failure: `what` failed because of `cause`.
    pub fn open(what: impl Into<String>, cause: impl std::fmt::Display) -> Self {
        Self::Open { what: what.into(), cause: cause.to_string() }
    }

    /// A stored `what` that does not parse.
    pub fn corrupt(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Corrupt { what, cause: cause.to_string() }
    }

    /// Whether this is [`StoreError::LeaseLost`]: the run must be abandoned, not failed.
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, Self::LeaseLost)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::KeyInUse => ApiError::Unavailable(
                "Another call with this Idempotency-Key is still starting its job; send it again in a minute.".into(),
            ),
            other => ApiError::internal("the job store failed", other),
        }
    }
}
