//! The PostgreSQL [`Store`]: jobs, uploads (`BYTEA`), predictions (one row per source) and
//! idempotency records shared by any number of replicas (`HUME_ACTION_DATABASE_URL`).
//!
//! Why it is shaped this way:
//! - A job is claimed with `FOR UPDATE SKIP LOCKED`, so replicas polling at once never take the
//!   same row, and never wait on each other's claims. The claim records this replica (a uuid
//!   per process) and a lease, `lease_until_ms`, on the database's clock (replicas' clocks may
//!   disagree; the database has one). An `IN_PROGRESS` job whose lease expired is claimable
//!   again: its replica died or was cut off; the takeover counts as an unclean end, so
//!   [`MAX_RUNS`] still gives up a job that keeps killing its replicas.
//! - Writes of a run are fenced: `finish`, `put_result` and the requeues only take effect while
//!   this replica still holds the lease (checked under the job row's lock, so a takeover cannot
//!   slip between the check and the write); otherwise they fail with
//!   [`StoreError::LeaseLost`] and the stale worker abandons its run.
//! - A callback is claimed the same way (`callback_owner`, `callback_until_ms`): by the replica
//!   that finishes the job, in the same statement; a pending callback whose claim expired is
//!   taken by the periodic sweep of any replica.
//! - An idempotency key is claimed by the primary key of `idempotency_keys`, in the same
//!   transaction as its job: of two replicas racing on one key, the second waits for the first
//!   to commit, inserts nothing, rolls its job back and answers with the winner's job. A record
//!   older than 24 h is replaced in place by the same statement.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::rows::{drop_files, insert_job, list_query, record, EndColumns, Shared, GIVEN_UP_MESSAGE, JOB_COLUMNS};
use super::{Inserted, JobEnds, JobRecord, ListFilter, NewJob, Store, StoreError, MAX_RUNS};
use crate::idempotency::{IdempotencyRecord, IdempotencyStore, KeyClaim, STALE_CLAIM_MS};
use crate::job::state::JobState;
use crate::job::status::{CallbackState, JobStatus};
use crate::job::{JobId, UploadedFile};

/// The fixed statuses the statements filter on (`crate::job::status`).
const QUEUED: &str = JobStatus::Queued.sql();
const IN_PROGRESS: &str = JobStatus::InProgress.sql();
const COMPLETED: &str = JobStatus::Completed.sql();
const FAILED: &str = JobStatus::Failed.sql();
const PENDING: &str = CallbackState::Pending.sql();

/// The database's clock, in Unix milliseconds: what leases are measured on.
const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// Why a job whose lease expired is run again (kept as its last problem).
const UNCLEAN_END: &str =
    "the replica running it stopped renewing its lease (killed, crashed, or cut off from the database)";

/// How many pending callbacks one sweep claims at most.
const CALLBACKS_PER_SWEEP: i64 = 100;

/// Jobs in PostgreSQL, as seen by one replica.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// This process: the owner of the leases it takes.
    replica: String,
    lease: Duration,
    /// The requests waiting on a job's end, woken by every replica's `NOTIFY`.
    ends: Arc<JobEnds>,
    /// Listens for those notifications while the store lives.
    _listener: Arc<AbortOnDrop>,
}

/// The channel every replica announces a job's end on, with the job id as payload.
const ENDS_CHANNEL: &str = "hume_action_job_ended";

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Passes on every job end announced on [`ENDS_CHANNEL`] (by any replica) to this replica's
/// waiters. Whenever the listening connection was lost (notifications sent meanwhile are lost
/// with it) every waiter is woken to read its job again.
async fn listen_for_ends(pool: PgPool, ends: Arc<JobEnds>) {
    loop {
        let Err(e) = pass_on_ends(&pool, &ends).await;
        tracing::warn!(error = %e, "job store: cannot listen for job ends; waiting requests are woken to read their jobs again");
        ends.wake_all();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Listens on [`ENDS_CHANNEL`] until the connection fails for good.
async fn pass_on_ends(pool: &PgPool, ends: &JobEnds) -> Result<std::convert::Infallible, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(ENDS_CHANNEL).await?;
    ends.wake_all();
    loop {
        match listener.try_recv().await? {
            Some(notification) => ends.ended(notification.payload()),
            // The connection was lost and is opened again on the next call.
            None => ends.wake_all(),
        }
    }
}

/// Where a database URL points, without its password: `host:port/database`.
pub fn describe_url(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(options) => describe(&options),
        Err(_) => "(an invalid URL)".into(),
    }
}

