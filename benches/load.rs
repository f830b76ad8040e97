//! Benchmarks, run by hand: `cargo bench --bench load [-- SECTION...]`, sections
//! `overhead`, `limiter`, `accept`, `language`, `rss`, `tiny` (all by default). Prints numbers; asserts
//! nothing.
//!
//! - overhead: action throughput and p50/p99 against an instant fake upstream with the limit
//!   opened wide, beside the same load sent straight to the fake;
//! - limiter: 100 queued calls at 10 per 2 s: total time against the ideal 18 s, and the most
//!   requests the fake saw in any 2 s window;
//! - accept: local-backend accept latency with the durable store under 200 concurrent calls;
//! - language: sentences/s of the embedded language model (on the runtime `HUME_ACTION_MODEL_DIR`
//!   offers: onnxruntime when installed), beside sentence-transformers on
//!   PyTorch CPU for the same model and inputs when `HUME_ACTION_ST_PYTHON` names a Python
//!   that has it;
//! - rss: resident memory of the real binary, idle (hume-batch) and with the model loaded (local);
//! - tiny: 200 one-sentence text jobs on the local backend, 10 in flight: jobs/s, and p50/p99 of
//!   each job's own created-to-ended time and of what its caller waited (the POST, then the
//!   summary's `?wait` until the job ended).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hume_action::config::{BackendKind, Config};
use hume_action::models::language::{LanguageModel, MODEL_DIR_NAME};
use hume_action::startup::Application;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn model_root() -> PathBuf {
    std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/models"), PathBuf::from)
}

fn config(backend: BackendKind, upstream: &MockServer, data_dir: &std::path::Path) -> Config {
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.backend = backend;
    c.hume_batch_base_url = upstream.uri().parse().unwrap();
    c.hume_api_key = Some("bench-key".parse().unwrap());
    c.data_dir = data_dir.to_owned();
    c.model_dir = Some(model_root());
    c.allow_private_urls = true;
    c
}

async fn spawn(config: Config) -> String {
    let app = Application::build(config).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    address
}

/// Sends `total` POSTs with `concurrency` in flight; returns (requests/s, sorted latencies).
async fn load(
    client: &reqwest::Client,
    url: &str,
    body: Value,
    total: usize,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..total)
        .map(|i| {
            let mut body = body.clone();
            body["urls"] = json!(format!("https://bench.test/{i}.mp3"));
            let request = client.post(url).json(&body);
            async move {
                let t = Instant::now();
                let response = request.send().await.expect("request sent");
                assert!(response.status().is_success(), "{}", response.status());
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let rate = total as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

async fn overhead() {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"job_id": "j"})))
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(BackendKind::HumeBatch, &upstream, dir.path());
    c.rate_limit_requests = 1_000_000;
    let address = spawn(c).await;
    let client = reqwest::Client::new();
    let (total, concurrency) = (4000, 32);
    let body = json!({"urls": "", "models_prosody": "Yes"});
    let _ = load(&client, &format!("{}/v0/batch/jobs", upstream.uri()), body.clone(), 200, concurrency).await; // warm-up
    let (direct_rate, direct) =
        load(&client, &format!("{}/v0/batch/jobs", upstream.uri()), body.clone(), total, concurrency).await;
    let (action_rate, action) =
        load(&client, &format!("{address}/v1/actions/hume-expression-measurement"), body, total, concurrency).await;
    println!("overhead: {total} calls, {concurrency} in flight, instant fake upstream, limit opened wide");
    println!(
        "  straight to fake : {direct_rate:8.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms",
        pct(&direct, 0.5),
        pct(&direct, 0.99)
    );
    println!(
        "  through action   : {action_rate:8.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms",
        pct(&action, 0.5),
        pct(&action, 0.99)
    );
    println!(
        "  added latency    : p50 {:+.2} ms, p99 {:+.2} ms; throughput ratio {:.2}",
        pct(&action, 0.5) - pct(&direct, 0.5),
        pct(&action, 0.99) - pct(&direct, 0.99),
        action_rate / direct_rate
    );
}

