//! `GET /metrics` counts what happened. Each test runs the real binary as a child process, so
//! its metrics are that server's alone (the apps the other tests spawn share this process's
//! recorder), and the counts can be checked exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "tok-metrics-secret-4711";
const SERVER_KEY: &str = "sk-server-secret-0815";
const CALLER_KEY: &str = "sk-caller-secret-2342";

/// The `hume-action` binary (`crate::recovery::Server`) on its own data directory, with a token
/// and a server key.
struct Server {
    binary: crate::recovery::Server,
    _data_dir: tempfile::TempDir,
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let mut all = vec![("HUME_ACTION_TOKEN", TOKEN), ("HUME_API_KEY", SERVER_KEY), ("HUME_RETRY_BASE_MS", "5")];
        all.extend_from_slice(env);
        Self { binary: crate::recovery::Server::start_with(data_dir.path(), &all), _data_dir: data_dir }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.binary
            .client
            .request(method, format!("{}{path}", self.binary.address))
            .bearer_auth(TOKEN)
            .header("X-Hume-Api-Key", CALLER_KEY)
    }

    async fn metrics_text(&self) -> String {
        // No token: /metrics is open, like /healthz.
        let response = self.binary.client.get(format!("{}/metrics", self.binary.address)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        response.text().await.unwrap()
    }

    async fn metrics(&self) -> Metrics {
        Metrics::parse(&self.metrics_text().await)
    }

    /// Scrapes until `done` holds (bounded): for what is recorded after the client already saw
    /// the effect (a callback's outcome is counted once its answer is read).
    async fn metrics_until(&self, done: impl Fn(&Metrics) -> bool) -> Metrics {
        for _ in 0..600 {
            let metrics = self.metrics().await;
            if done(&metrics) {
                return metrics;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the metrics never showed it:\n{}", self.metrics_text().await);
    }

    async fn wait_for_job(&self, id: &str) -> Value {
        for _ in 0..1200 {
            let job: Value = self
                .request(reqwest::Method::GET, &format!("/v0/batch/jobs/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if matches!(job["state"]["status"].as_str(), Some("COMPLETED" | "FAILED")) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job {id} never ended");
    }
}

/// One scrape: each sample by name and labels.
struct Metrics(Vec<(String, BTreeMap<String, String>, f64)>);

impl Metrics {
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let (series, value) = line.rsplit_once(' ').expect("a sample line is `series value`");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("label=value");
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            samples.push((name.to_owned(), labels, value.parse().expect("a number")));
        }
        Self(samples)
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, _, value)| value)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}

const ACTION: &str = "/v1/actions/hume-expression-measurement";

#[tokio::test]
async fn metrics_count_requests_jobs_analyses_and_callbacks_and_show_no_secret() {
    let host = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/words.txt"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("What a lovely day it is.", "text/plain"))
        .mount(&host)
        .await;
    Mock::given(method("POST")).and(path("/done")).respond_with(ResponseTemplate::new(200)).mount(&host).await;
    let server = Server::start(&[("HUME_ACTION_BACKEND", "local")]);
    let before = server.metrics().await;
    let action = [("route", ACTION), ("status", "200"), ("method", "POST")];
    assert_eq!(before.sum("hume_action_http_requests_total", &action), 0.0);

    const N: usize = 3;
    let mut ids = Vec::new();
    for i in 0..N {
        let body = json!({
            "urls": format!("{}/words.txt?i={i}&sig={CALLER_KEY}", host.uri()),
            "models_language": "Yes", "models_face": "No", "models_prosody": "No",
            "callback_url": format!("{}/done", host.uri()),
        });
        let response = server.request(reqwest::Method::POST, ACTION).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        ids.push(response.json::<Value>().await.unwrap()["job_id"].as_str().unwrap().to_owned());
    }
    // Refused: no token; and a path no route has, with a key in its query string.
    let refused =
        server.binary.client.post(format!("{}{ACTION}", server.binary.address)).json(&json!({})).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let unknown = server.request(reqwest::Method::GET, &format!("/no/such/route?api_key={CALLER_KEY}")).send().await;
    assert_eq!(unknown.unwrap().status(), 404);
    for id in &ids {
        let job = server.wait_for_job(id).await;
        assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
    }

    let after =
        server.metrics_until(|m| m.sum("hume_action_callbacks_total", &[("outcome", "delivered")]) >= N as f64).await;
    let n = N as f64;
    assert_eq!(after.sum("hume_action_http_requests_total", &action), n);
    assert_eq!(after.sum("hume_action_http_request_duration_seconds_count", &action), n);
    let unauthorized = [("route", ACTION), ("status", "401")];
    assert_eq!(after.sum("hume_action_http_requests_total", &unauthorized), 1.0);
    let unmatched = [("route", "unmatched"), ("status", "404"), ("method", "GET")];
    assert_eq!(after.sum("hume_action_http_requests_total", &unmatched), 1.0);
    // Job reads are counted under their template, whatever the id.
    let reads = [("route", "/v0/batch/jobs/{id}"), ("status", "200")];
    assert!(after.sum("hume_action_http_requests_total", &reads) >= n);
    // The jobs, in the store, by state; how long they ran; what measured them.
    assert_eq!(after.sum("hume_action_jobs", &[("status", "COMPLETED")]), n);
    assert_eq!(after.sum("hume_action_jobs", &[("status", "QUEUED")]), 0.0);
    assert_eq!(after.sum("hume_action_jobs", &[("status", "FAILED")]), 0.0);
    assert_eq!(after.sum("hume_action_jobs_counted", &[]), 1.0);
    assert_eq!(after.sum("hume_action_job_duration_seconds_count", &[("status", "COMPLETED")]), n);
    let language = [("model", "language"), ("outcome", "ok")];
    assert_eq!(after.sum("hume_action_analysis_duration_seconds_count", &language), n);
    assert_eq!(after.sum("hume_action_callbacks_total", &[("outcome", "delivered")]), n);
    assert_eq!(after.sum("hume_action_callbacks_total", &[("outcome", "failed")]), 0.0);
    // The local backend calls no Hume API.
    assert_eq!(after.sum("hume_action_upstream_requests_total", &[]), 0.0);

    let text = server.metrics_text().await;
    for secret in [TOKEN, SERVER_KEY, CALLER_KEY, "no/such/route", "words.txt", "api_key", "sig="] {
        assert!(!text.contains(secret), "/metrics shows {secret:?}:\n{text}");
    }
    for id in &ids {
        assert!(!text.contains(id.as_str()), "/metrics shows a job id");
    }
    // Every series has its TYPE and a HELP line that says what it means.
    let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next()).collect();
    assert!(families.len() >= 7, "{text}");
    for family in families {
        assert!(family.starts_with("hume_action_"), "{family}");
        let help = text.lines().find(|l| l.starts_with(&format!("# HELP {family} ")));
        assert!(help.is_some_and(|h| h.split_whitespace().count() > 5), "{family} is not described:\n{text}");
    }
}

