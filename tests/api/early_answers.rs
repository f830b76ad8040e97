//! Answers sent before the body was read (413 on a JSON body or an upload over its cap, 401 on an
//! upload without the token) reach clients that write their whole body before reading: Python's
//! `urllib.request` and `requests` and Node's `fetch` read the JSON error, because the server
//! reads and discards the rest of the body first. A client that never stops sending is still cut,
//! at `HUME_ACTION_LINGER_BYTES` or at `HUME_ACTION_LINGER_SECS`.
//!
//! `scripts/test.sh` installs `requests` into `data/clients-venv` (`HUME_ACTION_CLIENTS_PYTHON`
//! may name another interpreter that has it); `HUME_ACTION_NODE` may name the node binary.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_batch_app, TestApp};

/// The upload cap of these tests, far below the upload sent.
const UPLOAD_CAP: usize = 256 * 1024;

/// The upload the clients send: 3 MB.
const UPLOAD_BYTES: usize = 3 * 1024 * 1024;

const TOKEN: &str = "early-answers-token";

fn clients_python() -> PathBuf {
    std::env::var_os("HUME_ACTION_CLIENTS_PYTHON")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/clients-venv/bin/python"))
}

fn node() -> PathBuf {
    std::env::var_os("HUME_ACTION_NODE").map_or_else(|| PathBuf::from("node"), Into::into)
}

/// An app with the default JSON cap (1 MiB), a low upload cap and a token.
async fn app_with_low_caps() -> TestApp {
    spawn_batch_app(|config| {
        config.max_upload_bytes = UPLOAD_CAP;
        config.token = Some(TOKEN.parse().unwrap());
    })
    .await
}

/// Runs a script of `tests/clients/` with `program` against `app`; its JSON lines.
async fn run_client_script(program: PathBuf, script: &str, app: &TestApp) -> Vec<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let output = tokio::process::Command::new(&program)
        .arg(&script)
        .env("HUME_ACTION_URL", &app.address)
        .env("HUME_ACTION_TOKEN", TOKEN)
        .env("UPLOAD_BYTES", UPLOAD_BYTES.to_string())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} cannot run ({e}): run scripts/test.sh, which installs it", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{script:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))).collect()
}

/// Checks that `client` read each early answer, with its status and code.
fn assert_read_every_answer(lines: &[Value], client: &str) {
    let expected = [
        ("json_5mb", 413, "body_too_large"),
        ("upload_over_cap", 413, "upload_too_large"),
        ("upload_without_token", 401, "unauthorized"),
    ];
    for (case, status, code) in expected {
        let line = lines
            .iter()
            .find(|l| l["client"] == client && l["case"] == case)
            .unwrap_or_else(|| panic!("no answer for {client} {case}: {lines:?}"));
        assert_eq!(
            (line["status"].as_u64(), line["code"].as_str()),
            (Some(status), Some(code)),
            "{client} {case}: {line}"
        );
    }
}

#[tokio::test]
async fn python_urllib_and_requests_read_the_json_error_on_a_5_mb_body_and_an_upload_over_the_cap() {
    let app = app_with_low_caps().await;
    let lines = run_client_script(clients_python(), "early_answers.py", &app).await;
    assert_read_every_answer(&lines, "urllib");
    assert_read_every_answer(&lines, "requests");
}

#[tokio::test]
async fn node_fetch_reads_the_json_error_on_a_5_mb_body_and_an_upload_over_the_cap() {
    let app = app_with_low_caps().await;
    let lines = run_client_script(node(), "early_answers.mjs", &app).await;
    assert_read_every_answer(&lines, "fetch");
}

/// What a raw client that keeps sending a body saw.
struct Sent {
    /// What it read.
    answer: String,
    /// Body bytes it sent.
    bytes: u64,
    /// From the first byte of the answer to the server closing the connection.
    answered_to_closed: Duration,
}

