//! Three replicas as one service, by hand: `cargo bench --bench soak [-- MINUTES]` (10 by
//! default). Prints numbers; asserts nothing. Needs PostgreSQL, Redis, ffmpeg and espeak-ng
//! (`scripts/install-system.sh --tests`) and the language model files.
//!
//! Starts a real PostgreSQL and Redis (temporary directories, loopback), a strict fake of Hume
//! v1 (limit 50 per 60 s per key, counted by arrival), a file server with a short speech
//! recording, and three release builds of the server on the `hume` backend sharing both. Then,
//! for MINUTES, sends steady action calls (prosody on the recording) round-robin to the
//! replicas, with several API keys, each key a little over its limit so that the limit is the
//! bottleneck. Then waits for every accepted job to end and prints: jobs accepted, completed,
//! failed, lost (accepted but never ended or unknown: must be 0), window violations per key
//! (must be 0), each key's use of its limit, p50/p99 accept latency, and each replica's RSS at
//! the start and the end.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;

#[path = "../tests/api/fake_v1.rs"]
#[allow(dead_code)]
mod fake_v1;
#[path = "../tests/api/pg/server.rs"]
#[allow(dead_code)]
mod postgres_server;
#[path = "../tests/api/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use support::{memory_of, server};

const KEYS: [&str; 3] = ["soak-key-a", "soak-key-b", "soak-key-c"];
const LIMIT: usize = 50;
const WINDOW: Duration = Duration::from_secs(60);
/// Calls per minute per key: 10% over the limit, so that jobs wait for it.
const CALLS_PER_MINUTE_PER_KEY: f64 = 55.0;
/// 64 hex characters shared by the replicas: any of them opens the keys sealed with a job.
const SECRET_KEY: &str = "5f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The arrivals of one key that found `LIMIT` or more of its requests already in the window.
fn violations(times: &[Instant]) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    (0..sorted.len())
        .filter(|&i| sorted[..i].iter().filter(|t| sorted[i].duration_since(**t) < WINDOW).count() >= LIMIT)
        .count()
}

/// A short spoken sentence as WAV bytes.
fn speech() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("s.wav");
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&wav)
        .arg("Thanks for calling. I have been waiting for forty minutes and nobody can tell me where my order is.")
        .status()
        .expect("espeak-ng runs");
    assert!(status.success());
    std::fs::read(wav).unwrap()
}

