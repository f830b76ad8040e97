//! Where the engine keeps its jobs: the [`Store`] trait, and its SQLite implementation in
//! [`sqlite`].
//!
//! A job is committed before its id is returned, and every state change is one statement, so a
//! process killed at any moment loses nothing: on start, jobs left `IN_PROGRESS` go back to
//! `QUEUED` and run again. SQLite runs in WAL mode with `synchronous=FULL`.

pub mod sqlite;

use serde_json::Value;

pub use sqlite::SqliteStore;

use crate::error::ApiError;
use crate::idempotency::IdempotencyClaim;
use crate::job::state::JobState;
use crate::job::UploadedFile;

/// Runs a job gets before an interrupted one is failed rather than queued again.
pub const MAX_RUNS: i64 = 3;

/// A storage failure (the database is unreadable, full, or gone).
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(pub String);

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal("the job store failed", e)
    }
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    /// Who the job belongs to (`crate::job::Owner`).
    pub owner: String,
    /// The v0 request echo.
    pub request: Value,
    pub created_ms: i64,
    pub callback_url: Option<String>,
    pub files: Vec<UploadedFile>,
    /// The caller's API key sealed for this job (`crate::sealed`), when its runners need one.
    pub api_key_sealed: Option<String>,
    /// Recorded in the same transaction as the job.
    pub idempotency: Option<IdempotencyClaim>,
}

/// A stored job, without its predictions.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    /// Who the job belongs to (`crate::job::Owner`).
    pub owner: String,
    pub request: Value,
    pub state: JobState,
    pub callback_url: Option<String>,
    /// The caller's sealed API key, until the job ends.
    pub api_key_sealed: Option<String>,
}

/// Which timestamp `GET /v0/batch/jobs` sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Created,
    Started,
    Ended,
}

/// The filters of `GET /v0/batch/jobs`, within one owner's jobs.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub owner: String,
    pub limit: i64,
    pub statuses: Vec<String>,
    /// `Some(true)`: created after `timestamp_ms`; `Some(false)`: before.
    pub created_after: Option<bool>,
    pub timestamp_ms: i64,
    pub sort_by: SortBy,
    pub ascending: bool,
    /// Only jobs after this one in the sort order: the last of the previous page.
    pub after: Option<PageToken>,
}

/// Where a page of jobs ends: the sort key (a missing timestamp counts as 0) and the id of its
/// last job. Written as `<key>.<id>` in `page_token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub key: i64,
    pub id: String,
}

impl PageToken {
    /// The token of `job`'s place in a list sorted by `sort_by`.
    pub fn of(job: &JobRecord, sort_by: SortBy) -> Self {
        let (created_ms, started_ms) = job.state.created_and_started(0);
        let key = match (sort_by, &job.state) {
            (SortBy::Created, _) => created_ms,
            (SortBy::Started, JobState::Queued { .. }) => 0,
            (SortBy::Started, _) => started_ms,
            (SortBy::Ended, JobState::Completed { ended_ms, .. } | JobState::Failed { ended_ms, .. }) => *ended_ms,
            (SortBy::Ended, _) => 0,
        };
        Self { key, id: job.id.clone() }
    }
}

impl std::fmt::Display for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.key, self.id)
    }
}

impl std::str::FromStr for PageToken {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (key, id) = s.split_once('.').ok_or(())?;
        let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        Ok(Self { key: key.parse().map_err(|_| ())?, id: id_ok.then(|| id.to_owned()).ok_or(())? })
    }
}

/// Durable job storage.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Commits a new `QUEUED` job and its files.
    async fn insert(&self, job: NewJob) -> Result<(), StoreError>;
    /// Moves the oldest `QUEUED` job to `IN_PROGRESS` and returns it.
    async fn claim_next(&self, now_ms: i64) -> Result<Option<JobRecord>, StoreError>;
    /// Puts jobs a stopped process left `IN_PROGRESS` back in the queue; returns how many. A job
    /// that has already been started [`MAX_RUNS`] times fails instead (it may be what crashes us).
    async fn requeue_interrupted(&self, now_ms: i64) -> Result<u64, StoreError>;
    /// Puts one `IN_PROGRESS` job back in the queue (its run could not finish).
    async fn requeue(&self, id: &str) -> Result<(), StoreError>;
    /// Records a job's end (`Completed` or `Failed`) with its predictions; drops its uploads and
    /// its sealed key.
    async fn finish(&self, id: &str, state: &JobState, predictions: &Value) -> Result<(), StoreError>;
    /// One job (whoever owns it: the caller checks).
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError>;
    /// One job's predictions, once it has ended.
    async fn predictions(&self, id: &str) -> Result<Option<Value>, StoreError>;
    /// Jobs matching a filter.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<JobRecord>, StoreError>;
    /// A job's uploaded files, in upload order.
    async fn files(&self, id: &str) -> Result<Vec<UploadedFile>, StoreError>;
    /// Jobs whose callback is still to be delivered.
    async fn pending_callbacks(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Records a callback's fate (`DELIVERED` or `FAILED`).
    async fn set_callback_state(&self, id: &str, state: &str) -> Result<(), StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
