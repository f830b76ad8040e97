//! The SQLite [`Store`]: one file in the data directory, WAL with `synchronous=FULL`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use md5::Digest as _;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};

use super::{JobRecord, ListFilter, NewJob, SortBy, Store, StoreError, MAX_RUNS};
use crate::error::ApiError;
use crate::idempotency::{IdempotencyClaim, IdempotencyRecord, IdempotencyStore};
use crate::job::state::JobState;
use crate::job::UploadedFile;

/// Jobs in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

const JOB_COLUMNS: &str =
    "id, owner, request, status, created_ms, started_ms, ended_ms, num_predictions, num_errors, message, callback_url, api_key_sealed";

impl SqliteStore {
    /// Opens (creating if needed) `<dir>/hume-action.sqlite3` and applies migrations.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(dir.join("hume-action.sqlite3"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(|e| StoreError(e.to_string()))?;
        Ok(Self { pool })
    }
}

fn record(row: &SqliteRow) -> Result<JobRecord, StoreError> {
    let created_ms: i64 = row.try_get("created_ms")?;
    let started_ms: Option<i64> = row.try_get("started_ms")?;
    let ended_ms: Option<i64> = row.try_get("ended_ms")?;
    let status: String = row.try_get("status")?;
    let state = match status.as_str() {
        "QUEUED" => JobState::Queued { created_ms },
        "IN_PROGRESS" => JobState::InProgress { created_ms, started_ms: started_ms.unwrap_or(created_ms) },
        "COMPLETED" => JobState::Completed {
            created_ms,
            started_ms: started_ms.unwrap_or(created_ms),
            ended_ms: ended_ms.unwrap_or(created_ms),
            num_predictions: row.try_get::<Option<i64>, _>("num_predictions")?.unwrap_or(0),
            num_errors: row.try_get::<Option<i64>, _>("num_errors")?.unwrap_or(0),
        },
        _ => JobState::Failed {
            created_ms,
            // v0 clients require a start time even for a job that never started.
            started_ms: started_ms.unwrap_or(created_ms),
            ended_ms: ended_ms.unwrap_or(created_ms),
            message: row.try_get::<Option<String>, _>("message")?.unwrap_or_default(),
        },
    };
    let request: String = row.try_get("request")?;
    Ok(JobRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        request: serde_json::from_str(&request).map_err(|e| StoreError(e.to_string()))?,
        state,
        callback_url: row.try_get("callback_url")?,
        api_key_sealed: row.try_get("api_key_sealed")?,
    })
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert(&self, job: NewJob) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO jobs (id, owner, request, status, created_ms, callback_url, callback_state, api_key_sealed) VALUES (?, ?, ?, 'QUEUED', ?, ?, ?, ?)")
            .bind(&job.id)
            .bind(&job.owner)
            .bind(job.request.to_string())
            .bind(job.created_ms)
            .bind(&job.callback_url)
            .bind(job.callback_url.as_ref().map(|_| "PENDING"))
            .bind(&job.api_key_sealed)
            .execute(&mut *tx)
            .await?;
        for (position, file) in job.files.iter().enumerate() {
            sqlx::query("INSERT INTO job_files (job_id, position, filename, content_type, md5sum, bytes) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&job.id)
                .bind(position as i64)
                .bind(&file.filename)
                .bind(&file.content_type)
                .bind(hex::encode(md5::Md5::digest(&file.bytes)))
                .bind(file.bytes.as_ref())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(claim) = &job.idempotency {
            record_key(&mut tx, claim, &job.id, job.created_ms).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_next(&self, now_ms: i64) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!(
            "UPDATE jobs SET status = 'IN_PROGRESS', started_ms = MAX(?, created_ms), runs = runs + 1
             WHERE id = (SELECT id FROM jobs WHERE status = 'QUEUED' ORDER BY created_ms, id LIMIT 1)
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql).bind(now_ms).fetch_optional(&self.pool).await?;
        row.as_ref().map(record).transpose()
    }

    async fn requeue_interrupted(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE jobs SET status = 'FAILED', ended_ms = ?, predictions = '[]', api_key_sealed = NULL,
                 message = 'The job was interrupted ' || runs || ' times while running and was given up; start it again, perhaps with fewer or smaller sources.'
             WHERE status = 'IN_PROGRESS' AND runs >= ?",
        )
        .bind(now_ms)
        .bind(MAX_RUNS)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("UPDATE jobs SET status = 'QUEUED', started_ms = NULL WHERE status = 'IN_PROGRESS'")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn requeue(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET status = 'QUEUED', started_ms = NULL WHERE id = ? AND status = 'IN_PROGRESS'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn finish(&self, id: &str, state: &JobState, predictions: &Value) -> Result<(), StoreError> {
        let (ended_ms, num_predictions, num_errors, message) = match state {
            JobState::Completed { ended_ms, num_predictions, num_errors, .. } => {
                (*ended_ms, Some(*num_predictions), Some(*num_errors), None)
            }
            JobState::Failed { ended_ms, message, .. } => (*ended_ms, None, None, Some(message.as_str())),
            _ => return Err(StoreError(format!("finish needs an end state, got {}", state.status()))),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE jobs SET status = ?, ended_ms = ?, num_predictions = ?, num_errors = ?, message = ?, predictions = ?,
                 api_key_sealed = NULL
             WHERE id = ?",
        )
        .bind(state.status())
        .bind(ended_ms)
        .bind(num_predictions)
        .bind(num_errors)
        .bind(message)
        .bind(predictions.to_string())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM job_files WHERE job_id = ?").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn predictions(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT predictions FROM jobs WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        text.flatten().map(|t| serde_json::from_str(&t).map_err(|e| StoreError(e.to_string()))).transpose()
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<JobRecord>, StoreError> {
        let mut sql = QueryBuilder::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE owner = "));
        sql.push_bind(filter.owner.clone());
        if !filter.statuses.is_empty() {
            sql.push(" AND status IN (");
            let mut list = sql.separated(", ");
            for status in &filter.statuses {
                list.push_bind(status.clone());
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
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    async fn files(&self, id: &str) -> Result<Vec<UploadedFile>, StoreError> {
        let rows =
            sqlx::query("SELECT filename, content_type, bytes FROM job_files WHERE job_id = ? ORDER BY position")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(UploadedFile {
                    filename: row.try_get("filename")?,
                    content_type: row.try_get("content_type")?,
                    bytes: row.try_get::<Vec<u8>, _>("bytes")?.into(),
                })
            })
            .collect()
    }

    async fn pending_callbacks(&self) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE callback_state = 'PENDING' AND status IN ('COMPLETED', 'FAILED')"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(record).collect()
    }

    async fn set_callback_state(&self, id: &str, state: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET callback_state = ? WHERE id = ?").bind(state).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// Idempotency records live beside the jobs, so a restart keeps them too.
#[async_trait::async_trait]
impl IdempotencyStore for SqliteStore {
    async fn get(&self, scope: &str, key: &str) -> Result<Option<IdempotencyRecord>, ApiError> {
        let since = crate::job::now_ms() - crate::job::IDEMPOTENCY_TTL_MS;
        let row = sqlx::query(
            "SELECT request_hash, job_id FROM idempotency_keys WHERE scope = ? AND key = ? AND created_ms > ?",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::from)?;
        let record = row.map(|r| -> Result<_, sqlx::Error> {
            Ok(IdempotencyRecord { request_hash: r.try_get("request_hash")?, job_id: r.try_get("job_id")? })
        });
        Ok(record.transpose().map_err(StoreError::from)?)
    }

    async fn put(&self, scope: &str, key: &str, record: IdempotencyRecord) -> Result<(), ApiError> {
        let claim =
            IdempotencyClaim { scope: scope.to_owned(), key: key.to_owned(), request_hash: record.request_hash };
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        record_key(&mut tx, &claim, &record.job_id, crate::job::now_ms()).await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

/// Records a key's first use, and forgets keys past their 24 h.
async fn record_key(
    tx: &mut sqlx::SqliteConnection,
    claim: &IdempotencyClaim,
    job_id: &str,
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
    use serde_json::json;

    #[tokio::test]
    async fn a_job_and_its_idempotency_key_commit_together_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        let claim = IdempotencyClaim { scope: "s".into(), key: "k".into(), request_hash: "h".into() };
        let job = NewJob {
            id: "job-1".into(),
            owner: "no-key".into(),
            request: json!({"text": ["hi"]}),
            created_ms: crate::job::now_ms(),
            callback_url: None,
            files: vec![],
            api_key_sealed: None,
            idempotency: Some(claim),
        };
        store.insert(job).await.unwrap();
        drop(store);
        let reopened = SqliteStore::open(dir.path()).await.unwrap();
        let record = IdempotencyStore::get(&reopened, "s", "k").await.unwrap();
        assert_eq!(record, Some(IdempotencyRecord { request_hash: "h".into(), job_id: "job-1".into() }));
        assert!(matches!(Store::get(&reopened, "job-1").await.unwrap().unwrap().state, JobState::Queued { .. }));
        assert!(reopened.claim_next(0).await.unwrap().is_some());
        assert_eq!(reopened.requeue_interrupted(0).await.unwrap(), 1);
    }
}