#[tokio::test]
async fn metrics_count_upstream_attempts_by_api_status_and_attempt_and_the_limiter() {
    let hume = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v0/batch/jobs"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "busy"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hume)
        .await;
    Mock::given(method("POST"))
        .and(path("/v0/batch/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"job_id": "hume-job-1"})))
        .mount(&hume)
        .await;
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs/hume-job-1"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .mount(&hume)
        .await;
    let server = Server::start(&[("HUME_ACTION_BACKEND", "hume-batch"), ("HUME_BATCH_BASE_URL", &hume.uri())]);

    let response = server
        .request(reqwest::Method::POST, "/v0/batch/jobs")
        .json(&json!({"text": ["hello"], "models": {"language": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let read = server.request(reqwest::Method::GET, "/v0/batch/jobs/hume-job-1").send().await.unwrap();
    assert_eq!(read.status(), 404);

    let m = server.metrics().await;
    let upstream = "hume_action_upstream_requests_total";
    assert_eq!(m.sum(upstream, &[("api", "v0"), ("status", "503"), ("attempt", "1")]), 1.0);
    assert_eq!(m.sum(upstream, &[("api", "v0"), ("status", "200"), ("attempt", "2")]), 1.0);
    // A 404 is final: one attempt.
    assert_eq!(m.sum(upstream, &[("api", "v0"), ("status", "404"), ("attempt", "1")]), 1.0);
    assert_eq!(m.sum(upstream, &[]), 3.0);
    assert_eq!(m.sum(upstream, &[("api", "v1")]), 0.0);
    assert_eq!(m.sum("hume_action_upstream_request_duration_seconds_count", &[("api", "v0")]), 3.0);
    // Every attempt waited for the limiter once, and none waits now.
    assert_eq!(m.sum("hume_action_limiter_wait_seconds_count", &[("api", "v0")]), 3.0);
    assert_eq!(m.sum("hume_action_limiter_queue_depth", &[("api", "v0")]), 0.0);
    assert_eq!(m.sum("hume_action_limiter_refused_total", &[]), 0.0);
    // The route's answers: Hume's 404 passed on.
    let read = [("route", "/v0/batch/jobs/{id}"), ("status", "404")];
    assert_eq!(m.sum("hume_action_http_requests_total", &read), 1.0);
    // A pass-through backend keeps no jobs: no job gauge.
    assert!(!m.has("hume_action_jobs"));

    let text = server.metrics_text().await;
    for secret in [TOKEN, SERVER_KEY, CALLER_KEY, hume.uri().as_str(), "hume-job-1"] {
        assert!(!text.contains(secret), "/metrics shows {secret:?}:\n{text}");
    }
}

#[tokio::test]
async fn an_upstream_that_cannot_be_reached_is_counted_as_error_per_attempt() {
    // Nothing listens on port 1: every attempt fails to connect.
    let server = Server::start(&[
        ("HUME_ACTION_BACKEND", "hume-batch"),
        ("HUME_BATCH_BASE_URL", "http://127.0.0.1:1"),
        ("HUME_MAX_ATTEMPTS", "2"),
    ]);
    let read = server.request(reqwest::Method::GET, "/v0/batch/jobs/some-job").send().await.unwrap();
    assert_eq!(read.status(), 504);
    let m = server.metrics().await;
    let upstream = "hume_action_upstream_requests_total";
    assert_eq!(m.sum(upstream, &[("api", "v0"), ("status", "error"), ("attempt", "1")]), 1.0);
    assert_eq!(m.sum(upstream, &[("api", "v0"), ("status", "error"), ("attempt", "2")]), 1.0);
    assert_eq!(m.sum(upstream, &[]), 2.0);
    let read = [("route", "/v0/batch/jobs/{id}"), ("status", "504")];
    assert_eq!(m.sum("hume_action_http_requests_total", &read), 1.0);
    assert!(!server.metrics_text().await.contains("127.0.0.1:1"));
}

#[tokio::test]
async fn the_limiter_queue_depth_shows_a_waiting_call_and_refusals_are_counted() {
    let hume = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v0/batch/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&hume)
        .await;
    // One call per 100 s: the second waits its turn, a third would wait past 150 s and is refused.
    let server = Server::start(&[
        ("HUME_ACTION_BACKEND", "hume-batch"),
        ("HUME_BATCH_BASE_URL", &hume.uri()),
        ("HUME_RATE_LIMIT_REQUESTS", "1"),
        ("HUME_RATE_LIMIT_WINDOW_SECS", "100"),
        ("HUME_MAX_QUEUE_WAIT_SECS", "150"),
    ]);
    let first = server.request(reqwest::Method::GET, "/v0/batch/jobs").send().await.unwrap();
    assert_eq!(first.status(), 200);
    let waiting = tokio::spawn(server.request(reqwest::Method::GET, "/v0/batch/jobs").send());
    let m = server.metrics_until(|m| m.sum("hume_action_limiter_queue_depth", &[("api", "v0")]) == 1.0).await;
    assert_eq!(m.sum("hume_action_limiter_wait_seconds_count", &[("api", "v0")]), 1.0);
    let refused = server.request(reqwest::Method::GET, "/v0/batch/jobs").send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let m = server.metrics().await;
    assert_eq!(m.sum("hume_action_limiter_refused_total", &[("api", "v0")]), 1.0);
    assert_eq!(m.sum("hume_action_limiter_queue_depth", &[("api", "v0")]), 1.0);
    assert_eq!(m.sum("hume_action_upstream_requests_total", &[]), 1.0, "refused calls send nothing");
    waiting.abort();
}