/// Serves `bytes` at `/call.wav` on loopback; returns its URL.
async fn host(bytes: Vec<u8>) -> String {
    let bytes = bytes::Bytes::from(bytes);
    let app = axum::Router::new().route(
        "/call.wav",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            async move { ([("content-type", "audio/wav")], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/call.wav", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::main]
async fn main() {
    let minutes: f64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10.0);
    let postgres = postgres_server::Postgres::start().await;
    let redis = redis_server::RedisServer::start();
    let v1 = fake_v1::FakeV1::start(&KEYS).await;
    let audio_url = host(speech()).await;
    let database_url = postgres.url();
    let redis_url = redis.url();
    let v1_uri = v1.uri();
    let data = tempfile::tempdir().unwrap();
    let mut replicas = Vec::new();
    for i in 0..3 {
        let dir = data.path().join(format!("replica-{i}"));
        let (child, address) = server(
            &dir,
            &[
                ("HUME_ACTION_BACKEND", "hume"),
                ("HUME_API_BASE_URL", &v1_uri),
                ("HUME_ACTION_DATABASE_URL", &database_url),
                ("HUME_ACTION_REDIS_URL", &redis_url),
                ("HUME_ACTION_SECRET_KEY", SECRET_KEY),
                ("HUME_ACTION_WORKERS", "2"),
                ("HUME_MAX_QUEUE_WAIT_SECS", "600"),
            ],
        );
        replicas.push((child, address));
    }
    let rss_start: Vec<f64> = replicas.iter().map(|(c, _)| memory_of(&c.id().to_string()).0).collect();
    println!("3 replicas up; RSS at start {rss_start:.0?} MB; sending for {minutes} min");

    let client = reqwest::Client::new();
    let accepted = Arc::new(Mutex::new(Vec::<(usize, &'static str, String)>::new()));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let interval = Duration::from_secs_f64(60.0 / (CALLS_PER_MINUTE_PER_KEY * KEYS.len() as f64));
    let started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    let mut calls = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < Duration::from_secs_f64(minutes * 60.0) {
        ticker.tick().await;
        // Every key is spread over every replica.
        let (replica, key) = (n % 3, KEYS[(n / 3) % KEYS.len()]);
        let address = replicas[replica].1.clone();
        let (client, url) = (client.clone(), audio_url.clone());
        let (accepted, latencies, refused) = (accepted.clone(), latencies.clone(), refused.clone());
        calls.push(tokio::spawn(async move {
            let body = json!({"urls": url, "models_prosody": "Yes", "models_language": "No", "models_face": "No"});
            let sent = Instant::now();
            let response = client
                .post(format!("{address}/v1/actions/hume-expression-measurement"))
                .header("X-Hume-Api-Key", key)
                .json(&body)
                .send()
                .await;
            let took = sent.elapsed();
            match response {
                Ok(r) if r.status() == 200 => {
                    let body: Value = r.json().await.unwrap();
                    latencies.lock().unwrap().push(took);
                    accepted.lock().unwrap().push((replica, key, body["job_id"].as_str().unwrap().to_owned()));
                }
                Ok(r) => {
                    let why = format!("{} {}", r.status(), r.text().await.unwrap_or_default());
                    refused.lock().unwrap().push(why);
                }
                Err(e) => refused.lock().unwrap().push(e.to_string()),
            }
        }));
        n += 1;
    }
    for call in calls {
        call.await.unwrap();
    }
    let sending = started.elapsed();
    let accepted = accepted.lock().unwrap().clone();
    println!("sent {n} calls in {:.1} min; waiting for every accepted job to end", sending.as_secs_f64() / 60.0);

    // Every job, read from any replica (they share the store), until each has ended.
    let (mut completed, mut failed, mut lost) = (0, 0, 0);
    let drain_deadline = Instant::now() + Duration::from_secs(900);
    for (replica, key, id) in &accepted {
        // Read from another replica than the one that accepted it.
        let address = &replicas[(replica + 1) % 3].1;
        loop {
            let job: Value =
                match client.get(format!("{address}/v0/batch/jobs/{id}")).header("X-Hume-Api-Key", *key).send().await {
                    Ok(r) => r.json().await.unwrap_or(Value::Null),
                    Err(_) => Value::Null,
                };
            match job["state"]["status"].as_str() {
                Some("COMPLETED") => completed += 1,
                Some("FAILED") => failed += 1,
                Some(_) if Instant::now() < drain_deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                _ => lost += 1,
            }
            break;
        }
    }
    let all = started.elapsed();
    let rss_end: Vec<f64> = replicas.iter().map(|(c, _)| memory_of(&c.id().to_string()).0).collect();

    let requests = v1.requests();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort();
    println!("\n| what | measured |\n| --- | --- |");
    println!(
        "| calls sent | {n} over {:.1} min, round-robin to 3 replicas, {} keys |",
        sending.as_secs_f64() / 60.0,
        KEYS.len()
    );
    println!("| jobs accepted | {} ({} refused) |", accepted.len(), refused.lock().unwrap().len());
    println!(
        "| jobs completed / failed | {completed} / {failed} (all ended {:.1} min after the start) |",
        all.as_secs_f64() / 60.0
    );
    println!("| jobs lost | {lost} |");
    println!(
        "| accept latency | p50 {:.1} ms, p99 {:.1} ms |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    for key in KEYS {
        let times: Vec<Instant> = requests.iter().filter(|r| r.api_key.as_deref() == Some(key)).map(|r| r.at).collect();
        // Use of the limit: the requests that arrived in the sending period less one window,
        // from the key's first request, against the limit per window over that time.
        let first = times.iter().min().copied().unwrap_or(started);
        let steady = sending.saturating_sub(WINDOW).max(Duration::from_secs(1));
        let in_steady = times.iter().filter(|t| t.duration_since(first) < steady).count();
        let utilisation = in_steady as f64 / (LIMIT as f64 * steady.as_secs_f64() / WINDOW.as_secs_f64());
        println!(
            "| {key} | {} v1 requests; {} window violations; {:.1}% of the limit used over the first {:.1} min |",
            times.len(),
            violations(&times),
            utilisation * 100.0,
            steady.as_secs_f64() / 60.0
        );
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for request in &requests {
        *statuses.entry(request.status).or_default() += 1;
    }
    println!("| v1 answers by status | {statuses:?} (0: the client gave up before the answer) |");
    println!(
        "| RSS per replica, start → end | {} |",
        rss_start.iter().zip(&rss_end).map(|(a, b)| format!("{a:.0} → {b:.0} MB")).collect::<Vec<_>>().join("; ")
    );
    for line in refused.lock().unwrap().iter().take(5) {
        println!("refused: {line}");
    }
    for (mut child, _) in replicas {
        let _ = child.kill();
        let _ = child.wait();
    }
}
