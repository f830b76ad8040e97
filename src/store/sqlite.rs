//! The SQLite [`Store`]: one file in the data directory, WAL with `synchronous=FULL`.
//!
//! Uploads live in the database until their job ends. So that their space goes back to the
//! file system then, the database uses `auto_vacuum = INCREMENTAL` (a database made before that
//! is converted once, by a `VACUUM` at start-up) and every finish that dropped uploads runs
//! `PRAGMA incremental_vacuum`; `journal_size_limit` keeps the WAL from staying at the size of
//! the largest upload.
//!
//! One server owns the file (the data directory's lock), so a job's claim never moves to
//! another process while it runs: [`Store::renew`] only checks that the job is still running,
//! and jobs a dead process left `IN_PROGRESS` are queued again at start-up. Callback deliveries
//! are claimed with an owner and an expiry like PostgreSQL's, so the periodic sweep never starts
//! a second delivery of a callback this process is sending.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqlitePool};

use super::rows::{drop_files, insert_job, list_query, record, EndColumns, Shared, GIVEN_UP_MESSAGE, JOB_COLUMNS};
use super::{Inserted, JobEnds, JobRecord, ListFilter, NewJob, Store, StoreError, DEFAULT_LEASE, MAX_RUNS};
use crate::idempotency::{IdempotencyClaim, IdempotencyRecord, IdempotencyStore};
use crate::job::state::JobState;
use crate::job::status::{CallbackState, JobStatus};
use crate::job::{JobId, UploadedFile};

/// The fixed statuses the statements filter on (`crate::job::status`).
const QUEUED: &str = JobStatus::Queued.sql();
const IN_PROGRESS: &str = JobStatus::InProgress.sql();
const COMPLETED: &str = JobStatus::Completed.sql();
const FAILED: &str = JobStatus::Failed.sql();
const PENDING: &str = CallbackState::Pending.sql();

