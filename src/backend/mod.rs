//! Where jobs run. Each backend takes the same v0-shaped job request and answers the same reads,
//! so the action and the `/v0/batch/jobs` routes never care which one is configured.

pub mod batch;
pub mod engine;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::error::ApiError;
use crate::job::{Caller, JobRequest};

/// A body passed back as it is, with its content type.
#[derive(Debug, Clone)]
pub struct RawBody {
    pub content_type: String,
    pub bytes: Bytes,
    /// A `Link` header: the next page of a list (`<url>; rel="next"`).
    pub link: Option<String>,
}

impl RawBody {
    /// A JSON body.
    pub fn json(bytes: impl Into<Bytes>) -> Self {
        Self { content_type: "application/json".into(), bytes: bytes.into(), link: None }
    }
}

impl IntoResponse for RawBody {
    fn into_response(self) -> Response {
        let mut response = ([(header::CONTENT_TYPE, self.content_type)], self.bytes).into_response();
        if let Some(link) = self.link.and_then(|l| header::HeaderValue::from_str(&l).ok()) {
            response.headers_mut().insert(header::LINK, link);
        }
        response
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
