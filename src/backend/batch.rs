//! The `hume-batch` backend: a pass-through to a v0-compatible batch API.
//!
//! Job ids are the upstream's; jobs are read into v0's shapes and written back in them, and
//! downloads come back unchanged, so Hume's v0 SDKs pointed at this server keep working. The
//! value added is the rate limit, retries and idempotency in front.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::backend::{Backend, Download, Format, JobPage, SummaryQuery};
use crate::error::{ApiError, ErrorCode};
use crate::job::list::ListQuery;
use crate::job::state::{JobState, JobView};
use crate::job::{Caller, JobId, JobRequest};
use crate::predictions::SourceResult;
use crate::summary::{self, Summary, SummaryOptions};
use crate::upstream::v0::HumeV0Client;

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

    /// The upstream's answer to `GET path?query`, as it came.
    async fn read(&self, caller: &Caller, path: &str, query: &[(String, String)]) -> Result<bytes::Bytes, ApiError> {
        Ok(self.client.get(caller.require_api_key()?, path, query).await?.body)
    }

    /// The upstream's answer to `GET path`, read as `T` (v0's shape of it).
    async fn read_json<T: DeserializeOwned>(&self, caller: &Caller, path: &str) -> Result<T, ApiError> {
        serde_json::from_slice(&self.read(caller, path, &[]).await?).map_err(unreadable)
    }

    /// The upstream's job `id`, read as v0's job and keeping the bytes it came as.
    async fn read_job(&self, caller: &Caller, id: &JobId) -> Result<JobView, ApiError> {
        let body = self.read(caller, &job_path(id, "")?, &[]).await?;
        let view: JobView = serde_json::from_slice(&body).map_err(unreadable)?;
        Ok(JobView { received: Some(body), ..view })
    }
}

/// A job id as one path segment, so it cannot walk to another upstream path.
fn job_path(id: &JobId, suffix: &str) -> Result<String, ApiError> {
    let id = id.as_str();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) {
        return Err(ApiError::NotFound(format!(
            "No job with id {id:?}: a job id holds only letters, digits, '-' and '_'."
        )));
    }
    Ok(format!("/v0/batch/jobs/{id}{suffix}"))
}

#[async_trait::async_trait]
impl Backend for BatchBackend {
    async fn submit(&self, caller: &Caller, job: JobRequest) -> Result<JobId, ApiError> {
        if !job.files.is_empty() {
            return Err(ApiError::BadRequest {
                code: ErrorCode::UploadsNotSupported,
                message:
                    "The hume-batch backend forwards URLs and text only; host the files and send their URLs instead."
                        .into(),
            });
        }
        Ok(self.client.create_job(caller.require_api_key()?, &job.spec.to_v0_request()).await?.into())
    }

    /// The upstream's page: v0's list has no next-page token, so neither has this one.
    async fn list_jobs(&self, caller: &Caller, query: &ListQuery) -> Result<JobPage, ApiError> {
        let pairs: Vec<(String, String)> = query.pairs().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let body = self.read(caller, "/v0/batch/jobs", &pairs).await?;
        let jobs = serde_json::from_slice(&body).map_err(unreadable)?;
        Ok(JobPage { jobs, next_page_token: None, received: Some(body) })
    }

    async fn job(&self, caller: &Caller, id: &JobId) -> Result<JobView, ApiError> {
        self.read_job(caller, id).await
    }

    async fn predictions(&self, caller: &Caller, id: &JobId) -> Result<Download, ApiError> {
        Ok(Download::whole(Format::Json, self.read(caller, &job_path(id, "/predictions")?, &[]).await?))
    }

    async fn artifacts(&self, caller: &Caller, id: &JobId) -> Result<Download, ApiError> {
        Ok(Download::whole(Format::Zip, self.read(caller, &job_path(id, "/artifacts")?, &[]).await?))
    }

    /// Built from the upstream's job and predictions. Waiting asks the upstream for the job's
    /// state every [`UPSTREAM_POLL`] (each ask is one request under the key's rate limit).
    async fn summary(&self, caller: &Caller, id: &JobId, query: SummaryQuery) -> Result<Summary, ApiError> {
        let deadline = tokio::time::Instant::now() + query.wait;
        let job = loop {
            let job = self.read_job(caller, id).await?;
            let now = tokio::time::Instant::now();
            if matches!(job.state, JobState::Completed { .. } | JobState::Failed { .. }) || now >= deadline {
                break job;
            }
            tokio::time::sleep_until(deadline.min(now + UPSTREAM_POLL)).await;
        };
        let settings = self.summary.settings(query.window_secs);
        let mut builder = summary::Builder::new(&settings);
        if matches!(job.state, JobState::Completed { .. }) {
            let sources: Vec<Value> = self.read_json(caller, &job_path(id, "/predictions")?).await?;
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
            ["urls", "text", "files"].iter().map(|k| job.request[k].as_array().map_or(0, Vec::len) as u64).sum();
        let facts = summary::JobFacts {
            id: id.as_str(),
            state: &job.state,
            sources_total,
            recorded_stage: None,
            view_url: None,
        };
        Ok(builder.finish(facts))
    }
}

/// How often a waiting summary asks the upstream whether the job ended.
pub const UPSTREAM_POLL: std::time::Duration = std::time::Duration::from_secs(5);

fn unreadable(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal("the upstream's answer could not be read as v0's", e)
}
