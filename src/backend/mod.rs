//! Where jobs run. Each backend takes the same v0-shaped job request and answers the same reads,
//! so the action and the `/v0/batch/jobs` routes never care which one is configured.

pub mod batch;
pub mod local;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use crate::action::idempotency::IdempotencyClaim;
use crate::config::Secret;
use crate::http::error::ApiError;

/// A job to start: a v0 `InferenceBaseRequest` (`urls`, `text`, `models`, ...) plus uploads.
#[derive(Debug, Clone)]
pub struct JobRequest {
    /// The request as v0 JSON, normalised (only what the caller chose).
    pub request: Value,
    /// Files uploaded with a multipart request.
    pub files: Vec<UploadedFile>,
    /// The `Idempotency-Key` this start claims, for a backend that records it with the job.
    pub idempotency: Option<IdempotencyClaim>,
}

impl JobRequest {
    /// A request with no uploads.
    pub fn new(request: Value) -> Self {
        Self { request, files: Vec::new(), idempotency: None }
    }
}

/// One uploaded file.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// Who is calling: the Hume API key from the request header or the server's configuration.
#[derive(Debug, Clone)]
pub struct Caller {
    pub api_key: Option<Secret>,
}

impl Caller {
    /// The API key, or the error that says both ways to give one.
    pub fn require_api_key(&self) -> Result<&Secret, ApiError> {
        self.api_key.as_ref().ok_or(ApiError::MissingApiKey)
    }
}

/// A body passed back as it is, with its content type.
#[derive(Debug, Clone)]
pub struct RawBody {
    pub content_type: String,
    pub bytes: Bytes,
}

impl RawBody {
    /// A JSON body.
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        Self { content_type: "application/json".into(), bytes: bytes.into() }
    }
}

impl IntoResponse for RawBody {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, self.content_type)], self.bytes).into_response()
    }
}

/// A place jobs run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Starts a job and returns its id.
    async fn submit(&self, caller: &Caller, job: JobRequest) -> Result<String, ApiError>;
    /// `GET /v0/batch/jobs` with the caller's query.
    async fn list_jobs(&self, caller: &Caller, query: &[(String, String)]) -> Result<RawBody, ApiError>;
    /// `GET /v0/batch/jobs/{id}`.
    async fn job(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError>;
    /// `GET /v0/batch/jobs/{id}/predictions`.
    async fn predictions(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError>;
    /// `GET /v0/batch/jobs/{id}/artifacts` (a zip).
    async fn artifacts(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError>;
    /// Whether `submit` commits `JobRequest::idempotency` together with the job itself.
    fn records_idempotency_keys(&self) -> bool {
        false
    }
    /// Whether the backend can take work now; the reason when not.
    async fn ready(&self) -> Result<(), String> {
        Ok(())
    }
    /// Stops background work after in-flight jobs reach a safe point.
    async fn shutdown(&self) {}
}
