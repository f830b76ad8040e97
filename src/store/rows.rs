//! What both stores share about their tables: the job columns, a row read back as a
//! [`JobRecord`] or an [`UploadedFile`], the query of `GET /v0/batch/jobs`, and every statement
//! that is the same in both dialects ([`Shared`]): the reads, a new job's rows, the columns of
//! a job's end, and the end of a callback's claim. Only the database types differ between
//! SQLite and PostgreSQL, so these are generic over them; what differs for real (the claims,
//! the lease and fencing writes, the idempotency claim) stays in `sqlite.rs` and `postgres.rs`.

use sqlx::{ColumnIndex, Database, Decode, QueryBuilder, Row, Type};

use super::{JobRecord, ListFilter, NewJob, SortBy, StoreError};
use crate::idempotency::IdempotencyRecord;
use crate::job::spec::JobSpec;
use crate::job::state::JobState;
use crate::job::status::{CallbackState, JobStatus};
use crate::job::{CallbackBody, JobId, Owner, UploadedFile};

/// The columns a [`JobRecord`] is read from.
pub const JOB_COLUMNS: &str =
    "id, owner, request, status, created_ms, started_ms, ended_ms, num_predictions, num_errors, message, callback_url, api_key_sealed, runs, callback_body, stage";

/// A `jobs` row (selected with [`JOB_COLUMNS`]) as a [`JobRecord`].
pub fn record<R>(row: &R) -> Result<JobRecord, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> JobId: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Owner: Decode<'r, R::Database> + Type<R::Database>,
{
    let created_ms: i64 = row.try_get("created_ms")?;
    let started_ms: Option<i64> = row.try_get("started_ms")?;
    let ended_ms: Option<i64> = row.try_get("ended_ms")?;
    let stored: String = row.try_get("status")?;
    let status = JobStatus::parse(&stored)
        .ok_or_else(|| StoreError::corrupt("job status", format!("{stored:?} is not a job status")))?;
    let state = match status {
        JobStatus::Queued => JobState::Queued { created_ms },
        JobStatus::InProgress => JobState::InProgress { created_ms, started_ms: started_ms.unwrap_or(created_ms) },
        JobStatus::Completed => JobState::Completed {
            created_ms,
            started_ms: started_ms.unwrap_or(created_ms),
            ended_ms: ended_ms.unwrap_or(created_ms),
            num_predictions: row.try_get::<Option<i64>, _>("num_predictions")?.unwrap_or(0),
            num_errors: row.try_get::<Option<i64>, _>("num_errors")?.unwrap_or(0),
        },
        JobStatus::Failed => JobState::Failed {
            created_ms,
            // v0 clients require a start time even for a job that never started.
            started_ms: started_ms.unwrap_or(created_ms),
            ended_ms: ended_ms.unwrap_or(created_ms),
            message: row.try_get::<Option<String>, _>("message")?.unwrap_or_default(),
        },
    };
    let last_problem = match state {
        JobState::Queued { .. } | JobState::InProgress { .. } => row.try_get("message")?,
        _ => None,
    };
    let request: String = row.try_get("request")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        spec: JobSpec::from_stored(&request).map_err(|e| StoreError::corrupt("job request", e))?,
        state,
        callback_url: row.try_get("callback_url")?,
        api_key_sealed: row.try_get("api_key_sealed")?,
        runs: row.try_get("runs")?,
        last_problem,
        callback_body: CallbackBody::from_stored(row.try_get::<Option<String>, _>("callback_body")?.as_deref()),
        stage: row.try_get("stage")?,
    })
}

/// A `job_files` row (`filename, content_type, bytes`) as an [`UploadedFile`].
pub fn uploaded_file<R>(row: &R) -> Result<UploadedFile, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(UploadedFile {
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        bytes: row.try_get::<Vec<u8>, _>("bytes")?.into(),
    })
}

