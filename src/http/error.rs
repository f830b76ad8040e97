//! The one error type handlers return, and the JSON shape every non-2xx answer has.
//!
//! Which error to use when:
//! - bad builder or API input that names a field: [`ApiError::Invalid`] with a [`FieldError`];
//! - a body that is not JSON, too large, or of the wrong content type: the `From<JsonRejection>`
//!   conversion (used by [`crate::http::extract::JsonBody`]) picks the status;
//! - anything from upstream (Hume): [`ApiError::Upstream`], which keeps the upstream status,
//!   attempt count and message;
//! - our own faults: [`ApiError::Internal`]; its details go to the log, not to the caller.
//!
//! Every answer reads `{"error": {"code", "message", "field"?, "retryable", "upstream_status"?,
//! "attempts"?}}`, with a message written for a person reading a workflow's run log.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

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

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
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

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Upstream(e) => e.retry_after(),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (upstream_status, attempts, retryable) = match &self {
            Self::Upstream(e) => (e.upstream_status(), Some(e.attempts()), e.is_retryable()),
            Self::Unavailable(_) | Self::Internal(_) => (None, None, true),
            _ => (None, None, false),
        };
        let field = match &self {
            Self::Invalid(e) => Some(e.field.as_str()),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message: self.to_string(),
                field,
                retryable,
                upstream_status,
                attempts,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after() {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let (code, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("body_too_large", "The request body is too large. Send fewer or shorter values.".to_owned())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "Send the body as JSON with the header `Content-Type: application/json`.".to_owned(),
            ),
            _ => ("invalid_json", format!("The body is not valid JSON: {}", rejection.body_text())),
        };
        Self::BadRequest { status, code, message }
    }
}
