//! The job summary, run by hand: `cargo bench --bench summary [-- latency|waits]`. Prints
//! numbers; asserts nothing.
//!
//! - latency: `summary::of_stored_job` on a stored 1-hour call (SQLite): 900 utterances scored by
//!   the language model (53 names), its 9,000 transcribed words, and 720 prosody windows (48
//!   names, as the `hume` backend stores them): p50 and p99 over 30 runs, and the memory the
//!   summary needed on top of what was resident (peak RSS reset before each run);
//! - waits: 1,000 `GET /v1/jobs/{id}/summary?wait=25` held at once on the release binary
//!   (`local`), on 50 jobs whose downloads a loopback host holds: the server's RSS and CPU while they
//!   wait, then the time from releasing the downloads until every request was answered.

mod support;

use std::time::{Duration, Instant};

use hume_action::job::spec::JobSpec;
use hume_action::job::state::JobState;
use hume_action::job::Owner;
use hume_action::predictions::names::{EMOTIONS, LANGUAGE_EXPRESSIONS};
use hume_action::store::{NewJob, SqliteStore, Store};
use hume_action::summary::{of_stored_job, SummarySettings};
use serde_json::{json, Value};
use support::{memory_of, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn scores(names: &[&str], seed: usize) -> Vec<Value> {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"name": n, "score": ((i * 7919 + seed * 104_729) % 1000) as f64 / 1000.0}))
        .collect()
}

/// A stored source result of a one-hour call.
fn hour_long_call() -> Value {
    let utterances: Vec<Value> = (0..900)
        .map(|i| {
            let begin = i as f64 * 4.0;
            json!({"text": format!("utterance number {i} of the call, about ten words long here"),
                   "position": {"begin": i * 60, "end": i * 60 + 58}, "time": {"begin": begin, "end": begin + 3.5},
                   "confidence": 0.9, "speaker_confidence": null, "emotions": scores(&LANGUAGE_EXPRESSIONS, i),
                   "sentiment": null, "toxicity": null})
        })
        .collect();
    let windows: Vec<Value> = (0..720)
        .map(|i| {
            let begin = i as f64 * 5.0;
            json!({"text": "some words", "time": {"begin": begin, "end": begin + 5.0}, "confidence": null,
                   "speaker_confidence": null, "emotions": scores(&EMOTIONS, i)})
        })
        .collect();
    let words: Vec<Value> = (0..9000)
        .map(|i| json!({"text": "word", "begin": i as f64 * 0.4, "end": i as f64 * 0.4 + 0.3, "confidence": 0.9}))
        .collect();
    json!({"source": {"type": "url", "url": "https://example.com/call.mp3"}, "results": {"errors": [], "predictions": [{
        "file": "call.mp3", "file_type": "audio", "duration_secs": 3600.0,
        "models": {"language": {"metadata": null, "grouped_predictions": [{"id": "unknown", "predictions": utterances}]},
                   "prosody": {"metadata": null, "grouped_predictions": [{"id": "unknown", "predictions": windows}]}},
        "transcript": {"language": "en", "confidence": 0.9, "words": words}}]}})
}

/// A job's spec from a v0 body (uploads allowed, so `{}` is a job), with this callback.
fn spec_of(mut request: serde_json::Value, callback_url: Option<String>) -> JobSpec {
    if let Some(url) = callback_url {
        request["callback_url"] = url.into();
    }
    JobSpec::from_v0(request, true).expect("a valid v0 body")
}

