//! The engine backends, `local` (the default) and `hume`: jobs stored in SQLite (or PostgreSQL,
//! shared by replicas) and run by `crate::engine`, which owns the job whichever runner measures
//! each model.
//!
//! The job is committed before its id is returned; workers fetch, measure and store in the
//! background. Reads are answered from the database in v0's shapes. On `hume`, the caller's key
//! is required at intake and stored sealed with the job, so its workers use the caller's key
//! also after a restart.
//!
//! A job belongs to its caller (`crate::job::Owner`): only that caller lists, reads or downloads
//! it; to anyone else it does not exist (404). Lists are paged: at most [`MAX_LIST_LIMIT`] jobs
//! and [`MAX_LIST_BYTES`] per answer, each job's request shown as a bounded preview, the next
//! page linked in a `Link` header.

use std::io::{Seek, SeekFrom};
use std::sync::Arc;

use futures::StreamExt;

use crate::backend::{Backend, Components, Download, Format, JobPage, SummaryQuery};
use crate::engine::give_back_memory;
use crate::engine::worker::WorkerPool;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::job::list::{Direction, ListQuery, SortBy, When};
use crate::job::state::{request_preview, JobState, JobView};
use crate::job::status::JobStatus;
use crate::job::{now_ms, Owner};
use crate::job::{Caller, JobId, JobRequest};
use crate::predictions::artifacts::write_zip;
use crate::sealed::Sealer;
use crate::store::{predictions_json, Inserted, JobRecord, ListFilter, NewJob, PageToken, Store};
use crate::summary::{self, Summary, SummaryOptions, SummarySettings};

/// Jobs run here, by the engine's workers.
pub struct EngineBackend {
    store: Arc<dyn Store>,
    workers: WorkerPool,
    /// Seals the caller's key into the job, when the runners call Hume.
    key_sealer: Option<Arc<Sealer>>,
    /// Held for the process's lifetime: one server per data directory (SQLite only; replicas
    /// on PostgreSQL share the store and hold none).
    _data_dir_lock: Option<std::fs::File>,
    /// The models and tools found at start-up, as `/readyz` lists them.
    components: Components,
    /// How summaries are made.
    summary: Arc<SummaryOptions>,
}

impl EngineBackend {
    /// A backend over a store, a (started) worker pool and the data directory's lock;
    /// `key_sealer` when jobs need the caller's Hume key (the `hume` backend).
    pub fn new(
        store: Arc<dyn Store>,
        workers: WorkerPool,
        data_dir_lock: Option<std::fs::File>,
        key_sealer: Option<Arc<Sealer>>,
        components: Components,
        summary: Arc<SummaryOptions>,
    ) -> Self {
        Self { store, workers, key_sealer, _data_dir_lock: data_dir_lock, components, summary }
    }

