//! Where jobs run. Each backend takes the same typed job request and answers the same reads in
//! domain values (a [`JobView`], a [`JobPage`], a [`Download`], a [`Summary`]), so the action and
//! the `/v0/batch/jobs` routes never care which one is configured, and only `crate::http`
//! knows they become HTTP answers.

pub mod batch;
pub mod engine;

use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::ApiError;
use crate::job::list::ListQuery;
use crate::job::state::JobView;
use crate::job::status::JobStatus;
use crate::job::{Caller, JobId, JobRequest};
use crate::summary::Summary;

/// A page of the caller's jobs, and where the next one starts when there is one.
#[derive(Debug, Clone, Default)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// The `page_token` of the next page (opaque to the caller, and to the HTTP layer that
    /// writes it into a `Link` header).
    pub next_page_token: Option<String>,
    /// The bytes the page was read from, when it came from an upstream (`hume-batch`): written
    /// back as they came.
    pub received: Option<Bytes>,
}

/// What a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An ended job's predictions: a JSON array, one entry per source.
    Json,
    /// An ended job's artifacts: a zip archive of CSV files.
    Zip,
}

/// A download, as its bytes come: streamed, so a large one is never whole in memory.
pub struct Download {
    pub format: Format,
    pub bytes: BoxStream<'static, Result<Bytes, BoxError>>,
}

/// Why a download's stream broke off.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Download {
    /// A download of `format` whose bytes `stream` yields.
    pub fn stream<E>(format: Format, stream: impl futures::Stream<Item = Result<Bytes, E>> + Send + 'static) -> Self
    where
        E: Into<BoxError>,
    {
        use futures::StreamExt;
        Self { format, bytes: stream.map(|chunk| chunk.map_err(Into::into)).boxed() }
    }

    /// A download whose bytes are all here.
    pub fn whole(format: Format, bytes: Bytes) -> Self {
        Self::stream(format, futures::stream::once(async move { Ok::<_, BoxError>(bytes) }))
    }
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("format", &self.format).finish_non_exhaustive()
    }
}

/// What `GET /v1/jobs/{id}/summary` asks (the wait already within `HUME_ACTION_SUMMARY_MAX_WAIT_SECS`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SummaryQuery {
    /// How long to hold the answer for the job to end.
    pub wait: std::time::Duration,
    /// The timeline's window in seconds; `None` chooses per file.
    pub window_secs: Option<f64>,
}

/// A place jobs run.
/// What `/readyz` lists: each part a backend runs on, and its state in words.
pub type Components = std::collections::BTreeMap<&'static str, String>;

#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// Starts a job and returns its id.
    async fn submit(&self, caller: &Caller, job: JobRequest) -> Result<JobId, ApiError>;
    /// A page of the caller's jobs (`GET /v0/batch/jobs`).
    async fn list_jobs(&self, caller: &Caller, query: &ListQuery) -> Result<JobPage, ApiError>;
    /// One of the caller's jobs (`GET /v0/batch/jobs/{id}`).
    async fn job(&self, caller: &Caller, id: &JobId) -> Result<JobView, ApiError>;
    /// An ended job's predictions (`GET /v0/batch/jobs/{id}/predictions`).
    async fn predictions(&self, caller: &Caller, id: &JobId) -> Result<Download, ApiError>;
    /// An ended job's artifacts, a zip (`GET /v0/batch/jobs/{id}/artifacts`).
    async fn artifacts(&self, caller: &Caller, id: &JobId) -> Result<Download, ApiError>;
    /// `GET /v1/jobs/{id}/summary`: once the job ended or `query.wait` passed, what it found.
    async fn summary(&self, caller: &Caller, id: &JobId, query: SummaryQuery) -> Result<Summary, ApiError>;
    /// Whether `submit` commits `JobRequest::idempotency` together with the job itself.
    fn records_idempotency_keys(&self) -> bool {
        false
    }
    /// Whether the backend can take work now, with the state of each part it runs on (models,
    /// ffmpeg, store); the reason when it cannot.
    async fn ready(&self) -> Result<Components, String> {
        Ok(Components::new())
    }
    /// How many jobs are in each state, in every replica's store, for `/metrics`: `None` when
    /// this backend keeps no jobs (pass-through), `Some(Err)` when its store did not answer.
    async fn jobs_by_status(&self) -> Option<Result<Vec<(JobStatus, i64)>, String>> {
        None
    }
    /// Stops background work after in-flight jobs reach a safe point.
    async fn shutdown(&self) {}
}