fn describe(options: &PgConnectOptions) -> String {
    format!("{}:{}/{}", options.get_host(), options.get_port(), options.get_database().unwrap_or("(default database)"))
}

impl PostgresStore {
    /// Connects to `url` with a pool of `pool_size`, trying again for up to `patience` while the
    /// server cannot be reached, and applies the migrations (`migrations/postgres`; replicas
    /// starting at once take turns on PostgreSQL's advisory lock). The error names the server
    /// (host, port, database; never the password) and the reason.
    pub async fn connect(url: &str, pool_size: u32, lease: Duration, patience: Duration) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::open("HUME_ACTION_DATABASE_URL is not a valid PostgreSQL URL", e))?;
        let target = describe(&options);
        let deadline = tokio::time::Instant::now() + patience;
        // One connection first: its error says why (refused, authentication, no such database),
        // where a pool's would only say that it timed out.
        loop {
            let attempt = tokio::time::timeout(
                Duration::from_secs(5),
                <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
            )
            .await;
            let attempt = attempt.unwrap_or_else(|_| Err(sqlx::Error::Io(std::io::ErrorKind::TimedOut.into())));
            match attempt {
                Ok(conn) => {
                    let _ = sqlx::Connection::close(conn).await;
                    break;
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(postgresql = %target, error = %e, "cannot reach PostgreSQL yet; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await; // a pause between attempts, not a wait on state
                }
                Err(e) => {
                    let what = format!(
                        "cannot reach PostgreSQL at {target} (HUME_ACTION_DATABASE_URL), tried for {} s",
                        patience.as_secs()
                    );
                    return Err(StoreError::open(what, e));
                }
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::open(format!("cannot open a pool on PostgreSQL at {target}"), e))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::open(format!("PostgreSQL at {target}: the migrations failed"), e))?;
        let replica = uuid::Uuid::new_v4().to_string();
        tracing::info!(postgresql = %target, replica = %replica, lease_secs = lease.as_secs_f64(), "job store: PostgreSQL");
        let ends = Arc::new(JobEnds::default());
        let listener = Arc::new(AbortOnDrop(tokio::spawn(listen_for_ends(pool.clone(), ends.clone()))));
        Ok(Self { pool, replica, lease, ends, _listener: listener })
    }

    /// The same database seen as another replica (a new owner id, the same pool): for tests
    /// that race replicas inside one process.
    pub fn as_new_replica(&self) -> Self {
        Self { replica: uuid::Uuid::new_v4().to_string(), ..self.clone() }
    }

    /// This replica's id, as the job's `lease_owner` records it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The pool, for tests that read the tables.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Whether this replica holds job `id`'s lease, locking the row against a takeover until
    /// `tx` ends.
    async fn holds(&self, tx: &mut sqlx::PgConnection, id: &JobId) -> Result<bool, StoreError> {
        let held = sqlx::query(&format!(
            "SELECT 1 FROM jobs WHERE id = $1 AND status = {IN_PROGRESS} AND lease_owner = $2 FOR SHARE"
        ))
        .bind(id)
        .bind(&self.replica)
        .fetch_optional(&mut *tx)
        .await?;
        Ok(held.is_some())
    }
}