/// `SELECT` one owner's jobs by `filter`, in its sort order, after its page token.
pub fn list_query<DB>(filter: &ListFilter) -> QueryBuilder<'_, DB>
where
    DB: Database,
    for<'q> i64: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> JobId: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> Owner: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> JobStatus: sqlx::Encode<'q, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE owner = "));
    sql.push_bind(filter.owner.clone());
    if !filter.statuses.is_empty() {
        sql.push(" AND status IN (");
        let mut list = sql.separated(", ");
        for status in &filter.statuses {
            list.push_bind(*status);
        }
        sql.push(")");
    }
    match filter.created_after {
        Some(true) => sql.push(" AND created_ms > ").push_bind(filter.timestamp_ms),
        Some(false) => sql.push(" AND created_ms < ").push_bind(filter.timestamp_ms),
        None => &mut sql,
    };
    let column = match filter.sort_by {
        SortBy::Created => "created_ms",
        SortBy::Started => "COALESCE(started_ms, 0)",
        SortBy::Ended => "COALESCE(ended_ms, 0)",
    };
    let (direction, beyond) = if filter.ascending { ("ASC", ">") } else { ("DESC", "<") };
    if let Some(after) = &filter.after {
        sql.push(format!(" AND ({column}, id) {beyond} ("));
        sql.push_bind(after.key).push(", ").push_bind(after.id.clone()).push(")");
    }
    sql.push(format!(" ORDER BY {column} {direction}, id {direction} LIMIT ")).push_bind(filter.limit);
    sql
}

/// The message of a job given up after [`super::MAX_RUNS`] unclean ends, as an SQL expression
/// over its row (its `runs`): the same words in both dialects.
pub const GIVEN_UP_MESSAGE: &str =
    "'The server ended uncleanly (killed, crashed or out of memory, not a clean stop) while running this job, '
    || runs || ' times in all, so the job was given up: it may be what brings the server down. '
    || 'Start it again, perhaps with fewer or smaller sources, and tell the operator if it repeats.'";

/// The columns a job's end writes: when, and the counts (`COMPLETED`) or the reason (`FAILED`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndColumns<'a> {
    pub status: JobStatus,
    pub ended_ms: i64,
    pub num_predictions: Option<i64>,
    pub num_errors: Option<i64>,
    pub message: Option<&'a str>,
}

impl<'a> EndColumns<'a> {
    /// The columns of `state`, which must be an end (`Completed` or `Failed`).
    pub fn of(state: &'a JobState) -> Result<Self, StoreError> {
        let status = state.status();
        Ok(match state {
            JobState::Completed { ended_ms, num_predictions, num_errors, .. } => Self {
                status,
                ended_ms: *ended_ms,
                num_predictions: Some(*num_predictions),
                num_errors: Some(*num_errors),
                message: None,
            },
            JobState::Failed { ended_ms, message, .. } => {
                Self { status, ended_ms: *ended_ms, num_predictions: None, num_errors: None, message: Some(message) }
            }
            _ => return Err(StoreError::Misuse(format!("finish needs an end state, got {status}"))),
        })
    }
}

