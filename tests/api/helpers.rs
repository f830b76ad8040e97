//! Spawning the app on port 0 beside a fake Hume (wiremock), and capturing its logs.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex, Once};
use std::time::Duration;

use hume_action::config::{BackendKind, Config};
use hume_action::startup::Application;
use serde_json::Value;
use tokio::sync::oneshot;
use wiremock::MockServer;

/// Every log line any test app wrote, at TRACE level.
pub static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(Default::default);

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| LogWriter)
            .with_ansi(false)
            .init();
    });
}

/// The whole captured log, as text.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

/// A running app and its fake upstream.
pub struct TestApp {
    pub address: String,
    pub upstream: MockServer,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// The configuration tests start from: the given backend, fast retries, a fake key.
pub fn test_config(backend: BackendKind, upstream: &MockServer, data_dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.backend = backend;
    config.hume_batch_base_url = upstream.uri().parse().unwrap();
    config.hume_api_key = Some("test-key".parse().unwrap());
    config.retry_base_ms = 5;
    config.data_dir = data_dir.to_owned();
    config.upstream_timeout_secs = 5.0;
    config
}

/// Spawns the app with the `hume-batch` backend against a fresh fake upstream.
pub async fn spawn_batch_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let upstream = MockServer::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(BackendKind::HumeBatch, &upstream, data_dir.path());
    tweak(&mut config);
    spawn_with(config, upstream, data_dir).await
}

/// Spawns the app with the given configuration.
pub async fn spawn_with(config: Config, upstream: MockServer, data_dir: tempfile::TempDir) -> TestApp {
    capture_logs();
    let app = Application::build(config).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp { address, upstream, client: reqwest::Client::new(), data_dir, shutdown: Some(tx), server: Some(server) }
}

impl TestApp {
    /// POSTs a JSON body to the action.
    pub async fn start(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/actions/hume-expression-measurement", self.address))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GETs a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{}", self.address, path)).send().await.unwrap()
    }

    /// GETs a path as the caller with this `X-Hume-Api-Key` (none: the server's key).
    pub async fn get_as(&self, key: Option<&str>, path: &str) -> reqwest::Response {
        let request = self.client.get(format!("{}{}", self.address, path));
        let request = match key {
            Some(key) => request.header("X-Hume-Api-Key", key),
            None => request,
        };
        request.send().await.unwrap()
    }

    /// Signals shutdown and waits for the server to finish its in-flight calls.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server).await.expect("stops in time").unwrap().unwrap();
        }
    }
}

/// The JSON body of a response, with its status.
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Waits (bounded) until the fake upstream has received at least `n` requests.
pub async fn wait_for_upstream_requests(app: &TestApp, n: usize) {
    for _ in 0..1000 {
        if app.upstream.received_requests().await.unwrap_or_default().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the upstream never received {n} requests");
}

/// Where the test model files are: `HUME_ACTION_MODEL_DIR`, else `./data/models` (what
/// `scripts/install-models.sh` fills).
pub fn model_dir() -> std::path::PathBuf {
    std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models"))
}

/// A model directory of links to the installed one ([`model_dir`]), where the folder `own` is a
/// folder of its own holding links to its files: a test can swap one of them (say, for a file that
/// is not the pinned one) after the server started, without touching the installed models.
pub fn linked_model_dir(own: &str) -> tempfile::TempDir {
    let models = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap().flatten() {
        let link = models.path().join(entry.file_name());
        if entry.file_name() == own {
            std::fs::create_dir(&link).unwrap();
            for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
                std::os::unix::fs::symlink(file.path(), link.join(file.file_name())).unwrap();
            }
        } else {
            std::os::unix::fs::symlink(entry.path(), link).unwrap();
        }
    }
    models
}

/// Spawns the app on the local engine; URLs on this machine are allowed (the fake hosts are
/// on loopback) unless the tweak says otherwise.
pub async fn spawn_local_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_engine_app(BackendKind::Local, tweak).await
}

/// Spawns the app on the `hume` backend, its v1 calls going to `v1_uri` (a
/// [`crate::fake_v1::FakeV1`]).
pub async fn spawn_hume_app(v1_uri: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let v1_uri = v1_uri.parse().unwrap();
    spawn_engine_app(BackendKind::Hume, |config| {
        config.hume_api_base_url = v1_uri;
        tweak(config);
    })
    .await
}

/// An engine backend with the test models, two workers and loopback URLs allowed.
async fn spawn_engine_app(backend: BackendKind, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let upstream = MockServer::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = test_config(backend, &upstream, data_dir.path());
    config.model_dir = Some(model_dir());
    config.allow_private_urls = true;
    config.workers = Some(2);
    tweak(&mut config);
    spawn_with(config, upstream, data_dir).await
}

impl TestApp {
    /// Polls the job until its status is one of `statuses` (bounded), and returns it.
    pub async fn wait_for_job(&self, id: &str, statuses: &[&str]) -> Value {
        self.wait_for_job_as(None, id, statuses).await
    }

    /// [`TestApp::wait_for_job`] as the caller with this key (jobs belong to their caller).
    pub async fn wait_for_job_as(&self, key: Option<&str>, id: &str, statuses: &[&str]) -> Value {
        let mut last = Value::Null;
        for _ in 0..1200 {
            last = self.get_as(key, &format!("/v0/batch/jobs/{id}")).await.json().await.unwrap();
            if statuses.iter().any(|s| last["state"]["status"] == *s) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} never reached {statuses:?}: {last}");
    }

    /// Starts a v0 job with a JSON body and returns its id.
    pub async fn start_v0(&self, body: &Value) -> String {
        let response = self.client.post(format!("{}/v0/batch/jobs", self.address)).json(body).send().await.unwrap();
        let (status, answer) = status_and_json(response).await;
        assert_eq!(status, 200, "{answer}");
        answer["job_id"].as_str().unwrap().to_owned()
    }

    /// The predictions of an ended job.
    pub async fn predictions(&self, id: &str) -> Value {
        let (status, body) = status_and_json(self.get(&format!("/v0/batch/jobs/{id}/predictions")).await).await;
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl TestApp {
    /// Serves `bytes` at `path` on the test's file host and returns the URL.
    pub async fn host_file(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> String {
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path(path))
            .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(bytes, content_type))
            .mount(&self.upstream)
            .await;
        format!("{}{path}", self.upstream.uri())
    }
}

/// A job's `(status, num_predictions, num_errors)`.
pub fn outcome(job: &Value) -> (Option<&str>, Option<i64>, Option<i64>) {
    let state = &job["state"];
    (state["status"].as_str(), state["num_predictions"].as_i64(), state["num_errors"].as_i64())
}

/// The job's summary, held until it ends (`?wait=25`, at most 20 times).
pub async fn summary_when_done(app: &TestApp, id: &str) -> Value {
    for _ in 0..20 {
        let (status, summary) = status_and_json(app.get(&format!("/v1/jobs/{id}/summary?wait=25")).await).await;
        assert_eq!(status, 200, "{summary}");
        if summary["done"] == true {
            return summary;
        }
    }
    panic!("job {id} did not end");
}