/// The outcome of a fenced write (one conditioned on this replica's lease): no row changed means
/// the lease is gone, and the write must not count.
fn fenced(done: &sqlx::postgres::PgQueryResult) -> Result<(), StoreError> {
    match done.rows_affected() {
        0 => Err(StoreError::LeaseLost),
        _ => Ok(()),
    }
}

impl PostgresStore {
    /// The statements both dialects share.
    fn shared(&self) -> Shared<'_, sqlx::Postgres> {
        Shared { pool: &self.pool }
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_job::<sqlx::Postgres>(&mut tx, &job).await?;
        let Some(claim) = &job.idempotency else {
            tx.commit().await?;
            return Ok(Inserted::Job);
        };
        // The claim: a concurrent insert of the same key waits here for the first to commit.
        let expired_before = job.created_ms - crate::job::IDEMPOTENCY_TTL_MS;
        let won: Option<Option<String>> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (scope, key, request_hash, job_id, created_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (scope, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id, created_ms = EXCLUDED.created_ms
                 WHERE idempotency_keys.created_ms <= $6
             RETURNING job_id",
        )
        .bind(&claim.scope)
        .bind(&claim.key)
        .bind(&claim.request_hash)
        .bind(&job.id)
        .bind(job.created_ms)
        .bind(expired_before)
        .fetch_optional(&mut *tx)
        .await?;
        if won.is_some() {
            tx.commit().await?;
            return Ok(Inserted::Job);
        }
        tx.rollback().await?;
        let existing: Option<(String, Option<JobId>)> =
            sqlx::query_as("SELECT request_hash, job_id FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(&claim.scope)
                .bind(&claim.key)
                .fetch_optional(&self.pool)
                .await?;
        match existing {
            Some((request_hash, Some(job_id))) => Ok(Inserted::KeyTaken(IdempotencyRecord { request_hash, job_id })),
            _ => Err(StoreError::KeyInUse),
        }
    }

    async fn claim_next(&self, now_ms: i64) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!(
            "UPDATE jobs SET
                 message = CASE WHEN status = {IN_PROGRESS} THEN $4 ELSE message END,
                 status = {IN_PROGRESS}, started_ms = GREATEST($1, created_ms), runs = runs + 1, stage = NULL,
                 lease_owner = $2, lease_until_ms = {DB_NOW_MS} + $3
             WHERE id = (
                 SELECT id FROM jobs
                 WHERE status = {QUEUED} OR (status = {IN_PROGRESS} AND lease_until_ms < {DB_NOW_MS})
                 ORDER BY created_ms, id
                 LIMIT 1
                 FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(now_ms)
            .bind(&self.replica)
            .bind(self.lease_ms())
            .bind(UNCLEAN_END)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn requeue_interrupted(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "WITH failed AS (
                 UPDATE jobs SET status = {FAILED}, ended_ms = $1, api_key_sealed = NULL,
                     lease_owner = NULL, lease_until_ms = NULL,
                     message = {GIVEN_UP_MESSAGE}
                 WHERE status = {IN_PROGRESS} AND lease_until_ms < {DB_NOW_MS} AND runs >= $2
                 RETURNING id)
             DELETE FROM job_files WHERE job_id IN (SELECT id FROM failed)"
        ))
        .bind(now_ms)
        .bind(MAX_RUNS)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = {QUEUED}, started_ms = NULL, lease_owner = NULL, lease_until_ms = NULL, message = $1
             WHERE status = {IN_PROGRESS} AND lease_until_ms < {DB_NOW_MS}"
        ))
        .bind(UNCLEAN_END)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn renew(&self, id: &JobId) -> Result<bool, StoreError> {
        let renewed = sqlx::query(&format!(
            "UPDATE jobs SET lease_until_ms = {DB_NOW_MS} + $1
             WHERE id = $2 AND status = {IN_PROGRESS} AND lease_owner = $3"
        ))
        .bind(self.lease_ms())
        .bind(id)
        .bind(&self.replica)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() > 0)
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    async fn requeue(&self, id: &JobId, problem: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            &format!("UPDATE jobs SET status = {QUEUED}, started_ms = NULL, message = $1, lease_owner = NULL, lease_until_ms = NULL
             WHERE id = $2 AND status = {IN_PROGRESS} AND lease_owner = $3"),
        )
        .bind(problem)
        .bind(id)
        .bind(&self.replica)
        .execute(&self.pool)
        .await?;
        fenced(&done)
    }

    async fn requeue_stopped(&self, id: &JobId) -> Result<(), StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = {QUEUED}, started_ms = NULL, runs = GREATEST(runs - 1, 0),
                 lease_owner = NULL, lease_until_ms = NULL
             WHERE id = $1 AND status = {IN_PROGRESS} AND lease_owner = $2"
        ))
        .bind(id)
        .bind(&self.replica)
        .execute(&self.pool)
        .await?;
        fenced(&done)
    }

    async fn set_stage(&self, id: &JobId, stage: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE jobs SET stage = $1 WHERE id = $2 AND status = {IN_PROGRESS} AND lease_owner = $3"
        ))
        .bind(stage)
        .bind(id)
        .bind(&self.replica)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn ends(&self) -> &JobEnds {
        &self.ends
    }

    async fn put_result(&self, id: &JobId, position: i64, json: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if !self.holds(&mut tx, id).await? {
            return Err(StoreError::LeaseLost);
        }
        sqlx::query(
            "INSERT INTO job_results (job_id, position, body) VALUES ($1, $2, $3)
             ON CONFLICT (job_id, position) DO UPDATE SET body = EXCLUDED.body",
        )
        .bind(id)
        .bind(position)
        .bind(json)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish(&self, id: &JobId, state: &JobState) -> Result<(), StoreError> {
        let end = EndColumns::of(state)?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET status = $1, ended_ms = $2, num_predictions = $3, num_errors = $4, message = $5,
                 api_key_sealed = NULL, lease_owner = NULL, lease_until_ms = NULL,
                 callback_owner = CASE WHEN callback_state = {PENDING} THEN $6 END,
                 callback_until_ms = CASE WHEN callback_state = {PENDING} THEN {DB_NOW_MS} + $7 END
             WHERE id = $8 AND status = {IN_PROGRESS} AND lease_owner = $6"
        ))
        .bind(end.status)
        .bind(end.ended_ms)
        .bind(end.num_predictions)
        .bind(end.num_errors)
        .bind(end.message)
        .bind(&self.replica)
        .bind(self.lease_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        fenced(&done)?;
        drop_files::<sqlx::Postgres>(&mut tx, id).await?;
        // Delivered to every replica's listener when the end commits.
        sqlx::query("SELECT pg_notify($1, $2)").bind(ENDS_CHANNEL).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_callbacks(&self) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "UPDATE jobs SET callback_owner = $1, callback_until_ms = {DB_NOW_MS} + $2
             WHERE id IN (
                 SELECT id FROM jobs
                 WHERE callback_state = {PENDING} AND status IN ({COMPLETED}, {FAILED})
                     AND (callback_owner IS NULL OR callback_until_ms < {DB_NOW_MS})
                 ORDER BY id
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&self.replica)
            .bind(self.lease_ms())
            .bind(CALLBACKS_PER_SWEEP)
            .fetch_all(&self.pool)
            .await?;
        // The sweep also forgets idempotency records past their 24 h (expired ones are ignored
        // and replaced anyway; this only keeps the table small).
        let expired_before = crate::job::now_ms() - crate::job::IDEMPOTENCY_TTL_MS;
        if let Err(e) = sqlx::query("DELETE FROM idempotency_keys WHERE created_ms <= $1")
            .bind(expired_before)
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "could not forget expired idempotency keys; the next sweep tries again");
        }
        rows.iter().map(record).collect()
    }

    async fn renew_callback(&self, id: &JobId) -> Result<bool, StoreError> {
        let renewed = sqlx::query(&format!(
            "UPDATE jobs SET callback_until_ms = {DB_NOW_MS} + $1
             WHERE id = $2 AND callback_owner = $3 AND callback_state = {PENDING}"
        ))
        .bind(self.lease_ms())
        .bind(id)
        .bind(&self.replica)
        .execute(&self.pool)
        .await?;
        Ok(renewed.rows_affected() > 0)
    }

    async fn result_count(&self, id: &JobId) -> Result<i64, StoreError> {
        self.shared().result_count(id).await
    }

    async fn result(&self, id: &JobId, position: i64) -> Result<Option<String>, StoreError> {
        self.shared().result(id, position).await
    }

    async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        self.shared().get(id).await
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<JobRecord>, StoreError> {
        // The statement is shared (`list_query`); a generic executor of a query builder would
        // not borrow-check, so each store runs it itself.
        let rows = list_query::<sqlx::Postgres>(filter).build().fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    async fn files(&self, id: &JobId) -> Result<Vec<UploadedFile>, StoreError> {
        self.shared().files(id).await
    }

    async fn set_callback_state(&self, id: &JobId, state: CallbackState) -> Result<(), StoreError> {
        self.shared().set_callback_state(id, state, &self.replica).await
    }

    async fn count_by_status(&self) -> Result<Vec<(JobStatus, i64)>, StoreError> {
        self.shared().count_by_status().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.shared().ping().await
    }

    fn kind(&self) -> &'static str {
        "postgresql"
    }
}

