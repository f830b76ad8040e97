//! The JSON shape every non-2xx answer has: `{"error": {"code", "message", "field"?, "retryable",
//! "upstream_status"?, "attempts"?, "limit"?}}`, and `Retry-After` when the wait is known. An
//! answer over a budget carries `limit: {setting, max, seen, at_least, unit}`.

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use crate::error::{ApiError, ErrorCode, FieldError};

/// Every non-2xx answer: `{"error": {...}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// What went wrong, for a person reading a workflow's run log and for a program.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable machine-readable code (listed in `GET /v1/actions`'s `errors`).
    code: &'a str,
    /// What is wrong and how to fix it.
    message: String,
    /// The input field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    /// Whether the same request may succeed later.
    retryable: bool,
    /// Hume's HTTP status, when Hume answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 100, maximum = 599)]
    upstream_status: Option<u16>,
    /// Calls made to Hume, when any were.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// The budget the request is over, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<LimitDetail>,
}

/// The limit an answer is over: its setting, its value and what was seen.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LimitDetail {
    /// The setting that holds the limit (e.g. `HUME_ACTION_MAX_BODY_BYTES`).
    setting: &'static str,
    /// The limit.
    max: u64,
    /// What was seen (at least this, when `at_least`).
    seen: u64,
    /// Whether reading stopped at the limit, so the real amount is larger.
    at_least: bool,
    /// What it counts in (`bytes`, `seconds`, ...).
    unit: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal { context, cause } = &self {
            tracing::error!(%cause, "{context}");
        }
        let status = self.status();
        let (upstream_status, attempts) = match &self {
            ApiError::Upstream(e) => (e.upstream_status(), Some(e.attempts())),
            _ => (None, None),
        };
        let field = match &self {
            ApiError::Invalid(e) => Some(e.field.as_str()),
            ApiError::OverLimit(e) => Some(e.field.as_str()),
            _ => None,
        };
        let limit = match &self {
            ApiError::OverLimit(e) => Some(LimitDetail {
                setting: e.limit.setting(),
                max: e.max,
                seen: e.seen,
                at_least: e.at_least,
                unit: e.limit.unit(),
            }),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().as_str(),
                message: self.to_string(),
                field,
                retryable: self.code().retryable(),
                upstream_status,
                attempts,
                limit,
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

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest {
            code: ErrorCode::InvalidJobId,
            message: format!(
                "The job id in the path cannot be read ({rejection}); use the job_id a job was started with."
            ),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (code, message) = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                (ErrorCode::BodyTooLarge, "The request body is too large. Send fewer or shorter values.".to_owned())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                ErrorCode::UnsupportedMediaType,
                "Send the body as JSON with the header `Content-Type: application/json`.".to_owned(),
            ),
            _ => (ErrorCode::InvalidJson, format!("The body is not valid JSON: {}", rejection.body_text())),
        };
        ApiError::BadRequest { code, message }
    }
}