#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Respond for Arrivals {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.lock().unwrap().push(Instant::now());
        ResponseTemplate::new(200).set_body_json(json!({"job_id": "j"}))
    }
}

async fn limiter() {
    let upstream = MockServer::start().await;
    let arrivals = Arrivals::default();
    Mock::given(method("POST")).respond_with(arrivals.clone()).mount(&upstream).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(BackendKind::HumeBatch, &upstream, dir.path());
    c.rate_limit_requests = 10;
    c.rate_limit_window_secs = 2.0;
    let address = spawn(c).await;
    let client = reqwest::Client::new();
    let started = Instant::now();
    let (_, latencies) =
        load(&client, &format!("{address}/v1/actions/hume-expression-measurement"), json!({"urls": ""}), 100, 100)
            .await;
    let total = started.elapsed();
    let times = arrivals.0.lock().unwrap().clone();
    let window = Duration::from_secs(2);
    let worst =
        times.iter().map(|t| times.iter().filter(|u| **u >= *t && **u < *t + window).count()).max().unwrap_or(0);
    println!("limiter: 100 calls at once, limit 10 per 2 s");
    println!(
        "  total {:.2} s (ideal 18.00 s: 10 at once, then 10 per window); worst count in any 2 s window: {worst}",
        total.as_secs_f64()
    );
    println!(
        "  call latency p50 {:.0} ms, max {:.0} ms; sustained rate {:.1}% of the limit",
        pct(&latencies, 0.5),
        pct(&latencies, 1.0),
        100.0 * 18.0 / total.as_secs_f64()
    );
}

async fn accept() {
    let upstream = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("I am happy with the service."))
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let address = spawn(config(BackendKind::Local, &upstream, dir.path())).await;
    let client = reqwest::Client::new();
    let body = json!({"urls": "", "models_language": "Yes", "models_prosody": "No"});
    let url = format!("{address}/v1/actions/hume-expression-measurement");
    for (total, concurrency) in [(200, 200), (2000, 200)] {
        let (rate, latencies) = load(&client, &url, body.clone(), total, concurrency).await;
        println!(
            "accept (local, SQLite WAL + synchronous=FULL, workers running): {total} calls, {concurrency} concurrent"
        );
        println!(
            "  {rate:.0} accepts/s  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            pct(&latencies, 0.5),
            pct(&latencies, 0.99),
            pct(&latencies, 1.0)
        );
    }
}

