//! What the hand-run benchmarks share: the real server binary started on a port of its own, a
//! process's memory read from `/proc`, and the diarization measurement (`speakers`, `local`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use std::time::Instant;

use hume_action::media::audio::Pcm;
use hume_action::models::speakers::eval::{der, dialogue, Reference};
use hume_action::models::speakers::Diarizer;
use hume_action::models::speech::eval::rss_bytes;
use serde_json::Value;

const SCRIPT: &str = include_str!("../../assets/speakers/call.txt");

/// For each length in `minutes`, a dialogue of two espeak-ng voices (`en-us`, `en-us+Annie`)
/// speaking `assets/speakers/call.txt` in turn, repeated at other speeds up to that length, is
/// diarized in this process: prints a table of seconds per minute of audio, speakers found and
/// DER (0.25 s collar), after the RSS the speaker model adds at load.
pub fn diarization(minutes: &[f64]) {
    let dir = model_root();
    let before = rss_bytes().unwrap_or(0);
    let diarizer = Diarizer::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let after = rss_bytes().unwrap_or(0);
    println!("speaker model (CAM++ + VAD) load: +{:.0} MB RSS", (after.saturating_sub(before)) as f64 / 1e6);
    let lines: Vec<&str> = SCRIPT.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    // Each pass through the script at another speed, so no window repeats another exactly
    // (exact copies make every window's nearest neighbours its own copies).
    let pass = |c: usize| {
        let turns: Vec<(&str, &str)> =
            lines.iter().enumerate().map(|(i, l)| (if i % 2 == 0 { "en-us" } else { "en-us+Annie" }, *l)).collect();
        dialogue(&turns, 0.4, 140 + 12 * (c as u32 % 8)).expect("espeak-ng and ffmpeg")
    };
    println!("| audio | diarization | s per minute of audio | x real time | speakers | DER |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for &m in minutes {
        let mut samples: Vec<i16> = Vec::new();
        let mut truth: Vec<Reference> = Vec::new();
        let mut c = 0;
        while (samples.len() as f64) < m * 60.0 * f64::from(Pcm::RATE) {
            let (one, reference) = pass(c);
            let shift = samples.len() as f64 / f64::from(Pcm::RATE);
            truth.extend(reference.iter().map(|r| Reference {
                begin: r.begin + shift,
                end: r.end + shift,
                speaker: r.speaker,
            }));
            samples.extend_from_slice(&one.samples);
            c += 1;
        }
        let pcm = Pcm { samples };
        let audio = pcm.duration_secs();
        let started = Instant::now();
        let found = diarizer.diarize(&pcm).unwrap_or_else(|e| panic!("{e}"));
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| {:.1} min | {secs:.2} s | {:.2} | {:.1}x | {} | {:.3} |",
            audio / 60.0,
            secs / audio * 60.0,
            audio / secs,
            found.speakers,
            der(&truth, &found.turns, 0.25).rate()
        );
    }
}

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
