//! What the hand-run benchmarks share: the real server binary started on a port of its own, and
//! a process's memory read from `/proc`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// `HUME_ACTION_MODEL_DIR`, else the checkout's `data/models`.
pub fn model_root() -> PathBuf {
    std::env::var_os("HUME_ACTION_MODEL_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/models"), PathBuf::from)
}

/// `(VmRSS, VmHWM)` of a process (`self` or a pid) in MB.
pub fn memory_of(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (status_mb(&status, "VmRSS:"), status_mb(&status, "VmHWM:"))
}

/// `(RssAnon, RssFile)` of a process in MB: its own memory, and the pages of files it maps (its
/// binary's code among them).
pub fn rss_parts(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    (status_mb(&status, "RssAnon:"), status_mb(&status, "RssFile:"))
}

/// A `/proc/<pid>/status` field given in kB, in MB (0 when absent).
fn status_mb(status: &str, name: &str) -> f64 {
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The release server binary on `local` with `data` as its data directory and `env` on top of
/// the defaults; returns it and its base URL, read from its start-up line.
pub fn server(data: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hume-action"));
    command
        .env("HUME_ACTION_LISTEN", "127.0.0.1:0")
        .env("HUME_ACTION_BACKEND", "local")
        .env("HUME_ACTION_DATA_DIR", data)
        .env("HUME_ACTION_MODEL_DIR", model_root())
        .env("HUME_ACTION_ALLOW_PRIVATE_URLS", "true")
        .env("HUME_ACTION_LOG_JSON", "true")
        .env("RUST_LOG", "warn,hume_action=info")
        .stdout(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the server starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                if event["message"] == "hume-action listening" {
                    let _ = tx.send(event["addr"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(300)).expect("the server said where it listens");
    (child, format!("http://{addr}"))
}

/// Polls job `id` until it ends; returns the job.
pub async fn wait_for_end(client: &reqwest::Client, address: &str, id: &str) -> Value {
    loop {
        let job: Value =
            client.get(format!("{address}/v0/batch/jobs/{id}")).send().await.unwrap().json().await.unwrap();
        if matches!(job["state"]["status"].as_str(), Some("COMPLETED" | "FAILED")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
