//! Where the engine keeps its jobs: the [`Store`] trait, and its SQLite implementation in
//! [`sqlite`].
//!
//! A job is committed before its id is returned, and every state change is one statement, so a
//! process killed at any moment loses nothing: on start, jobs left `IN_PROGRESS` go back to
//! `QUEUED` and run again. SQLite runs in WAL mode with `synchronous=FULL`.
//!
//! A job's `runs` counts the runs that did not end it: a clean stop (SIGTERM) gives its run
//! back ([`Store::requeue_stopped`]), so only unclean ends (kill, crash) and runs whose outcome
//! could not be stored count toward [`MAX_RUNS`].
//!
//! Two implementations: [`SqliteStore`] (one server, the default) and [`PostgresStore`] (any
//! number of replicas). Across replicas a claimed job is *leased*: its worker renews the lease
//! every third of [`Store::lease`]; a replica that stops renewing (killed, cut off) loses the job
//! to the next claim once the lease expires, and the writes of a worker that lost its lease
//! ([`Store::finish`], [`Store::put_result`], the requeues) fail with [`StoreError::LeaseLost`]
//! instead of overwriting the new owner's. Callback deliveries are leased the same way, so one
//! job end is delivered by one replica at a time. With SQLite, one server owns the file (a lock
//! file in the data directory), so its job leases never move; its callbacks are leased alike.

pub mod ends;
pub mod postgres;
pub mod rows;
pub mod sqlite;

use std::time::Duration;

pub use ends::JobEnds;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

pub use crate::error::StoreError;
use crate::idempotency::IdempotencyClaim;
pub use crate::job::list::SortBy;
use crate::job::spec::JobSpec;
use crate::job::state::JobState;
use crate::job::status::{CallbackState, JobStatus};
use crate::job::{CallbackBody, JobId, Owner, UploadedFile};

/// Runs a job gets that end uncleanly (the process killed or crashed) or whose outcome cannot
/// be stored, before it is failed rather than run again.
pub const MAX_RUNS: i64 = 3;

/// How long a claim (of a job, or of a callback's delivery) lasts without being renewed, unless
/// `HUME_ACTION_LEASE_SECS` says otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What [`Store::insert`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The job (and its idempotency key, if any) is committed.
    Job,
    /// Its idempotency key was already claimed by a live record (another replica won the race):
    /// nothing was stored; the caller answers with that record's job, or a conflict.
    KeyTaken(crate::idempotency::IdempotencyRecord),
}

/// A job to insert.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: JobId,
    /// Who the job belongs to.
    pub owner: Owner,
    /// What the job asks (stored as its v0 echo).
    pub spec: JobSpec,
    pub created_ms: i64,
    pub files: Vec<UploadedFile>,
    /// The caller's API key sealed for this job (`crate::sealed`), when its runners need one.
    pub api_key_sealed: Option<String>,
    /// Recorded in the same transaction as the job.
    pub idempotency: Option<IdempotencyClaim>,
    /// What its callback carries.
    pub callback_body: CallbackBody,
}

/// A stored job, without its predictions.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: JobId,
    /// Who the job belongs to.
    pub owner: Owner,
    /// What the job asks.
    pub spec: JobSpec,
    pub state: JobState,
    pub callback_url: Option<String>,
    /// The caller's sealed API key, until the job ends.
    pub api_key_sealed: Option<String>,
    /// Runs started that did not end the job and were not given back by a clean stop (this one
    /// included, once claimed).
    pub runs: i64,
    /// Why the last run did not end the job, while it has not ended.
    pub last_problem: Option<String>,
    /// What its callback carries.
    pub callback_body: CallbackBody,
    /// The stage its running worker last recorded (`downloading`, `measuring`), if any.
    pub stage: Option<String>,
}

/// The filters of `GET /v0/batch/jobs`, within one owner's jobs.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub owner: Owner,
    pub limit: i64,
    pub statuses: Vec<JobStatus>,
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
    pub id: JobId,
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
        Ok(Self { key: key.parse().map_err(|_| ())?, id: id_ok.then(|| id.into()).ok_or(())? })
    }
}

