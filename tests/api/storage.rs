//! What the store gives back and what it refuses: deleted uploads shrink the database file, and a
//! job whose outcome cannot be stored ends `FAILED` with the reason instead of running forever.

use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::helpers::{spawn_local_app, status_and_json, TestApp};

/// A second connection to the app's database, as an operator's `sqlite3` shell would open it.
async fn open_database(app: &TestApp) -> SqlitePool {
    let options = SqliteConnectOptions::new().filename(app.data_dir.path().join("hume-action.sqlite3"));
    SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap()
}

fn database_bytes(app: &TestApp) -> u64 {
    std::fs::metadata(app.data_dir.path().join("hume-action.sqlite3")).unwrap().len()
}

/// Bytes no compressor or sniffer makes anything of.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

#[tokio::test]
async fn the_database_file_shrinks_once_a_jobs_uploads_are_dropped() {
    let app = spawn_local_app(|_| {}).await;
    let uploaded = 2 * (4 << 20);
    let form = reqwest::multipart::Form::new()
        .text("json", json!({"models": {"language": {}}}).to_string())
        .part("file", reqwest::multipart::Part::bytes(noise(4 << 20, 1)).file_name("a.bin"))
        .part("file", reqwest::multipart::Part::bytes(noise(4 << 20, 2)).file_name("b.bin"));
    let response = app.client.post(format!("{}/v0/batch/jobs", app.address)).multipart(form).send().await.unwrap();
    let (status, answer) = status_and_json(response).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["job_id"].as_str().unwrap();
    app.wait_for_job(id, &["COMPLETED", "FAILED"]).await; // the uploads are dropped when it ends

    // Whatever the WAL still holds goes into the file: freed pages that were not given back
    // would keep it at the size of the uploads.
    let db = open_database(&app).await;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&db).await.unwrap();
    let files: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_files").fetch_one(&db).await.unwrap();
    assert_eq!(files, 0);
    let bytes = database_bytes(&app);
    assert!(bytes < uploaded / 8, "{uploaded} bytes were uploaded and dropped, the file still has {bytes}");
}

#[tokio::test]
async fn an_outcome_the_store_refuses_ends_the_job_failed_with_the_reason() {
    let app = spawn_local_app(|_| {}).await;
    let db = open_database(&app).await;
    sqlx::query(
        "CREATE TRIGGER refuse_large_outcomes BEFORE INSERT ON job_results
         WHEN length(NEW.body) > 100
         BEGIN SELECT RAISE(ABORT, 'the outcome is larger than this store takes'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let id =
        app.start_v0(&json!({"text": ["I am thrilled with how this turned out."], "models": {"language": {}}})).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    let message = job["state"]["message"].as_str().unwrap_or_default();
    assert_eq!(job["state"]["status"], "FAILED", "{job}");
    assert!(message.contains("could not be stored"), "{message}");
    assert!(message.contains("the outcome is larger than this store takes"), "{message}");
    assert_eq!(app.predictions(&id).await, json!([]));
}

#[tokio::test]
async fn a_job_whose_end_cannot_be_stored_at_all_is_given_up_after_three_runs() {
    let app = spawn_local_app(|_| {}).await;
    let db = open_database(&app).await;
    // Neither the outcome nor the failure that replaces it can be written, only the give-up.
    sqlx::query(
        "CREATE TRIGGER refuse_ends BEFORE UPDATE OF status ON jobs
         WHEN NEW.status = 'COMPLETED' OR NEW.message LIKE 'The job ran, but%'
         BEGIN SELECT RAISE(ABORT, 'the disk is full'); END",
    )
    .execute(&db)
    .await
    .unwrap();
    let id = app.start_v0(&json!({"text": ["Nothing I do seems to help."], "models": {"language": {}}})).await;
    let job = app.wait_for_job(&id, &["COMPLETED", "FAILED"]).await;
    let message = job["state"]["message"].as_str().unwrap_or_default();
    assert_eq!(job["state"]["status"], "FAILED", "{job}");
    assert!(message.contains("ran 3 times without an outcome that could be stored"), "{message}");
    assert!(message.contains("the disk is full"), "{message}");
    let runs: i64 = sqlx::query_scalar("SELECT runs FROM jobs WHERE id = ?").bind(&id).fetch_one(&db).await.unwrap();
    assert_eq!(runs, 4, "three runs, then the claim that gave it up");
}
