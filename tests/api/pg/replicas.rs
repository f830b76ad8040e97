//! Replicas of the real binary on one PostgreSQL: a replica killed (SIGKILL) mid-job loses the
//! job to another after its lease expires, and the job is never run by two at once; a replica
//! killed mid-callback leaves the delivery to another, never two at once; one
//! Idempotency-Key raced on two replicas makes one job; a PostgreSQL that cannot be reached at
//! start-up is named in the error, without its password; `/readyz` reports the store.

use std::time::Duration;

use serde_json::{json, Value};

use super::Postgres;
use crate::recovery::Server;
use crate::slow_host::{Answer, SlowHost};

/// Lease of the replicas under test: short, so a takeover comes soon.
const LEASE_SECS: &str = "2";

/// A host that holds every answer until released, and tells how many requests were open at once.
async fn held_host() -> (SlowHost, String) {
    let host = SlowHost::start(Answer::Held { body: "Two replicas, one job, and it only ran once." }).await;
    let url = host.url("/held.txt");
    (host, url)
}

/// A replica of the binary on `pg`, with its own data directory.
fn replica(pg: &Postgres, data_dir: &tempfile::TempDir) -> Server {
    let url = pg.url();
    Server::start_with(
        data_dir.path(),
        &[
            ("HUME_ACTION_DATABASE_URL", url.as_str()),
            ("HUME_ACTION_LEASE_SECS", LEASE_SECS),
            ("HUME_ACTION_MIN_DOWNLOAD_RATE", "0"),
        ],
    )
}

/// `(status, runs, lease_owner, lease_until_ms)` of a job, as stored.
async fn stored(db: &sqlx::PgPool, id: &str) -> (String, i64, Option<String>, Option<i64>) {
    sqlx::query_as("SELECT status, runs, lease_owner, lease_until_ms FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_killed_replicas_job_is_taken_over_after_its_lease_and_never_runs_twice_at_once() {
    let pg = Postgres::start().await;
    let db = pg.pool().await;
    let (host, held_url) = held_host().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(&pg, &dir_a);
    let b = replica(&pg, &dir_b);
    let ids = [a.replica.clone().expect("a logs its replica id"), b.replica.clone().expect("b too")];
    assert_ne!(ids[0], ids[1]);

    let job = a.start_job(&held_url, "takeover-1").await;
    host.wait_for_requests(1).await;
    let (status, runs, owner, first_lease) = stored(&db, &job).await;
    assert_eq!((status.as_str(), runs), ("IN_PROGRESS", 1));
    let owner = owner.expect("the job is leased");
    let (runner, other) = if owner == ids[0] { (a, b) } else { (b, a) };
    assert_eq!(runner.replica.as_deref(), Some(owner.as_str()));

    // While its runner lives, the lease is renewed past its first expiry and nobody takes it.
    let renewed_past = first_lease.unwrap() + 2_000;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, runs, now_owner, lease) = stored(&db, &job).await;
        assert_eq!((runs, now_owner.as_deref()), (1, Some(owner.as_str())), "a live lease is not taken over");
        if lease.unwrap() > renewed_past {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the lease was never renewed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(host.requests(), 1, "one download while the runner lives");

    runner.kill();
    host.wait_for_requests(2).await; // the other replica took the job over and fetches again
    let (status, runs, new_owner, _) = stored(&db, &job).await;
    assert_eq!((status.as_str(), runs, new_owner.as_deref()), ("IN_PROGRESS", 2, other.replica.as_deref()));
    host.release();
    other.wait_for(&job, "COMPLETED").await;

    assert_eq!(host.most_open(), 1, "never two downloads of the job at once");
    assert_eq!(host.requests(), 2, "one run per replica, no more");
    let predictions: Value = other
        .client
        .get(format!("{}/v0/batch/jobs/{job}/predictions", other.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(predictions.as_array().map(Vec::len), Some(1), "{predictions}");
    assert!(predictions[0]["error"].is_null(), "{predictions}");
    let (status, runs, owner, _) = stored(&db, &job).await;
    assert_eq!((status.as_str(), runs, owner), ("COMPLETED", 2, None));
}

#[tokio::test]
async fn a_replica_killed_while_delivering_a_callback_leaves_it_to_another_never_two_at_once() {
    let pg = Postgres::start().await;
    let db = pg.pool().await;
    let (hook, hook_url) = held_host().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (replica(&pg, &dir_a), replica(&pg, &dir_b));
    let body =
        json!({"text": ["Call me back, whoever you are."], "models": {"language": {}}, "callback_url": hook_url});
    let response = a.client.post(format!("{}/v0/batch/jobs", a.address)).json(&body).send().await.unwrap();
    let answer: Value = response.json().await.unwrap();
    let job = answer["job_id"].as_str().expect("a job id").to_owned();
    hook.wait_for_requests(1).await; // the finishing replica is delivering, held by the hook
    let (state, deliverer): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT callback_state, callback_owner FROM jobs WHERE id = $1")
            .bind(&job)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(state.as_deref(), Some("PENDING"));
    let deliverer = deliverer.expect("the delivery is claimed");
    let (deliverer, other) = if a.replica.as_deref() == Some(deliverer.as_str()) { (a, b) } else { (b, a) };

    deliverer.kill();
    hook.wait_for_requests(2).await; // the other replica's sweep took the delivery over
    hook.release();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (state, owner): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT callback_state, callback_owner FROM jobs WHERE id = $1")
                .bind(&job)
                .fetch_one(&db)
                .await
                .unwrap();
        if state.as_deref() == Some("DELIVERED") {
            assert_eq!(owner, None);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the callback was never recorded delivered ({state:?})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hook.most_open(), 1, "never two deliveries at once");
    assert_eq!(hook.requests(), 2, "delivered again once, by the survivor");
    assert_eq!(other.status(&job).await, "COMPLETED");
}

#[tokio::test]
async fn one_idempotency_key_raced_on_two_replicas_makes_one_job() {
    let pg = Postgres::start().await;
    let db = pg.pool().await;
    let (host, held_url) = held_host().await;
    host.release();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (replica(&pg, &dir_a), replica(&pg, &dir_b));
    let calls = (0..16).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        server.start_job(&held_url, "same-run")
    });
    let ids = futures::future::join_all(calls).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let jobs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs").fetch_one(&db).await.unwrap();
    assert_eq!(jobs, 1);
    a.wait_for(&ids[0], "COMPLETED").await;

    // The same key for another request is refused on either replica.
    for server in [&a, &b] {
        let response = server
            .client
            .post(format!("{}/v1/actions/hume-expression-measurement", server.address))
            .header("Idempotency-Key", "same-run")
            .json(&json!({"urls": format!("{held_url}?other"), "models_language": "Yes"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("idempotency_key_reused")), "{body}");
    }

    // /readyz names the store, and says when it is gone.
    let ready: Value = a.client.get(format!("{}/readyz", a.address)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["components"]["store"], "postgresql: ok", "{ready}");
    let mut pg = pg;
    db.close().await;
    pg.stop();
    let response = a.client.get(format!("{}/readyz", a.address)).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("postgresql"), "{body}");
    assert!(!body.contains(pg.password()), "{body}");
}

#[tokio::test]
async fn a_replica_that_cannot_reach_postgresql_says_which_and_why_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let password = "Sup3r-secret-db-pw";
    let url = format!("postgres://hume:{password}@127.0.0.1:{port}/jobs");
    let data_dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hume-action"))
        .env("HUME_ACTION_LISTEN", "127.0.0.1:0")
        .env("HUME_ACTION_DATA_DIR", data_dir.path())
        .env("HUME_ACTION_MODEL_DIR", crate::helpers::model_dir())
        .env("HUME_ACTION_DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output).await.expect("it gives up in time").unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stderr.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}/jobs")), "{stderr}");
    assert!(stderr.to_lowercase().contains("refused"), "the reason: {stderr}");
    assert!(!stderr.contains(password) && !stdout.contains(password), "{stderr}\n{stdout}");
}