/// Writes a new `QUEUED` job's row and its uploads' rows on `conn` (a transaction the store
/// commits together with whatever else it records: its idempotency key).
pub async fn insert_job<DB>(conn: &mut DB::Connection, job: &NewJob) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> JobId: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> Owner: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> Option<CallbackState>: sqlx::Encode<'q, DB> + Type<DB>,
{
    use md5::Digest as _;
    let queued = JobStatus::Queued.sql();
    let sql = format!(
        "INSERT INTO jobs (id, owner, request, status, created_ms, callback_url, callback_state, api_key_sealed, callback_body)
         VALUES ($1, $2, $3, {queued}, $4, $5, $6, $7, $8)"
    );
    sqlx::query(&sql)
        .bind(&job.id)
        .bind(&job.owner)
        .bind(job.spec.to_stored())
        .bind(job.created_ms)
        .bind(job.spec.callback_url())
        .bind(job.spec.callback_url().map(|_| CallbackState::Pending))
        .bind(job.api_key_sealed.as_deref())
        .bind(job.callback_body.as_str())
        .execute(&mut *conn)
        .await?;
    for (position, file) in job.files.iter().enumerate() {
        sqlx::query(
            "INSERT INTO job_files (job_id, position, filename, content_type, md5sum, bytes) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&job.id)
        .bind(position as i64)
        .bind(file.filename.as_deref())
        .bind(file.content_type.as_deref())
        .bind(hex::encode(md5::Md5::digest(&file.bytes)))
        .bind(file.bytes.as_ref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Drops job `id`'s uploads on `conn` (its end); what the statement did.
pub async fn drop_files<DB>(conn: &mut DB::Connection, id: &JobId) -> Result<DB::QueryResult, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> JobId: sqlx::Encode<'q, DB> + Type<DB>,
{
    Ok(sqlx::query("DELETE FROM job_files WHERE job_id = $1").bind(id).execute(&mut *conn).await?)
}

/// The statements over a pool that are the same in both dialects: the reads (jobs, lists,
/// results, uploads, idempotency records), the end of a callback's claim and the health check.
/// Placeholders are `$N`, which SQLite reads as well (sqlx binds them by number). Each store's
/// `Store` methods call these, and [`insert_job`], [`drop_files`] and [`EndColumns`] inside
/// their own transactions; what differs for real (the claims, the lease and fencing writes, the
/// idempotency claim) stays in `sqlite.rs` and `postgres.rs`.
pub struct Shared<'p, DB: Database> {
    pub pool: &'p sqlx::Pool<DB>,
}

impl<'p, DB> Shared<'p, DB>
where
    DB: Database,
    for<'c> &'c sqlx::Pool<DB>: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> JobId: sqlx::Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> Owner: sqlx::Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> JobStatus: sqlx::Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> CallbackState: sqlx::Encode<'q, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    pub async fn result_count(&self, id: &JobId) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM job_results WHERE job_id = $1";
        Ok(sqlx::query_scalar(sql).bind(id).fetch_one(self.pool).await?)
    }

    pub async fn result(&self, id: &JobId, position: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT body FROM job_results WHERE job_id = $1 AND position = $2";
        Ok(sqlx::query_scalar(sql).bind(id).bind(position).fetch_optional(self.pool).await?)
    }

    pub async fn get(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool).await?;
        row.as_ref().map(record).transpose()
    }

    /// The live (under 24 h old) record of idempotency key `key` in `scope`, once its job is known.
    pub async fn idempotency_record(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let since = crate::job::now_ms() - crate::job::IDEMPOTENCY_TTL_MS;
        let row: Option<(String, JobId)> = sqlx::query_as(
            "SELECT request_hash, job_id FROM idempotency_keys
             WHERE scope = $1 AND key = $2 AND created_ms > $3 AND job_id IS NOT NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_optional(self.pool)
        .await?;
        Ok(row.map(|(request_hash, job_id)| IdempotencyRecord { request_hash, job_id }))
    }

    pub async fn files(&self, id: &JobId) -> Result<Vec<UploadedFile>, StoreError> {
        let sql = "SELECT filename, content_type, bytes FROM job_files WHERE job_id = $1 ORDER BY position";
        let rows = sqlx::query(sql).bind(id).fetch_all(self.pool).await?;
        rows.iter().map(uploaded_file).collect()
    }

    /// Ends `replica`'s claim on job `id`'s callback with `state` (delivered or given up).
    pub async fn set_callback_state(&self, id: &JobId, state: CallbackState, replica: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE jobs SET callback_state = $1, callback_owner = NULL, callback_until_ms = NULL
             WHERE id = $2 AND callback_owner = $3 AND callback_state = {PENDING}",
            PENDING = CallbackState::Pending.sql()
        ))
        .bind(state)
        .bind(id)
        .bind(replica)
        .execute(self.pool)
        .await?;
        Ok(())
    }

    pub async fn count_by_status(&self) -> Result<Vec<(JobStatus, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetch_all(self.pool).await?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool).await?;
        Ok(())
    }
}