/// Jobs in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// This process, as the owner of the callback deliveries it claims.
    replica: String,
    /// How long a callback claim lasts unrenewed.
    lease: Duration,
    /// The requests waiting on a job's end.
    ends: Arc<JobEnds>,
}

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/hume-action.sqlite3` and applies migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::open(format!("cannot create {}", dir.display()), e))?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(dir.join("hume-action.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT.to_string())
            .busy_timeout(Duration::from_secs(10));
        ensure_incremental_vacuum(&options).await?;
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::open("the SQLite migrations failed", e))?;
        let store =
            Self { pool, replica: uuid::Uuid::new_v4().to_string(), lease: DEFAULT_LEASE, ends: Default::default() };
        store.release_free_pages().await?;
        Ok(store)
    }

    /// The same store, its claims lasting `lease` unrenewed (`HUME_ACTION_LEASE_SECS`).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Gives the pages of deleted rows back to the file system, and checkpoints so that the
    /// database file itself shrinks (a busy reader only postpones that to a later checkpoint).
    async fn release_free_pages(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA incremental_vacuum").execute(&mut *conn).await?;
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut *conn).await?;
        Ok(())
    }
}

/// A database created before incremental vacuum was turned on keeps `auto_vacuum = NONE`
/// until a full `VACUUM` rewrites it: done once, on a connection of its own before the pool
/// opens (a connection opened before the `VACUUM` would go on seeing `NONE`).
async fn ensure_incremental_vacuum(options: &SqliteConnectOptions) -> Result<(), StoreError> {
    let mut conn = sqlx::SqliteConnection::connect_with(options).await?;
    let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut conn).await?;
    if mode != INCREMENTAL {
        tracing::info!("converting the jobs database to incremental vacuum (once; may take a while)");
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&mut conn).await?;
        sqlx::query("VACUUM").execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

/// `PRAGMA auto_vacuum` of a database that gives free pages back on `incremental_vacuum`.
const INCREMENTAL: i64 = 2;
/// The WAL is truncated to this after a checkpoint (bytes).
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;

impl SqliteStore {
    /// The statements both dialects share.
    fn shared(&self) -> Shared<'_, sqlx::Sqlite> {
        Shared { pool: &self.pool }
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert(&self, job: NewJob) -> Result<Inserted, StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_job::<sqlx::Sqlite>(&mut tx, &job).await?;
        if let Some(claim) = &job.idempotency {
            record_key(&mut tx, claim, &job.id, job.created_ms).await?;
        }
        tx.commit().await?;
        // One server: its in-process serialisation of keys already made this the first use.
        Ok(Inserted::Job)
    }

    async fn claim_next(&self, now_ms: i64) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!(
            "UPDATE jobs SET status = {IN_PROGRESS}, started_ms = MAX(?, created_ms), runs = runs + 1, stage = NULL
             WHERE id = (SELECT id FROM jobs WHERE status = {QUEUED} ORDER BY created_ms, id LIMIT 1)
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql).bind(now_ms).fetch_optional(&self.pool).await?;
        row.as_ref().map(record).transpose()
    }

    async fn requeue_interrupted(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "UPDATE jobs SET status = {FAILED}, ended_ms = ?, api_key_sealed = NULL, message = {GIVEN_UP_MESSAGE}
             WHERE status = {IN_PROGRESS} AND runs >= ?"
        ))
        .bind(now_ms)
        .bind(MAX_RUNS)
        .execute(&mut *tx)
        .await?;
        // A job given up keeps no uploads, as one that ended.
        sqlx::query(&format!(
            "DELETE FROM job_files WHERE job_id IN (SELECT id FROM jobs WHERE status IN ({COMPLETED}, {FAILED}))"
        ))
        .execute(&mut *tx)
        .await?;
        let done =
            sqlx::query(&format!("UPDATE jobs SET status = {QUEUED}, started_ms = NULL WHERE status = {IN_PROGRESS}"))
                .execute(&mut *tx)
                .await?;
        // Deliveries the last process claimed died with it.
        sqlx::query(&format!(
            "UPDATE jobs SET callback_owner = NULL, callback_until_ms = NULL WHERE callback_state = {PENDING}"
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn renew(&self, id: &JobId) -> Result<bool, StoreError> {
        // One server per file: nobody else can take the job; it is ours while it runs.
        let running: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM jobs WHERE id = ? AND status = {IN_PROGRESS}"))
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(running > 0)
    }

    fn lease(&self) -> Duration {
        self.lease
    }

    async fn requeue(&self, id: &JobId, problem: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE jobs SET status = {QUEUED}, started_ms = NULL, message = ? WHERE id = ? AND status = {IN_PROGRESS}"
        ))
        .bind(problem)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn requeue_stopped(&self, id: &JobId) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE jobs SET status = {QUEUED}, started_ms = NULL, runs = MAX(runs - 1, 0)
             WHERE id = ? AND status = {IN_PROGRESS}"
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_stage(&self, id: &JobId, stage: &str) -> Result<(), StoreError> {
        sqlx::query(&format!("UPDATE jobs SET stage = ? WHERE id = ? AND status = {IN_PROGRESS}"))
            .bind(stage)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn ends(&self) -> &JobEnds {
        &self.ends
    }

    async fn put_result(&self, id: &JobId, position: i64, json: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT OR REPLACE INTO job_results (job_id, position, body) VALUES (?, ?, ?)")
            .bind(id)
            .bind(position)
            .bind(json)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish(&self, id: &JobId, state: &JobState) -> Result<(), StoreError> {
        let end = EndColumns::of(state)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "UPDATE jobs SET status = ?, ended_ms = ?, num_predictions = ?, num_errors = ?, message = ?,
                 api_key_sealed = NULL,
                 callback_owner = CASE WHEN callback_state = {PENDING} THEN ? END,
                 callback_until_ms = CASE WHEN callback_state = {PENDING} THEN ? END
             WHERE id = ?"
        ))
        .bind(end.status)
        .bind(end.ended_ms)
        .bind(end.num_predictions)
        .bind(end.num_errors)
        .bind(end.message)
        .bind(&self.replica)
        .bind(crate::job::now_ms().saturating_add(self.lease_ms()))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let dropped = drop_files::<sqlx::Sqlite>(&mut tx, id).await?;
        tx.commit().await?;
        self.ends.ended(id.as_str());
        if dropped.rows_affected() > 0 {
            if let Err(e) = self.release_free_pages().await {
                tracing::warn!(error = %e, "the space of the job's uploads is given back later");
            }
        }
        Ok(())
    }

    async fn claim_callbacks(&self) -> Result<Vec<JobRecord>, StoreError> {
        let now = crate::job::now_ms();
        let sql = format!(
            "UPDATE jobs SET callback_owner = ?, callback_until_ms = ?
             WHERE callback_state = {PENDING} AND status IN ({COMPLETED}, {FAILED})
                 AND (callback_owner IS NULL OR callback_until_ms < ?)
             RETURNING {JOB_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(&self.replica)
            .bind(now.saturating_add(self.lease_ms()))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    async fn renew_callback(&self, id: &JobId) -> Result<bool, StoreError> {
        let renewed = sqlx::query(&format!(
            "UPDATE jobs SET callback_until_ms = ? WHERE id = ? AND callback_owner = ? AND callback_state = {PENDING}"
        ))
        .bind(crate::job::now_ms().saturating_add(self.lease_ms()))
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
        let rows = list_query::<sqlx::Sqlite>(filter).build().fetch_all(&self.pool).await?;
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
        "sqlite"
    }
}

/// Idempotency records live beside the jobs, so a restart keeps them too.
#[async_trait::async_trait]
impl IdempotencyStore for SqliteStore {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.shared().idempotency_record(scope, key).await
    }

    async fn put(&self, scope: &str, key: &str, record: IdempotencyRecord) -> Result<(), StoreError> {
        let claim =
            IdempotencyClaim { scope: scope.to_owned(), key: key.to_owned(), request_hash: record.request_hash };
        let mut tx = self.pool.begin().await?;
        record_key(&mut tx, &claim, &record.job_id, crate::job::now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records a key's first use, and forgets keys past their 24 h.
async fn record_key(
    tx: &mut sqlx::SqliteConnection,
    claim: &IdempotencyClaim,
    job_id: &JobId,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE created_ms <= ?")
        .bind(now_ms - crate::job::IDEMPOTENCY_TTL_MS)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT OR REPLACE INTO idempotency_keys (scope, key, request_hash, job_id, created_ms) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.request_hash)
    .bind(job_id)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::spec::JobSpec;
    use crate::job::Owner;
    use serde_json::json;

    /// A job's spec from a v0 body (uploads allowed, so `{}` is a job), with this callback.
    fn spec_of(mut request: serde_json::Value, callback_url: Option<String>) -> JobSpec {
        if let Some(url) = callback_url {
            request["callback_url"] = url.into();
        }
        JobSpec::from_v0(request, true).expect("a valid v0 body")
    }

    #[tokio::test]
    async fn results_are_stored_per_source_and_streamed_back_one_source_per_chunk() {
        use futures::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open(dir.path()).await.unwrap());
        let id = JobId::from("job-r");
        let job = NewJob {
            owner: Owner::without_key(),
            id: id.clone(),
            spec: spec_of(json!({"text": ["a", "b", "c"]}), None),
            created_ms: 0,
            files: vec![],
            api_key_sealed: None,
            idempotency: None,
            callback_body: Default::default(),
        };
        store.insert(job).await.unwrap();
        let streamed = |store: std::sync::Arc<dyn Store>| async move {
            crate::store::predictions_json(store, "job-r".into()).try_collect::<Vec<_>>().await.unwrap()
        };
        assert_eq!(streamed(store.clone()).await.concat(), b"[]");
        for position in [1i64, 0, 2] {
            store.put_result(&id, position, &format!("{{\"n\":{position}}}")).await.unwrap();
        }
        // A re-run replaces what an interrupted run stored.
        store.put_result(&id, 1, r#"{"n":"one"}"#).await.unwrap();
        let chunks = streamed(store.clone()).await;
        assert_eq!(chunks.len(), 5, "'[' + one chunk per source + ']'");
        let whole: serde_json::Value = serde_json::from_slice(&chunks.concat()).unwrap();
        assert_eq!(whole, json!([{"n": 0}, {"n": "one"}, {"n": 2}]));
    }

    #[tokio::test]
    async fn a_job_and_its_idempotency_key_commit_together_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let claim = IdempotencyClaim { scope: "s".into(), key: "k".into(), request_hash: "h".into() };
        let job = NewJob {
            id: "job-1".into(),
            owner: Owner::without_key(),
            spec: spec_of(json!({"text": ["hi"]}), None),
            created_ms: crate::job::now_ms(),
            files: vec![],
            api_key_sealed: None,
            idempotency: Some(claim),
            callback_body: Default::default(),
        };
        store.insert(job).await.unwrap();
        drop(store);
        let reopened = SqliteStore::open(dir.path()).await.unwrap();
        let record = IdempotencyStore::get(&reopened, "s", "k").await.unwrap();
        assert_eq!(record, Some(IdempotencyRecord { request_hash: "h".into(), job_id: "job-1".into() }));
        assert!(matches!(
            Store::get(&reopened, &"job-1".into()).await.unwrap().unwrap().state,
            JobState::Queued { .. }
        ));
        assert!(reopened.claim_next(0).await.unwrap().is_some());
        assert_eq!(reopened.requeue_interrupted(0).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn clean_stops_do_not_count_toward_the_crash_loop_guard_and_unclean_ends_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let job = NewJob {
            owner: Owner::without_key(),
            id: "job-1".into(),
            spec: spec_of(json!({"text": ["hi"]}), None),
            created_ms: 1,
            files: vec![],
            api_key_sealed: None,
            idempotency: None,
            callback_body: Default::default(),
        };
        store.insert(job).await.unwrap();
        for _ in 0..5 {
            assert_eq!(store.claim_next(2).await.unwrap().unwrap().runs, 1);
            store.requeue_stopped(&"job-1".into()).await.unwrap();
        }
        for unclean in 1..MAX_RUNS {
            assert_eq!(store.claim_next(2).await.unwrap().unwrap().runs, unclean);
            assert_eq!(store.requeue_interrupted(3).await.unwrap(), 1, "queued again after {unclean} unclean ends");
        }
        store.claim_next(2).await.unwrap().unwrap();
        assert_eq!(store.requeue_interrupted(3).await.unwrap(), 0);
        let JobState::Failed { message, .. } = Store::get(&store, &"job-1".into()).await.unwrap().unwrap().state else {
            panic!("given up after {MAX_RUNS} unclean ends")
        };
        assert!(message.contains("ended uncleanly") && message.contains("3 times"), "{message}");
    }

    #[tokio::test]
    async fn a_pending_callback_is_claimed_by_one_sweep_until_released_by_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let job = NewJob {
            owner: Owner::without_key(),
            id: "job-1".into(),
            spec: spec_of(json!({}), Some("http://127.0.0.1:9/cb".into())),
            created_ms: 1,
            files: vec![],
            api_key_sealed: None,
            idempotency: None,
            callback_body: Default::default(),
        };
        store.insert(job).await.unwrap();
        store.claim_next(2).await.unwrap().unwrap();
        assert!(store.claim_callbacks().await.unwrap().is_empty(), "not ended yet");
        let state = JobState::Failed { created_ms: 1, started_ms: 2, ended_ms: 3, message: "m".into() };
        store.finish(&"job-1".into(), &state).await.unwrap();
        assert!(store.claim_callbacks().await.unwrap().is_empty(), "the finisher holds the delivery");
        assert!(store.renew_callback(&"job-1".into()).await.unwrap());
        drop(store);
        // A restart: the dead process's delivery is released and claimed again, once.
        let store = SqliteStore::open(dir.path()).await.unwrap();
        store.requeue_interrupted(4).await.unwrap();
        assert_eq!(store.claim_callbacks().await.unwrap().len(), 1);
        assert!(store.claim_callbacks().await.unwrap().is_empty(), "claimed once");
        store.set_callback_state(&"job-1".into(), CallbackState::Delivered).await.unwrap();
        assert!(!store.renew_callback(&"job-1".into()).await.unwrap(), "delivered: nothing left to hold");
    }

    fn db_bytes(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("hume-action.sqlite3")).unwrap().len()
    }

    #[tokio::test]
    async fn an_ended_jobs_uploads_give_their_space_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let upload: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let file = UploadedFile { filename: Some("a.bin".into()), content_type: None, bytes: upload.into() };
        let job = NewJob {
            owner: Owner::without_key(),
            id: "job-1".into(),
            spec: spec_of(json!({}), None),
            created_ms: 1,
            files: vec![file],
            api_key_sealed: None,
            idempotency: None,
            callback_body: Default::default(),
        };
        store.insert(job).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&store.pool).await.unwrap();
        let full = db_bytes(dir.path());
        assert!(full > 8 << 20, "the upload is in the file: {full} bytes");
        let state = JobState::Failed { created_ms: 1, started_ms: 1, ended_ms: 2, message: "m".into() };
        store.finish(&"job-1".into(), &state).await.unwrap();
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&store.pool).await.unwrap();
        let after = db_bytes(dir.path());
        assert!(after < 1 << 20, "the file shrank from {full} to {after} bytes");
    }

    #[tokio::test]
    async fn an_older_database_is_converted_to_incremental_vacuum() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(dir.path().join("hume-action.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let old = SqlitePoolOptions::new().connect_with(options).await.unwrap();
        sqlx::query("CREATE TABLE t (x)").execute(&old).await.unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&old).await.unwrap();
        assert_eq!(mode, 0);
        old.close().await;
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&store.pool).await.unwrap();
        assert_eq!(mode, INCREMENTAL);
    }
}
