//! `POST /v1/actions/hume-expression-measurement` and `GET /v1/actions`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::JsonBody;
use crate::action::input::ActionInput;
use crate::action::manifest::MANIFEST_JSON;
use crate::app::AppState;
use crate::idempotency::IdempotencyKey;
use crate::job::JobRequest;

/// Starts a job from builder input and answers `{"job_id": ...}`.
pub async fn start(
    State(app): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let input = ActionInput::try_from(&body)?;
    let key = idempotency_key(&headers)?;
    let job_id = app.start_job(&app.caller(&headers), key, JobRequest::from(input)).await?;
    Ok(Json(json!({ "job_id": job_id })))
}

/// The action manifest, as in `action-manifest.json`.
pub async fn manifest() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], MANIFEST_JSON)
}

/// The request's `Idempotency-Key`, validated.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let text = value.to_str().unwrap_or("\u{0}");
    Ok(Some(IdempotencyKey::try_from(text)?))
}
