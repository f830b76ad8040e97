//! Nothing accepted is lost: the real binary is killed (SIGKILL) mid-job and started again; a
//! clean stop (SIGTERM) puts the job back without counting it as an interruption.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::model_dir;
use crate::slow_host::{Answer, SlowHost};

/// The `hume-action` binary, running on a data directory.
pub struct Server {
    child: Child,
    pub address: String,
    pub client: reqwest::Client,
    /// Its replica id, when it runs on PostgreSQL (from its start-up log line).
    pub replica: Option<String>,
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    /// Starts the binary on `data_dir` with extra environment variables.
    pub fn start_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hume-action"))
            .env("HUME_ACTION_LISTEN", "127.0.0.1:0")
            .env("HUME_ACTION_BACKEND", "local")
            .env("HUME_ACTION_DATA_DIR", data_dir)
            .env("HUME_ACTION_MODEL_DIR", model_dir())
            .env("HUME_ACTION_ALLOW_PRIVATE_URLS", "true")
            .env("HUME_ACTION_WORKERS", "1")
            .env("HUME_ACTION_LOG_JSON", "true")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Reads the replica id and the bound address from the start-up lines, then keeps
            // draining the pipe.
            let mut replica = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    if let Some(id) = event["replica"].as_str() {
                        replica = Some(id.to_owned());
                    }
                    if event["message"] == "hume-action listening" {
                        let addr = event["addr"].as_str().unwrap_or_default().to_owned();
                        let _ = tx.send((addr, replica.clone()));
                    }
                }
            }
        });
        let (addr, replica) = rx.recv_timeout(Duration::from_secs(120)).expect("the server said where it listens");
        Self { child, address: format!("http://{addr}"), client: reqwest::Client::new(), replica }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no shutdown code runs
        self.child.wait().unwrap();
    }

    /// SIGTERM, as a rolling deploy stops a server; waits for the process to exit.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success());
        self.child.wait().unwrap()
    }

    /// Starts a job measuring the language of `url`, under an idempotency key.
    pub async fn start_job(&self, url: &str, idempotency_key: &str) -> String {
        let response = self
            .client
            .post(format!("{}/v1/actions/hume-expression-measurement", self.address))
            .header("Idempotency-Key", idempotency_key)
            .json(&json!({"urls": url, "models_language": "Yes", "models_prosody": "No"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned()
    }

    /// A job's status.
    pub async fn status(&self, id: &str) -> String {
        let job: Value =
            self.client.get(format!("{}/v0/batch/jobs/{id}", self.address)).send().await.unwrap().json().await.unwrap();
        job["state"]["status"].as_str().unwrap_or_default().to_owned()
    }

    /// Waits (bounded) until a job has `status`.
    pub async fn wait_for(&self, id: &str, status: &str) {
        for _ in 0..1200 {
            if self.status(id).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} never became {status} (is {})", self.status(id).await);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_killed_server_loses_no_accepted_job() {
    let upstream = MockServer::start().await;
    let slow = Mock::given(method("GET")).and(path("/slow.txt")).respond_with(
        ResponseTemplate::new(200).set_body_string("This is taking forever.").set_delay(Duration::from_secs(300)),
    );
    upstream.register(slow).await;
    let data_dir = tempfile::tempdir().unwrap();
    let (slow_url, queued_url) = (format!("{}/slow.txt", upstream.uri()), format!("{}/queued.txt", upstream.uri()));

    let first = Server::start(data_dir.path());
    let running = first.start_job(&slow_url, "run-a").await;
    first.wait_for(&running, "IN_PROGRESS").await;
    // One worker claims two jobs at once (one downloads while the other is measured).
    let fetching = first.start_job(&format!("{slow_url}?b"), "run-b").await;
    first.wait_for(&fetching, "IN_PROGRESS").await;
    let queued = first.start_job(&queued_url, "run-c").await;
    assert_eq!(first.status(&queued).await, "QUEUED", "one worker, busy with two jobs");
    first.kill();

    upstream.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("Finally, it works."))
        .mount(&upstream)
        .await;
    let second = Server::start(data_dir.path());
    second.wait_for(&running, "COMPLETED").await;
    second.wait_for(&fetching, "COMPLETED").await;
    second.wait_for(&queued, "COMPLETED").await;
    assert_eq!(second.start_job(&slow_url, "run-a").await, running, "idempotency keys survive a restart too");
}

#[tokio::test]
async fn three_sigterm_restarts_during_a_job_do_not_fail_it() {
    let host = SlowHost::start(Answer::Held { body: "Rolling deploys should never cost me a job." }).await;
    let data_dir = tempfile::tempdir().unwrap();
    let url = host.url("/held.txt");
    let mut server = Server::start(data_dir.path());
    let job = server.start_job(&url, "deploy-1").await;
    for restart in 1..=3 {
        host.wait_for_requests(restart).await; // this run is fetching the source: mid-job
        server.wait_for(&job, "IN_PROGRESS").await;
        let exit = server.terminate();
        assert!(exit.success(), "a clean stop exits 0: {exit:?}");
        let (status, runs) = stored_status(data_dir.path(), &job).await;
        assert_eq!((status.as_str(), runs), ("QUEUED", 0), "put back, the run not counted");
        server = Server::start(data_dir.path());
    }
    host.wait_for_requests(4).await;
    host.release();
    server.wait_for(&job, "COMPLETED").await;
}

/// A job's stored status and counted runs, read while no server runs.
async fn stored_status(data_dir: &std::path::Path, id: &str) -> (String, i64) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data_dir.join("hume-action.sqlite3"));
    let db = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let row: (String, i64) =
        sqlx::query_as("SELECT status, runs FROM jobs WHERE id = ?").bind(id).fetch_one(&db).await.unwrap();
    db.close().await;
    row
}
