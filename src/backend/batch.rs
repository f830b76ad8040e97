//! The `hume-batch` backend: a pass-through to a v0-compatible batch API.
//!
//! Job ids are the upstream's; bodies come back unchanged, so Hume's v0 SDKs pointed at this
//! server keep working. The value added is the rate limit, retries and idempotency in front.

use std::sync::Arc;

use serde_json::Value;

use crate::backend::{Backend, RawBody, SummaryQuery};
use crate::error::{ApiError, ErrorCode};
use crate::job::list::ListQuery;
use crate::job::state::JobState;
use crate::job::{Caller, JobRequest};
use crate::predictions::SourceResult;
use crate::summary::{self, Summary, SummaryOptions};
use crate::upstream::v0::{HumeV0Client, RawResponse};

/// Pass-through to the batch API at `HUME_BATCH_BASE_URL`.
pub struct BatchBackend {
    client: Arc<HumeV0Client>,
    summary: Arc<SummaryOptions>,
}

impl BatchBackend {
    /// A backend over the given client.
    pub fn new(client: Arc<HumeV0Client>, summary: Arc<SummaryOptions>) -> Self {
        Self { client, summary }
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
                code: ErrorCode::UploadsNotSupported,
                message:
                    "The hume-batch backend forwards URLs and text only; host the files and send their URLs instead."
                        .into(),
            });
        }
        Ok(self.client.create_job(caller.require_api_key()?, &job.spec.to_v0_request()).await?)
    }

    async fn list_jobs(&self, caller: &Caller, query: &ListQuery) -> Result<RawBody, ApiError> {
        let pairs: Vec<(String, String)> = query.pairs().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        self.read(caller, "/v0/batch/jobs", &pairs).await
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

    /// Built from the upstream's job and predictions. Waiting asks the upstream for the job's
    /// state every [`UPSTREAM_POLL`] (each ask is one request under the key's rate limit).
    async fn summary(&self, caller: &Caller, id: &str, query: SummaryQuery) -> Result<Summary, ApiError> {
        let key = caller.require_api_key()?;
        let deadline = tokio::time::Instant::now() + query.wait;
        let (request, state) = loop {
            let job = self.client.get(key, &job_path(id, "")?, &[]).await?;
            let job: Value = serde_json::from_slice(&job.body).map_err(unreadable)?;
            let state = upstream_state(&job["state"]).ok_or_else(|| unreadable("no state"))?;
            let now = tokio::time::Instant::now();
            if matches!(state, JobState::Completed { .. } | JobState::Failed { .. }) || now >= deadline {
                break (job["request"].clone(), state);
            }
            tokio::time::sleep_until(deadline.min(now + UPSTREAM_POLL)).await;
        };
        let settings = self.summary.settings(query.window_secs);
        let mut builder = summary::Builder::new(&settings);
        if matches!(state, JobState::Completed { .. }) {
            let predictions = self.client.get(key, &job_path(id, "/predictions")?, &[]).await?;
            let sources: Vec<Value> = serde_json::from_slice(&predictions.body).map_err(unreadable)?;
            for (position, source) in sources.into_iter().enumerate() {
                match serde_json::from_value::<SourceResult>(source) {
                    Ok(result) => builder.add(&result),
                    Err(e) => builder.add_unreadable(
                        format!("source {position}"),
                        format!("the upstream's predictions for it could not be read ({e})"),
                    ),
                }
            }
        }
        let sources_total =
            ["urls", "text", "files"].iter().map(|k| request[k].as_array().map_or(0, Vec::len) as u64).sum();
        let facts = summary::JobFacts { id, state: &state, sources_total, recorded_stage: None, view_url: None };
        Ok(builder.finish(facts))
    }
}

/// How often a waiting summary asks the upstream whether the job ended.
pub const UPSTREAM_POLL: std::time::Duration = std::time::Duration::from_secs(5);

fn unreadable(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal("the upstream's job could not be read", e)
}

/// A v0 `state` object as a [`JobState`].
fn upstream_state(state: &Value) -> Option<JobState> {
    let ms = |key: &str| state[key].as_i64().unwrap_or(0);
    let created_ms = ms("created_timestamp_ms");
    Some(match state["status"].as_str()? {
        "QUEUED" => JobState::Queued { created_ms },
        "IN_PROGRESS" => JobState::InProgress { created_ms, started_ms: ms("started_timestamp_ms") },
        "COMPLETED" => JobState::Completed {
            created_ms,
            started_ms: ms("started_timestamp_ms"),
            ended_ms: ms("ended_timestamp_ms"),
            num_predictions: ms("num_predictions"),
            num_errors: ms("num_errors"),
        },
        _ => JobState::Failed {
            created_ms,
            started_ms: ms("started_timestamp_ms"),
            ended_ms: ms("ended_timestamp_ms"),
            message: state["message"].as_str().unwrap_or_default().to_owned(),
        },
    })
}
