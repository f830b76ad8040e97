//! A hostile caller against the real release server, run by hand:
//! `cargo bench --bench hostile [-- SECTION...]`, sections `bodies`, `stalled`, `slow`, `fuzz`
//! (all by default; `--fuzz-count N` changes the 100,000 fuzzed bodies). Prints; asserts nothing.
//!
//! - bodies: peak and settled RSS of the server for the body (30 texts of 5,000 words)
//!   and for the largest text job the default limits let in, and the bytes and RSS of reading
//!   its predictions;
//! - stalled: `/healthz` latency and the time to accept a job while 1,000 connections sit on
//!   unfinished headers, and how long the server takes to close them;
//! - slow: worker-seconds a job of URLs that drip 1 byte a second holds, and how long an
//!   unrelated job queued behind it takes;
//! - fuzz: counts of 5xx answers, error answers that are not JSON, and crashes over N mutated
//!   bodies sent to every route that takes one.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::{memory_of, server, wait_for_end};

/// Words for generated texts: emotional and plain, so every sentence gets scored.
const WORDS: [&str; 16] = [
    "I", "am", "really", "angry", "about", "the", "delay", "and", "happy", "with", "your", "help", "today", "but",
    "worried", "tomorrow",
];

fn text_of(words: usize, seed: usize) -> String {
    let mut out = String::with_capacity(words * 7);
    for i in 0..words {
        out.push_str(WORDS[(i * 7 + seed) % WORDS.len()]);
        out.push(if i % 12 == 11 { '.' } else { ' ' });
        if i % 12 == 11 {
            out.push(' ');
        }
    }
    out
}

/// RSS after it stops falling (sampled every 250 ms, at most 10 s).
async fn settled_rss(pid: &str) -> f64 {
    let mut last = memory_of(pid).0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = memory_of(pid).0;
        if (last - now).abs() < 1.0 {
            return now;
        }
        last = now;
    }
    last
}

