//! What both stores share about their tables: the job columns, a row read back as a
//! [`JobRecord`] or an [`UploadedFile`], the query of `GET /v0/batch/jobs`, and every statement
//! that is the same in both dialects ([`Shared`]). Only the database types
//! differ between SQLite and PostgreSQL, so these are generic over them; what differs for real
//! (inserting, claiming, the lease and fencing writes) stays in `sqlite.rs` and `postgres.rs`.

use sqlx::{ColumnIndex, Database, Decode, QueryBuilder, Row, Type};

use super::{JobRecord, ListFilter, SortBy, StoreError};
use crate::job::spec::JobSpec;
use crate::job::state::JobState;
use crate::job::status::{CallbackState, JobStatus};
use crate::job::{CallbackBody, UploadedFile};

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
    for<'q> String: sqlx::Encode<'q, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE owner = "));
    sql.push_bind(filter.owner.clone());
    if !filter.statuses.is_empty() {
        sql.push(" AND status IN (");
        let mut list = sql.separated(", ");
        for status in &filter.statuses {
            list.push_bind(status.as_str().to_owned());
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

/// The statements that are the same in both dialects, written once over a pool of either:
/// the reads, the end of a callback's claim and the health check. Placeholders are `$N`, which
/// SQLite reads as well (sqlx binds them by number). Each store's `Store` methods call these;
/// what differs for real (inserting, claiming, the lease and fencing writes) stays in
/// `sqlite.rs` and `postgres.rs`.
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
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    pub async fn result_count(&self, id: &str) -> Result<i64, StoreError> {
        let sql = "SELECT COUNT(*) FROM job_results WHERE job_id = $1";
        Ok(sqlx::query_scalar(sql).bind(id).fetch_one(self.pool).await?)
    }

    pub async fn result(&self, id: &str, position: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT body FROM job_results WHERE job_id = $1 AND position = $2";
        Ok(sqlx::query_scalar(sql).bind(id).bind(position).fetch_optional(self.pool).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.pool).await?;
        row.as_ref().map(record).transpose()
    }

    pub async fn files(&self, id: &str) -> Result<Vec<UploadedFile>, StoreError> {
        let sql = "SELECT filename, content_type, bytes FROM job_files WHERE job_id = $1 ORDER BY position";
        let rows = sqlx::query(sql).bind(id).fetch_all(self.pool).await?;
        rows.iter().map(uploaded_file).collect()
    }

    /// Ends `replica`'s claim on job `id`'s callback with `state` (delivered or given up).
    pub async fn set_callback_state(&self, id: &str, state: CallbackState, replica: &str) -> Result<(), StoreError> {
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

    pub async fn count_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetch_all(self.pool).await?)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.pool).await?;
        Ok(())
    }
}