async fn latency() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    let body = hour_long_call().to_string();
    let new = NewJob {
        id: "hour".into(),
        owner: Owner::without_key(),
        spec: spec_of(
            json!({"urls": ["https://example.com/call.mp3"], "models": {"language": {}, "prosody": {}}}),
            None,
        ),
        created_ms: 0,
        files: vec![],
        api_key_sealed: None,
        idempotency: None,
        callback_body: Default::default(),
    };
    store.insert(new).await.unwrap();
    store.claim_next(1).await.unwrap();
    store.put_result(&"hour".into(), 0, &body).await.unwrap();
    let ended = JobState::Completed { created_ms: 0, started_ms: 1, ended_ms: 2, num_predictions: 1, num_errors: 0 };
    store.finish(&"hour".into(), &ended).await.unwrap();
    let job = store.get(&"hour".into()).await.unwrap().unwrap();
    println!("latency: a stored 1-hour call, {:.1} MB of predictions JSON", body.len() as f64 / 1e6);
    drop(body);
    let settings = SummarySettings::default();
    let mut times = Vec::new();
    let mut extra_mb: f64 = 0.0;
    for _ in 0..30 {
        let (resident, _) = memory_of("self");
        let _ = std::fs::write("/proc/self/clear_refs", "5"); // resets VmHWM to the current RSS
        let started = Instant::now();
        let summary = of_stored_job(&store, &job, &settings, None).await.unwrap();
        times.push(started.elapsed());
        extra_mb = extra_mb.max(memory_of("self").1 - resident);
        assert!(summary.escalation.is_some());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "latency: summary of the 1-hour call: p50 {:.1} ms, p99 {:.1} ms (30 runs); memory it needed at most: {extra_mb:.1} MB over the resident set",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100])
    );
}

/// A loopback host whose answers wait until `release` is notified.
async fn held_host(released: tokio::sync::watch::Receiver<bool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut released = released.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = released.wait_for(|go| *go).await;
                let body = "Thanks for calling. I am furious about the delay.";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    address
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    fields.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

async fn waits() {
    let _ = rlimit::increase_nofile_limit(8192);
    let dir = tempfile::tempdir().unwrap();
    let (mut child, address) = server(dir.path(), &[("HUME_ACTION_MIN_DOWNLOAD_RATE", "0")]);
    let pid = child.id();
    let (release, released) = tokio::sync::watch::channel(false);
    let host = held_host(released).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        let body =
            json!({"urls": [format!("{host}/call-{i}.txt")], "models": {"language": {"granularity": "sentence"}}});
        let answer: Value =
            client.post(format!("{address}/v0/batch/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
        ids.push(answer["job_id"].as_str().unwrap().to_owned());
    }
    let idle_rss = memory_of(&pid.to_string()).0;
    let waiting: Vec<_> = (0..1000)
        .map(|i| {
            let (client, url) = (client.clone(), format!("{address}/v1/jobs/{}/summary?wait=25", ids[i % ids.len()]));
            tokio::spawn(async move {
                let summary: Value = client.get(url).send().await.unwrap().json().await.unwrap();
                (summary["done"].as_bool() == Some(true), Instant::now())
            })
        })
        .collect();
    // Until the server reports all 1,000 waiting.
    let metrics = format!("{address}/metrics");
    loop {
        let text = client.get(&metrics).send().await.unwrap().text().await.unwrap();
        let n = text
            .lines()
            .find_map(|l| l.strip_prefix("hume_action_summary_waits "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if n.unwrap_or(0.0) >= 1000.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ticks_before, measured) = (cpu_ticks(pid), Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await; // the measuring window itself
    let ticks = cpu_ticks(pid) - ticks_before;
    let cpu = ticks as f64 / 100.0 / measured.elapsed().as_secs_f64() * 100.0;
    let held_rss = memory_of(&pid.to_string()).0;
    let released_at = Instant::now();
    release.send_replace(true);
    let mut done = 0;
    let mut last = released_at;
    for w in waiting {
        let (ended, at) = w.await.unwrap();
        done += usize::from(ended);
        last = last.max(at);
    }
    println!(
        "waits: server RSS {idle_rss:.0} MB with 50 jobs held, {held_rss:.0} MB with 1,000 waiting summaries ({:.1} KB each); CPU while they wait {cpu:.1}% of one core",
        (held_rss - idle_rss) * 1024.0 / 1000.0
    );
    println!(
        "waits: released the downloads: {done}/1000 answered with the job done, the last {:.2} s after the release",
        (last - released_at).as_secs_f64()
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if wants("latency") {
        runtime.block_on(latency());
    }
    if wants("waits") {
        runtime.block_on(waits());
    }
}