async fn one_body(label: &str, texts: usize, words: usize, workers_env: &[(&str, &str)]) {
    let data = tempfile::tempdir().unwrap();
    let (mut child, address) = server(data.path(), workers_env);
    let pid = child.id().to_string();
    let client = reqwest::Client::new();
    let idle = settled_rss(&pid).await;
    let body = json!({"text": (0..texts).map(|i| text_of(words, i)).collect::<Vec<_>>(), "models": {"language": {}}});
    let size = body.to_string().len();
    let start = Instant::now();
    let response = client.post(format!("{address}/v0/batch/jobs")).json(&body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    println!("{label}: {texts} texts x {words} words ({:.0} KB): HTTP {status}", size as f64 / 1000.0);
    let Some(id) = answer["job_id"].as_str() else {
        println!("  refused at intake: {answer}");
        let _ = child.kill();
        return;
    };
    let job = wait_for_end(&client, &address, id).await;
    let took = start.elapsed().as_secs_f64();
    let (_, peak) = memory_of(&pid);
    let settled = settled_rss(&pid).await;
    println!(
        "  {} in {took:.1} s: {} predictions, {} errors; RSS idle {idle:.0} MB, peak {peak:.0} MB, settled {settled:.0} MB",
        job["state"]["status"], job["state"]["num_predictions"], job["state"]["num_errors"]
    );
    let mut response = client.get(format!("{address}/v0/batch/jobs/{id}/predictions")).send().await.unwrap();
    let mut bytes = 0usize;
    while let Some(chunk) = response.chunk().await.unwrap() {
        bytes += chunk.len();
    }
    let (_, peak_after_read) = memory_of(&pid);
    println!(
        "  predictions read: {:.1} MB streamed; RSS peak now {peak_after_read:.0} MB, settled {:.0} MB",
        bytes as f64 / 1e6,
        settled_rss(&pid).await
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The default of a setting, read from the binary's `--help` (`[default: N]` after its env name);
/// panics when the setting is gone, so a renamed one cannot be measured with a stale guess.
fn default_of(env: &str) -> u64 {
    parse_default(env).unwrap_or_else(|| panic!("{env} has no default in hume-action --help"))
}

fn parse_default(env: &str) -> Option<u64> {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_hume-action")).arg("--help").output().ok()?;
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    let at = help.find(&format!("env: {env}="))?;
    let rest = &help[at..];
    let default = rest.find("[default: ")?;
    rest[default + 10..].split(']').next()?.trim().replace('_', "").parse().ok()
}

async fn bodies() {
    one_body("issue's body", 30, 5_000, &[]).await;
    // The largest text job the defaults let in: as many items as the per-job byte budget allows,
    // each as large as the per-item budget allows, within the segment budget.
    let per_item = default_of("HUME_ACTION_MAX_TEXT_BYTES");
    let per_job = default_of("HUME_ACTION_MAX_JOB_TEXT_BYTES");
    let segments = default_of("HUME_ACTION_MAX_JOB_SEGMENTS");
    let avg_word = 6; // bytes per word of `text_of`, space included
    let words_by_bytes = (per_job / avg_word) as usize;
    let words = words_by_bytes.min(segments as usize).max(1);
    let items = ((words * avg_word as usize) as u64).div_ceil(per_item).max(1) as usize;
    one_body("largest default job", items, words / items, &[]).await;
}

async fn stalled() {
    raise_file_limit();
    let data = tempfile::tempdir().unwrap();
    let (mut child, address) = server(data.path(), &[]);
    let host = address.trim_start_matches("http://").to_owned();
    let mut sockets = Vec::new();
    for _ in 0..1_000 {
        match TcpStream::connect(&host).await {
            Ok(mut s) => {
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                sockets.push(s);
            }
            Err(e) => {
                println!("stalled: connection {} refused: {e}", sockets.len());
                break;
            }
        }
    }
    let opened = Instant::now();
    println!("stalled: {} connections sitting on unfinished headers", sockets.len());
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let ok = tokio::time::timeout(Duration::from_secs(10), client.get(format!("{address}/healthz")).send()).await;
        latencies.push((t.elapsed().as_secs_f64() * 1000.0, matches!(ok, Ok(Ok(ref r)) if r.status() == 200)));
    }
    let answered = latencies.iter().filter(|(_, ok)| *ok).count();
    let mut ms: Vec<f64> = latencies.iter().map(|(ms, _)| *ms).collect();
    ms.sort_by(f64::total_cmp);
    println!("  /healthz: {answered}/20 answered; p50 {:.1} ms, max {:.1} ms", ms[10], ms[19]);
    let t = Instant::now();
    let job = client
        .post(format!("{address}/v1/actions/hume-expression-measurement"))
        .json(&json!({"urls": "https://example.com/a.txt", "models_language": "Yes", "models_prosody": "No"}))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    println!(
        "  a new job: {} in {:.1} ms",
        job.map_or_else(|e| format!("failed ({e})"), |r| r.status().to_string()),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let closes = sockets.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 256];
        let deadline = Duration::from_secs(120);
        let closed = matches!(tokio::time::timeout(deadline, s.read(&mut buf)).await, Ok(Ok(_) | Err(_)));
        closed.then(Instant::now)
    });
    let ends: Vec<Option<Instant>> = futures::future::join_all(closes).await;
    let closed: Vec<f64> = ends.iter().flatten().map(|at| at.duration_since(opened).as_secs_f64()).collect();
    println!(
        "  closed by the server: {}/{} (last after {:.1} s)",
        closed.len(),
        ends.len(),
        closed.iter().copied().fold(0.0, f64::max)
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The bench itself holds 1,000 sockets: lift its own soft file limit to the hard one.
#[allow(unsafe_code)] // getrlimit/setrlimit
fn raise_file_limit() {
    // SAFETY: getrlimit/setrlimit on a stack value.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A server whose every answer promises 1 MB and sends one byte a second.
async fn drip_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if socket.write_all(b"a").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

async fn slow() {
    let drip = drip_server().await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, address) = server(data.path(), &[("HUME_ACTION_WORKERS", "1")]);
    let client = reqwest::Client::new();
    let urls: Vec<String> = (0..4).map(|i| format!("{drip}/slow-{i}.txt")).collect();
    let start = Instant::now();
    let submit = |body: Value| {
        let client = client.clone();
        let address = address.clone();
        async move {
            let answer: Value =
                client.post(format!("{address}/v0/batch/jobs")).json(&body).send().await.unwrap().json().await.unwrap();
            answer["job_id"].as_str().unwrap_or_else(|| panic!("refused: {answer}")).to_owned()
        }
    };
    let slow_id = submit(json!({"urls": urls, "models": {"language": {}}})).await;
    let quick_id = submit(json!({"text": ["I am so happy today."], "models": {"language": {}}})).await;
    let (slow_job, quick_job) = tokio::join!(
        async {
            let job = wait_for_end(&client, &address, &slow_id).await;
            (job, start.elapsed().as_secs_f64())
        },
        async {
            let job = wait_for_end(&client, &address, &quick_id).await;
            (job, start.elapsed().as_secs_f64())
        }
    );
    println!(
        "slow: a job of 4 URLs dripping 1 byte/s ended {} after {:.1} s with one worker: {:.1} worker-seconds",
        slow_job.0["state"]["status"], slow_job.1, slow_job.1
    );
    println!(
        "  an unrelated text job queued behind it ended {} after {:.1} s",
        quick_job.0["state"]["status"], quick_job.1
    );
    let predictions: Value = client
        .get(format!("{address}/v0/batch/jobs/{slow_id}/predictions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null);
    if let Some(error) = predictions[0]["results"]["errors"][0]["message"].as_str() {
        println!("  the first URL's error: {error}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A random JSON value, nested at most `depth` deep.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 10f64.powi(rng.gen_range(-5..300))),
        4 => json!(
            ["Yes", "No", "yes", "true", "", "{{step.url}}", "https://example.com/a.mp3", "\u{0}", "ä😀"]
                [rng.gen_range(0..9)]
        ),
        5 => json!((0..rng.gen_range(0..2_000)).map(|_| rng.gen_range(' '..='~')).collect::<String>()),
        6 => Value::Array((0..rng.gen_range(0..6)).map(|_| random_value(rng, depth - 1)).collect()),
        _ => {
            let keys = [
                "urls",
                "text",
                "models",
                "models_face",
                "models_prosody",
                "models_language",
                "callback_url",
                "notify",
                "language",
                "granularity",
                "fps_pred",
                "transcription",
                "identify_faces",
                "x",
            ];
            Value::Object(
                (0..rng.gen_range(0..6))
                    .map(|_| (keys[rng.gen_range(0..keys.len())].to_owned(), random_value(rng, depth - 1)))
                    .collect(),
            )
        }
    }
}

/// One fuzzed request: `(method, path, content type, body)`.
fn fuzzed(rng: &mut StdRng) -> (reqwest::Method, String, &'static str, Vec<u8>) {
    let seeds = [
        json!({"urls": "https://example.com/a.mp3", "models_face": "No", "models_prosody": "Yes", "models_language": "Yes"}),
        json!({"urls": ["https://example.com/a.mp4", "https://example.com/b.jpg"], "models_face": true}),
        json!({"text": ["I am furious."], "models": {"language": {"granularity": "sentence"}}}),
        json!({"urls": ["https://example.com/a.mp3"], "models": {"prosody": {"granularity": "utterance"}, "face": {"fps_pred": 3}}, "callback_url": "https://example.com/hook"}),
    ];
    let mut body = seeds[rng.gen_range(0..seeds.len())].clone();
    let mut bytes = match rng.gen_range(0..4) {
        // Replace or add a field with a random value.
        0 | 1 => {
            let keys = ["urls", "text", "models", "models_face", "models_prosody", "models_language", "callback_url"];
            body[keys[rng.gen_range(0..keys.len())]] = random_value(rng, 4);
            body.to_string().into_bytes()
        }
        // A random value as the whole body.
        2 => random_value(rng, 5).to_string().into_bytes(),
        // Byte-level damage to valid JSON.
        _ => {
            let mut bytes = body.to_string().into_bytes();
            for _ in 0..rng.gen_range(1..8) {
                let at = rng.gen_range(0..bytes.len().max(1));
                match rng.gen_range(0..3) {
                    0 if !bytes.is_empty() => {
                        let last = bytes.len() - 1;
                        bytes[at.min(last)] = rng.gen();
                    }
                    1 => bytes.insert(at.min(bytes.len()), rng.gen()),
                    _ => {
                        bytes.truncate(at);
                    }
                }
            }
            bytes
        }
    };
    if rng.gen_ratio(1, 50) {
        bytes = (0..rng.gen_range(0..4096)).map(|_| rng.gen()).collect();
    }
    let routes = ["/v1/actions/hume-expression-measurement", "/v0/batch/jobs"];
    let content_type =
        ["application/json", "application/json", "application/json", "text/plain", "multipart/form-data; boundary=x"]
            [rng.gen_range(0..5)];
    if rng.gen_ratio(1, 20) {
        let path = ["/v0/batch/jobs?limit=", "/v0/batch/jobs/", "/v0/batch/jobs?status="][rng.gen_range(0..3)];
        let junk: String = (0..rng.gen_range(0..40)).map(|_| rng.gen_range('!'..='~')).collect();
        let junk = junk.replace(['#', '/'], "_");
        return (reqwest::Method::GET, format!("{path}{junk}"), content_type, vec![]);
    }
    (reqwest::Method::POST, routes[rng.gen_range(0..2)].to_owned(), content_type, bytes)
}

async fn fuzz(count: usize) {
    let data = tempfile::tempdir().unwrap();
    let (mut child, address) = server(data.path(), &[("HUME_ACTION_WORKERS", "1")]);
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(20261128);
    let requests: Vec<_> = (0..count).map(|_| fuzzed(&mut rng)).collect();
    let outcomes: Vec<(u16, bool)> = futures::stream::iter(requests)
        .map(|(method, path, content_type, body)| {
            let shown = format!("{method} {path} ({content_type})");
            let request = client
                .request(method, format!("{address}{path}"))
                .header("content-type", content_type)
                .body(body)
                .timeout(Duration::from_secs(30));
            async move {
                match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let bytes = response.bytes().await.unwrap_or_default();
                        let json_error = status < 400
                            || serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v["error"]["code"].is_string());
                        if !json_error {
                            println!(
                                "  not in the error shape: {shown} -> {status} {}",
                                String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
                            );
                        }
                        (status, json_error)
                    }
                    Err(_) => (0, false),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let took = start.elapsed().as_secs_f64();
    let server_errors = outcomes.iter().filter(|(s, _)| *s >= 500).count();
    let no_answer = outcomes.iter().filter(|(s, _)| *s == 0).count();
    let not_json = outcomes.iter().filter(|(s, ok)| *s != 0 && !ok).count();
    let accepted = outcomes.iter().filter(|(s, _)| *s == 200).count();
    let crashed = child.try_wait().ok().flatten().is_some();
    println!(
        "fuzz: {count} bodies in {took:.1} s ({:.0}/s): {accepted} accepted, {server_errors} 5xx, {not_json} error answers not in the JSON error shape, {no_answer} without an answer, crashed: {crashed}",
        count as f64 / took
    );
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count =
        args.iter().position(|a| a == "--fuzz-count").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(100_000);
    let sections: Vec<&String> = args.iter().filter(|a| !a.starts_with('-') && a.parse::<usize>().is_err()).collect();
    let wants = |s: &str| sections.is_empty() || sections.iter().any(|a| *a == s);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if wants("bodies") {
            bodies().await;
        }
        if wants("stalled") {
            stalled().await;
        }
        if wants("slow") {
            slow().await;
        }
        if wants("fuzz") {
            fuzz(count).await;
        }
    });
}