#[tokio::test]
async fn a_summary_waiting_on_one_replica_wakes_when_another_replica_ends_the_job() {
    let pg = Postgres::start().await;
    let (host, held_url) = held_host().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(&pg, &dir_a);
    let b = replica(&pg, &dir_b);
    let job = a.start_job(&held_url, "wait-across-replicas").await;
    host.wait_for_requests(1).await;
    // Both replicas are asked to wait; whichever runs the job, one of them only hears of its
    // end through PostgreSQL's NOTIFY.
    let client = reqwest::Client::new();
    let wait_on = |address: &str| {
        let (client, url) = (client.clone(), format!("{address}/v1/jobs/{job}/summary?wait=25"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().json::<Value>().await.unwrap() })
    };
    let (on_a, on_b) = (wait_on(&a.address), wait_on(&b.address));
    for replica in [&a, &b] {
        waiting_on_a_job(&client, &replica.address).await;
    }
    host.release();
    for waiting in [on_a, on_b] {
        let summary = tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .expect("woken before its wait ran out")
            .unwrap();
        assert_eq!(
            (summary["done"].as_bool(), summary["status"].as_str()),
            (Some(true), Some("COMPLETED")),
            "{summary}"
        );
    }
}

/// Waits (bounded) until the replica's `/metrics` shows a request waiting for a job's end.
async fn waiting_on_a_job(client: &reqwest::Client, address: &str) {
    for _ in 0..600 {
        let text = client.get(format!("{address}/metrics")).send().await.unwrap().text().await.unwrap();
        let waits = text
            .lines()
            .find_map(|l| l.strip_prefix("hume_action_summary_waits "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if waits.is_some_and(|n| n >= 1.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{address} never showed a waiting summary");
}