/// Durable job storage.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Commits a new `QUEUED` job and its files, and its idempotency key if it has one: the key
    /// is claimed atomically with the job, so of two replicas inserting one key, one stores its
    /// job and the other gets [`Inserted::KeyTaken`] and stores nothing.
    async fn insert(&self, job: NewJob) -> Result<Inserted, StoreError>;
    /// Claims the oldest `QUEUED` job, or an `IN_PROGRESS` one whose lease expired (its replica
    /// stopped renewing it: that run counts as an unclean end), for this replica: moves it to
    /// `IN_PROGRESS` with a fresh lease, counts the run, and returns it.
    async fn claim_next(&self, now_ms: i64) -> Result<Option<JobRecord>, StoreError>;
    /// Puts jobs an uncleanly ended process left `IN_PROGRESS` back in the queue; returns how
    /// many. A job whose runs reached [`MAX_RUNS`] fails instead (it may be what crashes us).
    /// With replicas, only jobs whose lease expired: the others are held by live replicas.
    async fn requeue_interrupted(&self, now_ms: i64) -> Result<u64, StoreError>;
    /// Extends this replica's lease on job `id`; `false` when it no longer holds it (another
    /// replica took it over, or it ended): the run must be abandoned at once.
    async fn renew(&self, id: &JobId) -> Result<bool, StoreError>;
    /// How long a claim lasts unrenewed: workers renew every third of it.
    fn lease(&self) -> Duration;
    /// Puts one `IN_PROGRESS` job back in the queue because its run could not finish; the run
    /// counts, and `problem` is kept for the message should the job be given up.
    async fn requeue(&self, id: &JobId, problem: &str) -> Result<(), StoreError>;
    /// Puts one `IN_PROGRESS` job back in the queue at a clean shutdown: its run does not count.
    async fn requeue_stopped(&self, id: &JobId) -> Result<(), StoreError>;
    /// Records how far this replica's run of job `id` is (`downloading`, `measuring`), for its
    /// summary's progress; a run that lost the job's lease records nothing.
    async fn set_stage(&self, id: &JobId, stage: &str) -> Result<(), StoreError>;
    /// Where the ends of jobs are announced, to the requests waiting on them: on every replica,
    /// whichever replica ended the job.
    fn ends(&self) -> &JobEnds;
    /// Stores one source's result (a v0 source result as JSON) at `position` of job `id`'s
    /// predictions, replacing what an earlier, interrupted run stored there.
    async fn put_result(&self, id: &JobId, position: i64, json: &str) -> Result<(), StoreError>;
    /// How many source results job `id` has stored.
    async fn result_count(&self, id: &JobId) -> Result<i64, StoreError>;
    /// One stored source result of job `id`, as JSON.
    async fn result(&self, id: &JobId, position: i64) -> Result<Option<String>, StoreError>;
    /// Records a job's end (`Completed` or `Failed`; its results are already stored); drops its
    /// uploads and its sealed key. A callback still to be sent is claimed for this replica in
    /// the same write, so the finishing replica delivers it.
    async fn finish(&self, id: &JobId, state: &JobState) -> Result<(), StoreError>;
    /// One job (whoever owns it: the caller checks).
    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError>;
    /// Jobs matching a filter.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<JobRecord>, StoreError>;
    /// A job's uploaded files, in upload order.
    async fn files(&self, id: &JobId) -> Result<Vec<UploadedFile>, StoreError>;
    /// Claims, for this replica, ended jobs whose callback is still to be delivered and whose
    /// delivery nobody holds (never claimed, or its claim expired), and returns them: each is
    /// claimed by one replica at a time.
    async fn claim_callbacks(&self) -> Result<Vec<JobRecord>, StoreError>;
    /// Extends this replica's claim on job `id`'s callback; `false` when it no longer holds it.
    async fn renew_callback(&self, id: &JobId) -> Result<bool, StoreError>;
    /// Records a callback's fate (`DELIVERED` or `FAILED`), if this replica still holds its
    /// delivery.
    async fn set_callback_state(&self, id: &JobId, state: CallbackState) -> Result<(), StoreError>;
    /// How many jobs are in each state (`QUEUED`, `IN_PROGRESS`, `COMPLETED`, `FAILED`), for
    /// every owner: what `/metrics` reports.
    async fn count_by_status(&self) -> Result<Vec<(JobStatus, i64)>, StoreError>;
    /// Whether the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// What the store is, as `/readyz` names it (`sqlite`, `postgresql`).
    fn kind(&self) -> &'static str;
}

/// Job `id`'s predictions as the bytes of one JSON array, read from the store one source at a
/// time: what readers and callbacks are sent, without the whole array ever in memory.
pub fn predictions_json(
    store: std::sync::Arc<dyn Store>,
    id: JobId,
) -> impl futures::Stream<Item = Result<bytes::Bytes, StoreError>> + Send + 'static {
    enum At {
        Start,
        Source(i64, i64),
        Done,
    }
    futures::stream::try_unfold(At::Start, move |at| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            Ok(match at {
                At::Start => Some((bytes::Bytes::from_static(b"["), At::Source(0, store.result_count(&id).await?))),
                At::Source(position, count) if position < count => {
                    let body = store.result(&id, position).await?.unwrap_or_else(|| "null".into());
                    let text = if position == 0 { body } else { format!(",{body}") };
                    Some((bytes::Bytes::from(text), At::Source(position + 1, count)))
                }
                At::Source(..) => Some((bytes::Bytes::from_static(b"]"), At::Done)),
                At::Done => None,
            })
        }
    })
}