    /// The caller's job `id` once it has ended, or as it is when `wait` has passed. Waiting is an
    /// idle task: the job's end wakes it (`crate::store::JobEnds`), whichever replica ended it.
    async fn job_after(&self, caller: &Caller, id: &JobId, wait: std::time::Duration) -> Result<JobRecord, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        let watch = self.store.ends().watch(id.as_str());
        loop {
            let ended = watch.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let job = self.owned_job(caller, id).await?;
            let over = matches!(job.state, JobState::Completed { .. } | JobState::Failed { .. });
            if over || tokio::time::Instant::now() >= deadline {
                return Ok(job);
            }
            tokio::select! {
                _ = ended => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// The caller's job `id`: another caller's job is "not found", as on Hume.
    async fn owned_job(&self, caller: &Caller, id: &JobId) -> Result<JobRecord, ApiError> {
        let job = self.store.get(id).await?.filter(|job| job.owner == caller.owner());
        job.ok_or_else(|| not_found(id))
    }

    async fn ended_job(&self, caller: &Caller, id: &JobId) -> Result<JobRecord, ApiError> {
        let job = self.owned_job(caller, id).await?;
        match job.state {
            JobState::Completed { .. } | JobState::Failed { .. } => Ok(job),
            ref state => Err(ApiError::BadRequest {
                code: ErrorCode::JobNotFinished,
                message: format!(
                    "Job {id} is {}; its predictions are ready once it is COMPLETED. Poll GET /v0/batch/jobs/{id}.",
                    state.status()
                ),
            }),
        }
    }
}

fn not_found(id: &JobId) -> ApiError {
    ApiError::NotFound(format!("job not found: no job with id {id:?}"))
}

#[async_trait::async_trait]
impl Backend for EngineBackend {
    async fn submit(&self, caller: &Caller, job: JobRequest) -> Result<JobId, ApiError> {
        let id = JobId::generate();
        let api_key_sealed = match &self.key_sealer {
            Some(sealer) => Some(sealer.seal(caller.require_api_key()?, id.as_str())),
            None => None,
        };
        let new = NewJob {
            callback_body: job.callback_body,
            id: id.clone(),
            owner: caller.owner(),
            spec: job.spec,
            created_ms: now_ms(),
            files: job.files,
            api_key_sealed,
            idempotency: job.idempotency,
        };
        let request_hash = new.idempotency.as_ref().map(|claim| claim.request_hash.clone());
        match self.store.insert(new).await? {
            Inserted::Job => {
                self.workers.wake();
                Ok(id)
            }
            // Another replica claimed the key first: its job is the answer.
            Inserted::KeyTaken(record) if Some(&record.request_hash) == request_hash.as_ref() => Ok(record.job_id),
            Inserted::KeyTaken(_) => Err(ApiError::IdempotencyConflict),
        }
    }

    async fn list_jobs(&self, caller: &Caller, query: &ListQuery) -> Result<JobPage, ApiError> {
        let filter = list_filter(caller.owner(), query)?;
        // One more than the page tells whether there is a next one.
        let jobs = self.store.list(&ListFilter { limit: filter.limit + 1, ..filter.clone() }).await?;
        let page = list_page(&jobs, filter.limit as usize);
        let next_page_token =
            (page.len() < jobs.len()).then(|| PageToken::of(&jobs[page.len() - 1], filter.sort_by).to_string());
        Ok(JobPage { jobs: page, next_page_token, received: None })
    }

    async fn job(&self, caller: &Caller, id: &JobId) -> Result<JobView, ApiError> {
        let job = self.owned_job(caller, id).await?;
        Ok(JobView::new(job.id, job.spec.echo(), job.state))
    }

    async fn predictions(&self, caller: &Caller, id: &JobId) -> Result<Download, ApiError> {
        let job = self.ended_job(caller, id).await?;
        let trim = futures::stream::once(async {
            give_back_memory();
            Ok(bytes::Bytes::new())
        });
        Ok(Download::stream(Format::Json, predictions_json(self.store.clone(), job.id).chain(trim)))
    }

    async fn artifacts(&self, caller: &Caller, id: &JobId) -> Result<Download, ApiError> {
        let job = self.ended_job(caller, id).await?;
        let zip = write_artifacts(self.store.clone(), job.id, self.summary.settings(None)).await?;
        let file = tokio::fs::File::from_std(zip);
        Ok(Download::stream(Format::Zip, tokio_util::io::ReaderStream::new(file)))
    }

    async fn summary(&self, caller: &Caller, id: &JobId, query: SummaryQuery) -> Result<Summary, ApiError> {
        let job = self.job_after(caller, id, query.wait).await?;
        let settings = self.summary.settings(query.window_secs);
        let view_url = self.summary.view_url(id.as_str());
        Ok(summary::of_stored_job(self.store.as_ref(), &job, &settings, view_url).await?)
    }

    fn records_idempotency_keys(&self) -> bool {
        true
    }

    async fn ready(&self) -> Result<Components, String> {
        let kind = self.store.kind();
        self.store.ping().await.map_err(|e| format!("store: {kind}: {e}"))?;
        let mut components = self.components.clone();
        components.insert("store", format!("{kind}: ok"));
        Ok(components)
    }

    async fn jobs_by_status(&self) -> Option<Result<Vec<(JobStatus, i64)>, String>> {
        Some(self.store.count_by_status().await.map_err(|e| e.to_string()))
    }

    async fn shutdown(&self) {
        self.workers.shutdown().await;
    }
}

/// Jobs per page of `GET /v0/batch/jobs` at most; a larger `limit` is lowered to it.
pub const MAX_LIST_LIMIT: i64 = 100;

/// Bytes of one page at most: a page ends early, with a next link, rather than grow past it.
pub const MAX_LIST_BYTES: usize = 1 << 20;

/// The first of `jobs` (at most `limit`) as a page, within [`MAX_LIST_BYTES`] written as
/// v0's JSON array (but at least one job), each with a bounded preview of its request.
fn list_page(jobs: &[JobRecord], limit: usize) -> Vec<JobView> {
    let mut page = Vec::new();
    let mut bytes = 2;
    for job in jobs.iter().take(limit) {
        let view = JobView::new(job.id.clone(), request_preview(&job.spec.echo()), job.state.clone());
        let written = serde_json::to_vec(&view).map_or(0, |json| json.len());
        if !page.is_empty() && bytes + written + 1 > MAX_LIST_BYTES {
            break;
        }
        bytes += written + 1;
        page.push(view);
    }
    page
}

/// The store filter of a list query, with v0's defaults (50 jobs, newest first), within
/// `owner`'s jobs; `page_token` (from a `Link: <...>; rel="next"` answer) continues a list.
fn list_filter(owner: Owner, query: &ListQuery) -> Result<ListFilter, FieldError> {
    let after = match &query.page_token {
        Some(token) => Some(token.parse().map_err(|()| {
            FieldError::new(ErrorCode::InvalidQuery, "page_token", "page_token must be a token from a Link header.")
        })?),
        None => None,
    };
    Ok(ListFilter {
        owner,
        after,
        limit: query.limit.unwrap_or(50).min(MAX_LIST_LIMIT),
        statuses: query.statuses.clone(),
        created_after: query.when.map(|when| when == When::CreatedAfter),
        timestamp_ms: query.timestamp_ms.unwrap_or_else(now_ms),
        sort_by: query.sort_by.unwrap_or(SortBy::Created),
        ascending: query.direction == Some(Direction::Asc),
    })
}

/// Writes job `id`'s artifacts zip to an unnamed temporary file (gone once closed), reading the
/// stored sources one at a time.
async fn write_artifacts(
    store: Arc<dyn Store>,
    id: JobId,
    settings: SummarySettings,
) -> Result<std::fs::File, ApiError> {
    let runtime = tokio::runtime::Handle::current();
    let count = store.result_count(&id).await?;
    let written = tokio::task::spawn_blocking(move || {
        let read = |position| {
            let text = runtime.block_on(store.result(&id, position)).map_err(|e| e.to_string())?;
            serde_json::from_str(text.as_deref().unwrap_or("null")).map_err(|e| e.to_string())
        };
        let mut file = tempfile::tempfile().map_err(|e| e.to_string())?;
        write_zip(count, read, |source| summary::timeline_rows(source, &settings), &mut file)?;
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        Ok::<_, String>(file)
    })
    .await
    .map_err(|e| ApiError::internal("could not build the artifacts zip", e))?;
    written.map_err(|e| ApiError::internal("could not build the artifacts zip", e))
}
