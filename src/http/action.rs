//! `POST /v1/actions/hume-expression-measurement` and `GET /v1/actions`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;

use super::error::{ApiError, ErrorBody};
use super::extract::JsonBody;
use super::openapi::{ActionInputDoc, ActionStarted, ApiKeyHeader, IdempotencyKeyHeader, UpstreamErrors};
use crate::action::input::ActionInput;
use crate::action::manifest::MANIFEST_JSON;
use crate::app::AppState;
use crate::backend::SummaryQuery;
use crate::idempotency::IdempotencyKey;
use crate::job::JobRequest;

/// Starts a job from builder input and answers `{"job_id": ...}`.
#[utoipa::path(
    post,
    path = "/v1/actions/hume-expression-measurement",
    operation_id = "start_action",
    tag = "action",
    summary = "Start a measurement job from builder input",
    request_body(content = ActionInputDoc, content_type = "application/json"),
    params(ApiKeyHeader, IdempotencyKeyHeader),
    responses(
        (status = 200, description = "The job was accepted (or, for a replayed `Idempotency-Key`, the first job); with `wait_seconds`, its status, and its summary when it ended within them.", body = ActionStarted),
        (status = 400, description = "The body is not JSON, or cannot be read.", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token, or no Hume API key where one is needed.", body = ErrorBody),
        (status = 413, description = "The body, or the job, is over a size budget.", body = ErrorBody),
        (status = 415, description = "The body is not sent as `application/json`.", body = ErrorBody),
        (status = 422, description = "A field is invalid (the error names it), the job is over a budget, or the `Idempotency-Key` was used with another body.", body = ErrorBody),
        UpstreamErrors,
    ),
    security((), ("bearer" = [])),
)]
pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<ActionStarted>, ApiError> {
    let input = ActionInput::try_from(&body)?;
    let wait = Duration::from_secs_f64(input.wait_seconds.min(app.config.summary_max_wait_secs as f64));
    let (caller, key) = (app.caller(&headers), idempotency_key(&headers)?);
    let job_id = app.start_job(&caller, key, JobRequest::try_from(input)?).await?;
    if wait.is_zero() {
        return Ok(Json(ActionStarted { job_id, status: None, summary: None }));
    }
    let summary = app.backend.summary(&caller, &job_id, SummaryQuery { wait, window_secs: None }).await?;
    let status = Some(summary.status);
    Ok(Json(ActionStarted { job_id, status, summary: summary.done.then_some(summary) }))
}

/// The action manifest, as in `action-manifest.json`.
#[utoipa::path(
    get,
    path = "/v1/actions",
    operation_id = "get_manifest",
    tag = "action",
    summary = "The action manifest: fields, defaults, help text and error codes",
    responses(
        (status = 200, description = "`action-manifest.json`.", content_type = "application/json", body = Object),
        (status = 401, description = "Missing or wrong bearer token.", body = ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub async fn manifest() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], MANIFEST_JSON)
}

/// The request's `Idempotency-Key`, validated.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let text = value.to_str().unwrap_or("\u{0}");
    Ok(Some(IdempotencyKey::try_from(text)?))
}