/// Idempotency records of the engine backends (recorded with their jobs by [`Store::insert`]),
/// and of `hume-batch` with a database URL, shared by every replica.
#[async_trait::async_trait]
impl IdempotencyStore for PostgresStore {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.shared().idempotency_record(scope, key).await
    }

    async fn put(&self, scope: &str, key: &str, record: IdempotencyRecord) -> Result<(), StoreError> {
        let now = crate::job::now_ms();
        // A new record, one past its 24 h replaced, or this call's claim filled in.
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, job_id, created_ms) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (scope, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id, created_ms = EXCLUDED.created_ms
                 WHERE idempotency_keys.created_ms <= $6
                     OR (idempotency_keys.job_id IS NULL AND idempotency_keys.request_hash = EXCLUDED.request_hash)",
        )
        .bind(scope)
        .bind(key)
        .bind(&record.request_hash)
        .bind(&record.job_id)
        .bind(now)
        .bind(now - crate::job::IDEMPOTENCY_TTL_MS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim(&self, scope: &str, key: &str, request_hash: &str) -> Result<Option<KeyClaim>, StoreError> {
        let now = crate::job::now_ms();
        // A row with no job id yet is a claim in progress; it is taken over once stale.
        let won = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, job_id, created_ms) VALUES ($1, $2, $3, NULL, $4)
             ON CONFLICT (scope, key) DO UPDATE
                 SET request_hash = EXCLUDED.request_hash, job_id = NULL, created_ms = EXCLUDED.created_ms
                 WHERE idempotency_keys.created_ms <= $5
                     OR (idempotency_keys.job_id IS NULL AND idempotency_keys.created_ms <= $6)
             RETURNING 1",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(now - crate::job::IDEMPOTENCY_TTL_MS)
        .bind(now - STALE_CLAIM_MS)
        .fetch_optional(&self.pool)
        .await?;
        if won.is_some() {
            return Ok(Some(KeyClaim::Claimed));
        }
        let row: Option<(String, Option<JobId>)> =
            sqlx::query_as("SELECT request_hash, job_id FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(scope)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(Some(match row {
            Some((request_hash, Some(job_id))) => KeyClaim::Recorded(IdempotencyRecord { request_hash, job_id }),
            Some((request_hash, None)) => KeyClaim::Pending { request_hash },
            // Released between the two statements: the caller claims again.
            None => KeyClaim::Pending { request_hash: request_hash.to_owned() },
        }))
    }

    async fn release(&self, scope: &str, key: &str, request_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND request_hash = $3 AND job_id IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