/// POSTs a JSON head declaring 10 GB, then sends `chunk`-byte pieces of body (every `pace`, or
/// as fast as the connection takes them) while reading, until the server closes the connection;
/// fails if that takes longer than `within`.
async fn send_until_cut(app: &TestApp, chunk: usize, pace: Option<Duration>, within: Duration) -> Sent {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = "POST /v0/batch/jobs HTTP/1.1\r\nHost: endless\r\nContent-Type: application/json\r\n\
                Content-Length: 10000000000\r\n\r\n";
    writer.write_all(head.as_bytes()).await.unwrap();
    let read = tokio::spawn(async move {
        let (mut received, mut answered) = (Vec::new(), None);
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut buf).await {
            answered.get_or_insert_with(Instant::now);
            received.extend_from_slice(&buf[..n]);
        }
        (String::from_utf8_lossy(&received).into_owned(), answered, Instant::now())
    });
    let body = vec![b' '; chunk];
    let mut bytes = 0u64;
    let cut = tokio::time::timeout(within, async {
        loop {
            if let Some(pace) = pace {
                tokio::time::sleep(pace).await;
            }
            if writer.write_all(&body).await.is_err() {
                return Instant::now();
            }
            bytes += chunk as u64;
        }
    })
    .await;
    let write_failed = cut.unwrap_or_else(|_| panic!("still sending after {within:?}: the connection was not cut"));
    let (answer, answered, read_ended) = tokio::time::timeout(within, read).await.expect("reading ends").unwrap();
    let answered = answered.unwrap_or_else(|| panic!("no answer was read before the cut ({bytes} bytes sent)"));
    Sent { answer, bytes, answered_to_closed: write_failed.min(read_ended) - answered }
}

#[tokio::test]
async fn a_client_that_never_stops_sending_is_cut_at_the_linger_byte_bound() {
    let linger = 1024 * 1024;
    let app = spawn_batch_app(|config| {
        config.linger_bytes = linger;
        config.linger_secs = 300.0;
    })
    .await;
    let sent = send_until_cut(&app, 64 * 1024, None, Duration::from_secs(60)).await;
    assert!(sent.answer.starts_with("HTTP/1.1 413"), "{}", sent.answer);
    assert!(sent.answer.contains("\"code\":\"body_too_large\""), "{}", sent.answer);
    // Past the bound, only what the sockets' buffers hold was taken (Linux autotunes a receive
    // buffer up to tcp_rmem's maximum, 32 MiB by default, and a send buffer up to 4 MiB); unbounded,
    // the client would still be sending when the 60 s above ran out.
    assert!(sent.bytes > linger && sent.bytes < linger + 64 * 1024 * 1024, "{} bytes were sent", sent.bytes);
}

#[tokio::test]
async fn a_client_that_never_stops_sending_is_cut_at_the_linger_time_bound() {
    let app = spawn_batch_app(|config| {
        config.linger_secs = 2.0;
        config.linger_idle_secs = 1.0;
    })
    .await;
    // 1 KiB every 50 ms: never idle for the idle bound, never near the byte bound.
    let sent = send_until_cut(&app, 1024, Some(Duration::from_millis(50)), Duration::from_secs(30)).await;
    assert!(sent.answer.starts_with("HTTP/1.1 413"), "{}", sent.answer);
    assert!(sent.answer.contains("\"code\":\"body_too_large\""), "{}", sent.answer);
    let lingered = sent.answered_to_closed;
    assert!(
        lingered >= Duration::from_millis(1500) && lingered < Duration::from_secs(10),
        "cut {lingered:?} after the answer"
    );
}

#[tokio::test]
async fn a_client_waiting_for_100_continue_gets_the_early_answer_and_sends_no_body() {
    let app = spawn_batch_app(|_| {}).await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    let head = "POST /v0/batch/jobs HTTP/1.1\r\nHost: curl-like\r\nContent-Type: application/json\r\n\
                Content-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received)).await;
    assert!(closed.is_ok(), "the connection was not closed without its body");
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("body_too_large"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}
