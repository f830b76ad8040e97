//! The `hume-batch` backend: a pass-through to a v0-compatible batch API.
//!
//! Job ids are the upstream's; bodies come back unchanged, so Hume's v0 SDKs pointed at this
//! server keep working. The value added is the rate limit, retries and idempotency in front.

use std::sync::Arc;

use crate::backend::{Backend, RawBody};
use crate::error::ApiError;
use crate::job::{Caller, JobRequest};
use crate::upstream::v0::{HumeV0Client, RawResponse};

/// Pass-through to the batch API at `HUME_BATCH_BASE_URL`.
pub struct BatchBackend {
    client: Arc<HumeV0Client>,
}

impl BatchBackend {
    /// A backend over the given client.
    pub fn new(client: Arc<HumeV0Client>) -> Self {
        Self { client }
    }

    async fn read(&self, caller: &Caller, path: &str, query: &[(String, String)]) -> Result<RawBody, ApiError> {
        let RawResponse { content_type, body } = self.client.get(caller.require_api_key()?, path, query).await?;
        Ok(RawBody {
            content_type: content_type.unwrap_or_else(|| "application/json".into()),
            body: body.into(),
            link: None,
        })
    }
}

/// A job id as one path segment, so it cannot walk to another upstream path.
fn job_path(id: &str, suffix: &str) -> Result<String, ApiError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        return Err(ApiError::NotFound(format!(
            "No job with id {id:?}: a job id holds only letters, digits, '-' and '_'."
        )));
    }
    Ok(format!("/v0/batch/jobs/{id}{suffix}"))
}

#[async_trait::async_trait]
impl Backend for BatchBackend {
    async fn submit(&self, caller: &Caller, job: JobRequest) -> Result<String, ApiError> {
        if !job.files.is_empty() {
            return Err(ApiError::BadRequest {
                status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                code: "uploads_not_supported",
                message:
                    "The hume-batch backend forwards URLs and text only; host the files and send their URLs instead."
                        .into(),
            });
        }
        Ok(self.client.create_job(caller.require_api_key()?, &job.request).await?)
    }

    async fn list_jobs(&self, caller: &Caller, query: &[(String, String)]) -> Result<RawBody, ApiError> {
        self.read(caller, "/v0/batch/jobs", query).await
    }

    async fn job(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError> {
        self.read(caller, &job_path(id, "")?, &[]).await
    }

    async fn predictions(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError> {
        self.read(caller, &job_path(id, "/predictions")?, &[]).await
    }

    async fn artifacts(&self, caller: &Caller, id: &str) -> Result<RawBody, ApiError> {
        self.read(caller, &job_path(id, "/artifacts")?, &[]).await
    }
}