fn sentences() -> Vec<String> {
    include_str!("../assets/language/expressions.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .take(256)
        .collect()
}

fn language() {
    let dir = model_root().join(MODEL_DIR_NAME);
    let model = LanguageModel::load(&dir).expect("model installed (scripts/install-models.sh)");
    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    model.score(&refs[..32]).unwrap(); // warm-up
    let t = Instant::now();
    model.score(&refs).unwrap();
    let batch = refs.len() as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for text in &refs[..64] {
        model.score(&[text]).unwrap();
    }
    let single = 64.0 / t.elapsed().as_secs_f64();
    println!(
        "language: {} sentences (assets/language), all-MiniLM-L6-v2 + heads, on {}",
        refs.len(),
        model.runtime().name()
    );
    println!("  ours                    : {batch:6.1} sentences/s in batches of 32, {single:6.1} one at a time");
    let Some(python) = std::env::var_os("HUME_ACTION_ST_PYTHON") else {
        println!(
            "  sentence-transformers   : set HUME_ACTION_ST_PYTHON to a Python with sentence-transformers to compare"
        );
        return;
    };
    let mut child = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/st_speed.py"))
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python runs");
    serde_json::to_writer(child.stdin.take().unwrap(), &texts).unwrap();
    let output = child.wait_with_output().unwrap();
    let st: Value = serde_json::from_slice(&output.stdout).expect("st_speed.py printed JSON");
    let (st_batch, st_single) = (st["batch32"].as_f64().unwrap(), st["single"].as_f64().unwrap());
    println!("  sentence-transformers   : {st_batch:6.1} sentences/s in batches of 32, {st_single:6.1} one at a time (torch {})", st["torch"]);
    println!("  ratio ours / PyTorch    : {:.2} batched, {:.2} single", batch / st_batch, single / st_single);
}

fn rss_of(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn rss() {
    for backend in ["hume-batch", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hume-action"))
            .env("HUME_ACTION_LISTEN", "127.0.0.1:0")
            .env("HUME_ACTION_BACKEND", backend)
            .env("HUME_ACTION_DATA_DIR", dir.path())
            .env("HUME_ACTION_MODEL_DIR", model_root())
            .env("HUME_ACTION_LOG_JSON", "true")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = lines.by_ref().map_while(Result::ok).any(|l| l.contains("hume-action listening"));
        assert!(listening, "{backend} server started");
        println!(
            "rss: {backend:10} idle after start-up: {:6.1} MiB{}",
            rss_of(child.id()),
            if backend == "local" { " (language model loaded)" } else { "" }
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

async fn tiny() {
    let upstream = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(BackendKind::Local, &upstream, dir.path());
    config.workers = std::env::var("HUME_ACTION_WORKERS").ok().and_then(|w| w.parse().ok());
    let workers = config.workers();
    let address = spawn(config).await;
    let client = reqwest::Client::new();
    let texts = sentences();
    let run = |i: usize| {
        let (client, address) = (client.clone(), address.clone());
        let body = json!({"text": [texts[i % texts.len()]], "models": {"language": {"granularity": "sentence"}}});
        async move {
            let t = Instant::now();
            let started: Value =
                client.post(format!("{address}/v0/batch/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
            let id = started["job_id"].as_str().expect("a job id").to_owned();
            let summary = client.get(format!("{address}/v1/jobs/{id}/summary?wait=25")).send().await.unwrap();
            assert!(summary.status().is_success(), "{}", summary.status());
            let waited = t.elapsed();
            let job: Value =
                client.get(format!("{address}/v0/batch/jobs/{id}")).send().await.unwrap().json().await.unwrap();
            assert_eq!(job["state"]["status"], "COMPLETED", "{job}");
            let ms = |key: &str| job["state"][key].as_u64().expect("job timestamps");
            (Duration::from_millis(ms("ended_timestamp_ms") - ms("created_timestamp_ms")), waited)
        }
    };
    // Warm-up: the first jobs open the database's pages and the model's buffers.
    futures::stream::iter(0..20).map(run).buffer_unordered(10).collect::<Vec<_>>().await;
    // One at a time first: a job's latency with no queue in front of it.
    let (mut alone, _): (Vec<Duration>, Vec<Duration>) =
        futures::stream::iter(0..50).map(run).buffer_unordered(1).collect::<Vec<_>>().await.into_iter().unzip();
    alone.sort();
    let started = Instant::now();
    let (mut own, mut waited): (Vec<Duration>, Vec<Duration>) =
        futures::stream::iter(0..200).map(run).buffer_unordered(10).collect::<Vec<_>>().await.into_iter().unzip();
    let rate = 200.0 / started.elapsed().as_secs_f64();
    own.sort();
    waited.sort();
    println!(
        "tiny: 200 one-sentence text jobs (v0 `text`, language at sentence granularity), 10 in flight, local, SQLite, \
         {workers} workers (HUME_ACTION_WORKERS)"
    );
    println!(
        "  {rate:.0} jobs/s; created to COMPLETED (the job's timestamps): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pct(&own, 0.5),
        pct(&own, 0.99),
        pct(&own, 1.0)
    );
    println!(
        "  the caller's POST + summary?wait until the end: p50 {:.0} ms, p99 {:.0} ms",
        pct(&waited, 0.5),
        pct(&waited, 0.99)
    );
    println!(
        "  one job at a time (50 jobs), created to COMPLETED: p50 {:.0} ms, p99 {:.0} ms",
        pct(&alone, 0.5),
        pct(&alone, 0.99)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if wants("overhead") {
        runtime.block_on(overhead());
    }
    if wants("limiter") {
        runtime.block_on(limiter());
    }
    if wants("accept") {
        runtime.block_on(accept());
    }
    if wants("language") {
        language();
    }
    if wants("rss") {
        rss();
    }
    if wants("tiny") {
        runtime.block_on(tiny());
    }
}
