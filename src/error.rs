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
//! - our own faults: [`ApiError::Internal`]; its details go to the log, not to the caller.
//!
//! Every answer reads `{"error": {"code", "message", "field"?, "retryable", "upstream_status"?,
//! "attempts"?}}`, with a message written for a person reading a workflow's run log.

use std::time::Duration;

use axum::http::StatusCode;

use crate::budget::LimitExceeded;
use crate::upstream::UpstreamError;

/// A problem with one input field, named so a builder can show it next to that field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// Stable machine-readable code, listed in `action-manifest.json`.
    pub code: &'static str,
    /// The field at fault (`urls`, `models_face`, `urls[2]`, ...).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A field error with the given code, field and message.
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
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
    BadRequest { status: StatusCode, code: &'static str, message: String },
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
    #[error("Internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// An internal error; the cause is logged here and kept out of the answer.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::Internal(context.to_owned())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::IdempotencyConflict => StatusCode::UNPROCESSABLE_ENTITY,
            Self::OverLimit(e) => StatusCode::from_u16(e.limit.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
            Self::BadRequest { status, .. } => *status,
            Self::Unauthorized | Self::MissingApiKey => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Upstream(e) => e.status_for_caller(),
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable error code (listed in `action-manifest.json`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.code,
            Self::OverLimit(e) => e.limit.code(),
            Self::BadRequest { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::MissingApiKey => "missing_api_key",
            Self::NotFound(_) => "not_found",
            Self::IdempotencyConflict => "idempotency_key_reused",
            Self::Upstream(e) => e.code(),
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
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
